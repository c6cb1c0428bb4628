//! `prividium prover worker`: proves batches from the shared Postgres queue
//! on a proving machine, beside the node or on a GPU server
//! (`prividium prover prove`, proving witness files directly, is in
//! [`super::prove`]).
//!
//! The worker opens witnesses with the node's data keys (it reads `keys/`
//! from `--data-dir`, the node's data directory on this machine or a shared
//! mount, and nothing else there) and stores each proof back in the queue;
//! the node checks it and writes it out.

use crate::{chain_files, keys::at_rest, proving::ProverConfig};
use alloy_primitives::B256;
use anyhow::{bail, Context, Result};
use encryption::{KeyLimits, Keyring};
use prover::{PgJobStore, ProverService, Worker};
use std::{path::PathBuf, sync::Arc, time::Duration};
use storage::SharedCipher;

/// The `prividium prover` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Prove batches from the shared queue until stopped (Ctrl-C, SIGTERM).
    Worker(WorkerArgs),
    /// Prove batch witness files and time it (the GPU check; no node).
    Prove(super::prove::ProveArgs),
    /// Where the batch program spends its cycles on a witness, by function.
    Profile(super::profile::ProfileArgs),
}

/// Arguments of `prividium prover worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The node's data directory (for its chain id and data keys).
    #[arg(long, env = "PRIVIDIUM_DATA_DIR")]
    data_dir: PathBuf,
    /// The node's `prover.queue` (postgres://…).
    #[arg(long, env = "PRIVIDIUM_PROVER_QUEUE")]
    queue: String,
    /// The guest built by prover/guest/build.sh.
    #[arg(long, default_value = "prover/guest/out/batch-program.elf")]
    guest_elf: PathBuf,
    /// Refuse to start unless the guest has this program id (the node's
    /// `prover.program_id`).
    #[arg(long)]
    program_id: B256,
    /// Prove on this NVIDIA GPU (a build with the `cuda` feature).
    #[arg(long)]
    gpu: Option<u32>,
    /// Jobs proven at once (each takes a segment's memory).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// A job held longer than this may be taken over by another worker.
    #[arg(long, default_value_t = 7_200)]
    lease_secs: u64,
    /// Memory per proving segment (MiB; default 2048 on CPU, 16384 in a
    /// `cuda` build).
    #[arg(long, default_value_t = crate::proving::default_segment_mb())]
    segment_max_memory_mb: usize,
}

/// Runs the subcommand.
pub async fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Worker(w) => worker(w).await,
        Cmd::Prove(p) => super::prove::run(p).await,
        Cmd::Profile(p) => super::profile::run(p).await,
    }
}

async fn worker(args: WorkerArgs) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    if let Some(gpu) = args.gpu {
        super::gpu::select_gpu(gpu)?;
    }
    let chain = chain_files::load_chain(&args.data_dir)?;
    let keys = open_keys(&args.data_dir).await?;
    let cipher = keys.as_ref().map(|k| k.cipher.clone() as SharedCipher);
    let settings = ProverConfig {
        enabled: true,
        guest_elf: args.guest_elf.clone(),
        program_id: Some(args.program_id),
        segment_max_memory_mb: args.segment_max_memory_mb,
        ..ProverConfig::default()
    };
    let (url, chain_id) = (args.queue.clone(), chain.chain_id);
    let (queue, backend) = tokio::task::spawn_blocking(move || -> Result<_> {
        let queue = PgJobStore::connect(&url, chain_id, cipher)
            .with_context(|| format!("prover queue {}", audit::trail::redact(&url)))?;
        tracing::info!("generating proving keys (cached per program)");
        let backend = settings
            .backend()?
            .context("the worker needs a proving backend")?;
        Ok((Arc::new(queue), backend))
    })
    .await??;
    let workers = (0..args.workers)
        .map(|i| {
            Worker::new(
                format!(
                    "{}-{}-{i}{}",
                    crate::proving::hostname(),
                    std::process::id(),
                    args.gpu.map(|g| format!("-gpu{g}")).unwrap_or_default()
                ),
                queue.clone(),
                backend.clone(),
                Duration::from_secs(args.lease_secs),
            )
        })
        .collect();
    let service = ProverService::spawn(None, workers, None, Duration::from_secs(1));
    tracing::info!(
        chain_id,
        program_id = %backend.program_id(),
        workers = args.workers,
        gpu = ?args.gpu,
        "prover worker ready"
    );
    let mut shutdown = Box::pin(crate::node::shutdown_signal());
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                // The node may have rotated (and retired) data keys: new
                // witnesses are sealed under keys this process must load.
                if let Some(k) = &keys {
                    if let Err(e) = k.keyring.refresh(k.provider.as_ref(), &k.cipher, KeyLimits::default()).await {
                        tracing::warn!(error = %e, "cannot reload the data keys");
                    }
                }
            }
        }
    }
    tracing::info!("stopping; a batch being proven is handed back to the queue");
    tokio::task::spawn_blocking(move || service.stop(Duration::from_secs(5))).await?;
    Ok(())
}

/// The node's data keys, without ever creating a keyring of its own.
async fn open_keys(data_dir: &std::path::Path) -> Result<Option<at_rest::AtRest>> {
    match at_rest::EncryptionConfig::recorded(data_dir)? {
        Some(s) if s.is_on() => {
            if !Keyring::new(data_dir).exists() {
                bail!(
                    "{} records encryption but has no keyring: point --data-dir at the node's data directory",
                    data_dir.display()
                );
            }
            at_rest::open_recorded(data_dir).await
        }
        Some(_) => Ok(None),
        None => bail!(
            "{} is not a node's data directory (no keys/encryption.json)",
            data_dir.display()
        ),
    }
}
