//! The load generator behind `prividium bench`: pre-signs transactions for
//! a scenario, sends them over the real authenticated RPC (or any plain
//! JSON-RPC endpoint, such as anvil) at a fixed rate or flat out, and
//! reports sustained TPS, inclusion latency (submit → transaction in a
//! block, i.e. receipt available), the CPU the node and the generator spent
//! per transaction, and this machine's ceiling for the scenario.

mod abi;
mod ceiling;
mod client;
mod cpu;
mod error;
mod node_rpc;
mod scenario;

pub use error::{LoadgenError, Result};
pub use node_rpc::NodeRpc;
pub use scenario::Scenario;

use alloy_primitives::Bytes;
use alloy_primitives::B256;
use client::{Client, Target};
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// What to run, and against which endpoint (the options of `prividium
/// bench`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// dev.json of the target node (URL, API key, CA, funded keys).
    #[arg(long, default_value = "./prividium-data/dev.json")]
    pub dev_file: PathBuf,
    /// A plain JSON-RPC endpoint instead of dev.json (for example anvil);
    /// needs --funder-key.
    #[arg(long, requires = "funder_key")]
    pub rpc_url: Option<String>,
    /// Private key (hex) of an account funded on --rpc-url.
    #[arg(long, env = "PRIVIDIUM_BENCH_FUNDER_KEY", hide_env_values = true)]
    pub funder_key: Option<String>,
    /// Workload: eth (native transfers), erc20 (token transfers), oracle (price updates).
    #[arg(long, value_enum, default_value = "eth")]
    pub scenario: Scenario,
    /// Transactions to send in the measured phase.
    #[arg(long, default_value_t = 5_000)]
    pub txs: usize,
    /// Accounts taking part (erc20 defaults to 50,000).
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Target send rate in tx/s; 0 sends flat out.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Concurrent in-flight requests.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Transactions per request, as a JSON-RPC batch (1: single calls).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch: u64,
    /// Process id of the node, to report the CPU it spent per transaction.
    #[arg(long)]
    pub node_pid: Option<u32>,
    /// Also measure this machine's ceiling for the scenario (decode, recover
    /// and execute the same transactions in-process).
    #[arg(long)]
    pub ceiling: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    scenario: String,
    sent: usize,
    accepted: usize,
    rejected: usize,
    included: usize,
    submit_seconds: f64,
    sustained_tps: f64,
    latency_ms_p50: f64,
    latency_ms_p95: f64,
    latency_ms_p99: f64,
    blocks: usize,
    /// Transactions per request.
    batch: u64,
    /// CPU (user + system) per included transaction over the measured
    /// phase, microseconds; the node's only with --node-pid.
    node_cpu_us_per_tx: Option<f64>,
    generator_cpu_us_per_tx: f64,
    ceiling: Option<ceiling::Ceiling>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

type Times = Arc<parking_lot::Mutex<HashMap<B256, Instant>>>;

