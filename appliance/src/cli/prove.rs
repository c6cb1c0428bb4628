//! `prividium prover prove`: proves batch witness files directly, without a
//! node or a queue: how a GPU server is checked before it joins the
//! proving pool (`scripts/gpu-check.sh`), and how proving speed is measured.
//!
//! For each witness it runs the batch program natively and in the zkVM
//! (the outputs must agree), proves it, checks its own proof, writes
//! `NAME.proof` and `NAME.json` (what `prividium verify` reads) and appends
//! a line to `summary.tsv`: cycles, proving time, MHz and peak memory.

use super::gpu::select_gpu;
use crate::proving::ProverConfig;
use alloy_primitives::B256;
use anyhow::{bail, Context, Result};
use proof::{verify_proof, OutputsFile};
use prover::ZkBackend;
use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Instant,
};

/// Arguments of `prividium prover prove`.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    /// Witness files (`*.witness`), or directories holding them.
    #[arg(required = true)]
    witnesses: Vec<PathBuf>,
    /// Where the proofs, outputs and `summary.tsv` go.
    #[arg(long)]
    out: PathBuf,
    /// The guest built by prover/guest/build.sh.
    #[arg(long, default_value = "prover/guest/out/batch-program.elf")]
    guest_elf: PathBuf,
    /// Refuse to prove unless the guest has this program id.
    #[arg(long)]
    program_id: Option<B256>,
    /// Prove on this NVIDIA GPU (a build with the `cuda` feature).
    #[arg(long)]
    gpu: Option<u32>,
    /// Memory per proving segment (MiB; default 2048 on CPU, 16384 in a
    /// `cuda` build).
    #[arg(long, default_value_t = crate::proving::default_segment_mb())]
    segment_max_memory_mb: usize,
}

/// One batch proven.
struct Proven {
    name: String,
    transactions: usize,
    cycles: u64,
    seconds: f64,
    peak_mib: Option<u64>,
    proof_bytes: usize,
}

/// Runs the subcommand.
pub async fn run(args: ProveArgs) -> Result<()> {
    if let Some(gpu) = args.gpu {
        select_gpu(gpu)?;
    }
    let files = witness_files(&args.witnesses)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    tokio::task::spawn_blocking(move || prove_all(&args, &files)).await?
}

fn prove_all(args: &ProveArgs, files: &[PathBuf]) -> Result<()> {
    let settings = ProverConfig {
        enabled: true,
        guest_elf: args.guest_elf.clone(),
        program_id: args.program_id,
        segment_max_memory_mb: args.segment_max_memory_mb,
        ..ProverConfig::default()
    };
    let started = Instant::now();
    let backend = settings
        .backend()?
        .context("proving needs the openvm backend")?;
    println!(
        "keys for program {} made in {:.1} s ({})",
        backend.program_id(),
        started.elapsed().as_secs_f64(),
        if cfg!(feature = "cuda") {
            "GPU build"
        } else {
            "CPU build"
        }
    );
    let summary_path = args.out.join("summary.tsv");
    let mut summary = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&summary_path)
        .with_context(|| format!("opening {}", summary_path.display()))?;
    if summary.metadata()?.len() == 0 {
        writeln!(
            summary,
            "batch\ttransactions\tcycles\tprove_s\tmhz\tpeak_rss_mib"
        )?;
    }
    for file in files {
        let p = prove_one(backend.as_ref(), file, &args.out)?;
        let mhz = p.cycles as f64 / p.seconds / 1e6;
        let peak = p.peak_mib.map_or("-".to_string(), |m| m.to_string());
        println!(
            "{}: {} transactions, {} cycles, proved in {:.1} s ({mhz:.3} MHz), peak memory {peak} MiB, proof {} bytes",
            p.name, p.transactions, p.cycles, p.seconds, p.proof_bytes
        );
        writeln!(
            summary,
            "{}\t{}\t{}\t{:.2}\t{mhz:.4}\t{peak}",
            p.name, p.transactions, p.cycles, p.seconds
        )?;
    }
    Ok(())
}

fn prove_one(backend: &dyn ZkBackend, file: &Path, out: &Path) -> Result<Proven> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .context("witness file name")?
        .to_string();
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let witness = state_transition::BatchWitness::decode(&bytes)
        .with_context(|| format!("{} is not a batch witness", file.display()))?;
    let outputs = state_transition::execute_batch(&witness)
        .with_context(|| format!("{}: the batch program refuses it", file.display()))?;
    let run = backend.execute(&bytes)?;
    if run.digest != outputs.digest() {
        bail!(
            "{}: the zkVM revealed {}, the native run {}",
            file.display(),
            run.digest,
            outputs.digest()
        );
    }
    let started = Instant::now();
    let proof = backend.prove(&bytes)?;
    let seconds = started.elapsed().as_secs_f64();
    verify_proof(&proof, &outputs, backend.program_id())
        .with_context(|| format!("{}: the proof made does not verify", file.display()))?;
    OutputsFile::new(&outputs, backend.program_id(), backend.name(), run.cycles)
        .write_with_proof(out, &name, &proof)?;
    Ok(Proven {
        name,
        transactions: witness.blocks.iter().map(|b| b.transactions.len()).sum(),
        cycles: run.cycles.context("the backend counts no cycles")?,
        seconds,
        peak_mib: peak_rss_mib(),
        proof_bytes: proof.len(),
    })
}

/// The files named, with directories expanded to their `*.witness` files
/// in name order.
fn witness_files(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in args {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "witness"))
                .collect();
            if found.is_empty() {
                bail!("{} holds no *.witness files", path.display());
            }
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such witness file or directory", path.display());
        }
    }
    Ok(files)
}

/// The process's peak resident memory so far (Linux `VmHWM`): proving
/// memory on a CPU build; a GPU's own memory is sampled by gpu-check.sh.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
