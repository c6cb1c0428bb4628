//! `prividium bench`: pre-signs transactions for a scenario, sends them over
//! the real authenticated RPC at a fixed rate or flat out, and reports
//! sustained TPS and inclusion latency (submit → transaction in a derived
//! block, i.e. receipt available).

mod abi;
mod client;
mod scenario;

use alloy_primitives::B256;
use anyhow::{bail, Context, Result};
use client::Client;
use scenario::Scenario;
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Arguments of `prividium bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// dev.json of the target node (URL, API key, CA, funded keys).
    #[arg(long, default_value = "./prividium-data/dev.json")]
    pub dev_file: PathBuf,
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
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
struct Report {
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
                bail!("{missing} transactions not included 120 s after sending ended");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the benchmark.
pub async fn run(args: Args) -> Result<()> {
    let client = Arc::new(Client::from_dev_file(&args.dev_file)?);
    let prepared = scenario::prepare(&client, &args).await?;
    eprintln!("pre-signed {} transactions; sending", prepared.len());
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
    let started = Instant::now();
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    let mut tasks = Vec::with_capacity(prepared.len());
    for (i, (hash, raw)) in prepared.into_iter().enumerate() {
        if let Some(iv) = interval {
            tokio::time::sleep_until((started + iv * i as u32).into()).await;
        }
        let permit = sem.clone().acquire_owned().await?;
        let client = client.clone();
        let submitted = submitted.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let res = client.send_raw(&raw).await;
            if res.is_ok() {
                submitted.lock().insert(hash, t);
            }
            res
        }));
    }
    let mut rejected = 0;
    let mut first_error = None;
    for t in tasks {
        if let Err(e) = t.await? {
            rejected += 1;
            first_error.get_or_insert(e.to_string());
        }
    }
    let submit_seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(e) = &first_error {
        eprintln!("{rejected} transactions rejected; first: {e}");
    }
    let blocks = watcher.await??;

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
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("report")?
        );
    } else {
        println!(
            "{}: {} included of {} sent ({} rejected) over {} blocks\n  sustained {:.0} tx/s\n  inclusion latency p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
            report.scenario, report.included, report.sent, report.rejected, report.blocks,
            report.sustained_tps, report.latency_ms_p50, report.latency_ms_p95, report.latency_ms_p99
        );
    }
    if rejected > 0 {
        bail!("{rejected} transactions were rejected");
    }
    Ok(())
}