/// Polls derived blocks while the sender runs, recording when each
/// transaction first appears; returns the number of blocks seen once every
/// accepted transaction is included.
async fn watch_blocks(
    client: Arc<Client>,
    start_block: u64,
    submitted: Times,
    seen: Times,
    done: Arc<AtomicBool>,
) -> Result<usize> {
    let mut next_block = start_block + 1;
    let mut blocks = 0usize;
    let mut done_at: Option<Instant> = None;
    loop {
        let head = client.block_number().await?;
        for n in next_block..=head {
            let hashes = client.block_tx_hashes(n).await?;
            let now = Instant::now();
            blocks += 1;
            let mut seen = seen.lock();
            for h in hashes {
                seen.entry(h).or_insert(now);
            }
        }
        next_block = next_block.max(head + 1);
        if done.load(Ordering::Relaxed) {
            let missing = {
                let seen = seen.lock();
                submitted
                    .lock()
                    .keys()
                    .filter(|h| !seen.contains_key(*h))
                    .count()
            };
            if missing == 0 {
                return Ok(blocks);
            }
            if done_at.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(120) {
                return Err(LoadgenError::Load(format!(
                    "{missing} transactions not included 120 s after sending ended"
                )));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn per_tx_us(cpu: Duration, txs: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / txs.max(1) as f64
}

/// Runs the benchmark. Rejected transactions are counted in the report,
/// not an error: [`Report::rejected`] says how many.
pub async fn run(args: Args) -> Result<Report> {
    let target = match (&args.rpc_url, &args.funder_key) {
        (Some(url), Some(key)) => Target {
            url: url.clone(),
            auth: None,
            ca_cert: None,
            funder_key: key.clone(),
        },
        (Some(_), None) => {
            return Err(LoadgenError::setup("--rpc-url needs --funder-key"));
        }
        (None, _) => Target::from_dev_file(&args.dev_file)?,
    };
    let client = Arc::new(Client::new(target)?);
    let prepared = scenario::prepare(&client, &args).await?;
    let ceiling = if args.ceiling {
        eprintln!("measuring the ceiling (decode, recover, execute in-process)");
        Some(ceiling::measure(&prepared)?)
    } else {
        None
    };
    eprintln!("pre-signed {} transactions; sending", prepared.txs.len());
    let start_block = client.block_number().await?;

    let submitted: Times = Default::default();
    let seen: Times = Default::default();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_blocks(
        client.clone(),
        start_block,
        submitted.clone(),
        seen.clone(),
        done.clone(),
    ));

    let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let node_cpu = args.node_pid.map(cpu::Sampler::of_pid).transpose()?;
    let generator_cpu = cpu::Sampler::of_self()?;
    let started = Instant::now();
    let per_request = args.batch as usize;
    let interval =
        (args.rate > 0).then(|| Duration::from_secs_f64(per_request as f64 / args.rate as f64));
    let mut tasks = Vec::with_capacity(prepared.txs.len().div_ceil(per_request));
    let mut txs = prepared.txs.into_iter().peekable();
    let mut i = 0u32;
    while txs.peek().is_some() {
        let group: Vec<(B256, Bytes)> = txs.by_ref().take(per_request).collect();
        if let Some(iv) = interval {
            tokio::time::sleep_until((started + iv * i).into()).await;
        }
        i += 1;
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| LoadgenError::Load(e.to_string()))?;
        let client = client.clone();
        let submitted = submitted.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let results = if group.len() == 1 {
                vec![client.send_raw(&group[0].1).await]
            } else {
                let raws: Vec<Bytes> = group.iter().map(|(_, raw)| raw.clone()).collect();
                match client.send_raw_batch(&raws).await {
                    Ok(r) => r,
                    Err(e) => {
                        let e = e.to_string();
                        group.iter().map(|_| Err(LoadgenError::node(&e))).collect()
                    }
                }
            };
            let mut errors = Vec::new();
            let mut submitted = submitted.lock();
            for ((hash, _), r) in group.iter().zip(results) {
                match r {
                    Ok(_) => {
                        submitted.insert(*hash, t);
                    }
                    Err(e) => errors.push(e),
                }
            }
            errors
        }));
    }
    let mut rejected = 0;
    let mut first_error = None;
    for t in tasks {
        let errors = t.await.map_err(|e| LoadgenError::Load(e.to_string()))?;
        for e in errors {
            rejected += 1;
            first_error.get_or_insert(e.to_string());
        }
    }
    let submit_seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(e) = &first_error {
        eprintln!("{rejected} transactions rejected; first: {e}");
    }
    let blocks = watcher
        .await
        .map_err(|e| LoadgenError::Load(e.to_string()))??;
    let node_cpu = node_cpu.map(|c| c.elapsed()).transpose()?;
    let generator_cpu = generator_cpu.elapsed()?;

    let submitted = submitted.lock().clone();
    let seen = seen.lock().clone();
    let mut latencies = Vec::with_capacity(submitted.len());
    let mut last_inclusion = started;
    for (h, t) in &submitted {
        if let Some(s) = seen.get(h) {
            latencies.push(s.duration_since(*t).as_secs_f64() * 1000.0);
            last_inclusion = last_inclusion.max(*s);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let window = last_inclusion
        .duration_since(started)
        .as_secs_f64()
        .max(1e-9);
    let report = Report {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        sent: submitted.len() + rejected,
        accepted: submitted.len(),
        rejected,
        included: latencies.len(),
        submit_seconds,
        sustained_tps: latencies.len() as f64 / window,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p95: percentile(&latencies, 95.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        blocks,
        batch: args.batch,
        node_cpu_us_per_tx: node_cpu.map(|c| per_tx_us(c, latencies.len())),
        generator_cpu_us_per_tx: per_tx_us(generator_cpu, latencies.len()),
        ceiling,
    };
    Ok(report)
}

impl Report {
    /// Transactions the endpoint refused.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// The report as pretty JSON (`--json`) or as lines for a person.
    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string_pretty(self)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        }
        let mut out = format!(
            "{}: {} included of {} sent ({} rejected) over {} blocks\n  sustained {:.0} tx/s\n  inclusion latency p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
            self.scenario, self.included, self.sent, self.rejected, self.blocks,
            self.sustained_tps, self.latency_ms_p50, self.latency_ms_p95, self.latency_ms_p99
        );
        if let Some(us) = self.node_cpu_us_per_tx {
            out.push_str(&format!("\n  node CPU {us:.0} µs per transaction"));
        }
        out.push_str(&format!(
            "\n  generator CPU {:.0} µs per transaction",
            self.generator_cpu_us_per_tx
        ));
        if let Some(c) = &self.ceiling {
            out.push_str(&format!(
                "\n  ceiling {:.0} tx/s ({} cores; decode + recover {:.1} µs, execute {:.1} µs per transaction): {:.0} % reached",
                c.tps, c.cores, c.recover_us_per_tx, c.execute_us_per_tx,
                100.0 * self.sustained_tps / c.tps
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ceiling: Option<ceiling::Ceiling>) -> Report {
        Report {
            scenario: "erc20".into(),
            sent: 1_000,
            accepted: 998,
            rejected: 2,
            included: 998,
            submit_seconds: 1.5,
            sustained_tps: 640.0,
            latency_ms_p50: 120.0,
            latency_ms_p95: 240.0,
            latency_ms_p99: 300.0,
            blocks: 12,
            batch: 50,
            node_cpu_us_per_tx: Some(1_250.0),
            generator_cpu_us_per_tx: 90.0,
            ceiling,
        }
    }

    #[test]
    fn the_report_reads_as_lines_or_as_json() {
        let ceiling = ceiling::Ceiling {
            recover_us_per_tx: 40.0,
            execute_us_per_tx: 60.0,
            cores: 2,
            tps: 20_000.0,
        };
        let text = report(Some(ceiling)).render(false);
        assert!(text.starts_with("erc20: 998 included of 1000 sent (2 rejected) over 12 blocks"));
        assert!(text.contains("sustained 640 tx/s"));
        assert!(text.contains("p50 120 ms, p95 240 ms, p99 300 ms"));
        assert!(text.contains("node CPU 1250 µs per transaction"));
        assert!(text.contains("ceiling 20000 tx/s (2 cores;"));
        assert!(text.ends_with(": 3 % reached"), "{text}");

        let plain = report(None);
        assert_eq!(plain.rejected(), 2);
        assert!(!plain.render(false).contains("ceiling"));
        let json: serde_json::Value = serde_json::from_str(&plain.render(true)).unwrap();
        assert_eq!(json["sustained_tps"], 640.0);
        assert_eq!(json["rejected"], 2);
        assert!(json["ceiling"].is_null());
    }
}
