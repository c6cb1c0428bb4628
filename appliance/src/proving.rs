//! Wires the prover into the node: `[prover]` settings, the chain and audit
//! head as the prover reads them, the sealed job store and the service.

use crate::audit_trail::record_batch;
use crate::data_dir::{DataDir, CHECKPOINT_FILE};
use alloy_primitives::B256;
use anyhow::{bail, Context, Result};
use audit::action;
use audit::Trail;
use prover::{
    AuditSource, BatchPolicy, ChainBlock, ChainSource, CheckpointStore, Cutter, ExportedProof,
    Exporter, JobStore, KvJobStore, PgJobStore, ProofObserver, ProverError, ProverService, Worker,
    ZkBackend,
};
use sequencer::Sequencer;
use serde::Deserialize;
use serde_json::json;
use state_transition::{AuditHead, ChainSpec, MemoryState};
use std::{path::PathBuf, sync::Arc, time::Duration};
use storage::{KvStore, RedbStore, SharedCipher};

/// How often the cutter saves it.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

/// `[prover]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProverConfig {
    /// Cut, witness and prove batches.
    #[serde(default)]
    pub enabled: bool,
    /// `openvm` (proofs) or `native` (batches cut and checked, no proofs).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// The guest built by `prover/guest/build.sh`.
    #[serde(default = "default_elf")]
    pub guest_elf: PathBuf,
    /// Refuse to start unless the loaded program has this id.
    #[serde(default)]
    pub program_id: Option<B256>,
    /// Most blocks per batch.
    #[serde(default = "default_max_blocks")]
    pub max_blocks: u64,
    /// Longest a block waits for its batch.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Most estimated zkVM cycles per batch: bounds a batch's proving time
    /// (158 s per million cycles measured on a 2-core CPU worker).
    #[serde(default = "default_max_batch_cycles")]
    pub max_batch_cycles: u64,
    /// The proving queue: `postgres://…` to share it with worker processes
    /// on proving machines (`prividium prover worker`); default the
    /// embedded store in the data directory.
    #[serde(default)]
    pub queue: Option<String>,
    /// In-process proving workers (0: only external workers prove, which
    /// needs a Postgres `queue` and a pinned `program_id`).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// A job held longer than this by one worker may be taken over.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Memory per proving segment (MiB).
    #[serde(default = "default_segment_mb")]
    pub segment_max_memory_mb: usize,
}

fn default_backend() -> String {
    "openvm".into()
}
fn default_elf() -> PathBuf {
    PathBuf::from("prover/guest/out/batch-program.elf")
}
fn default_max_blocks() -> u64 {
    100
}
fn default_max_wait_ms() -> u64 {
    60_000
}
fn default_max_batch_cycles() -> u64 {
    prover::DEFAULT_MAX_CYCLES
}
fn default_workers() -> usize {
    1
}
fn default_lease_secs() -> u64 {
    7_200
}
/// Memory per proving segment. A segment is proven on its own and the
/// segment proofs are then aggregated, so larger segments mean fewer proofs
/// to make and fold. On CPU, 2 GiB keeps a 2-core, 24 GiB machine's peak
/// near 5 GB; on an H200, 16 GiB segments proved the GPU check's corpus in
/// 73 s instead of 144 s (1,000 transfers: 36.6 s instead of 89.0 s) with
/// 16 GB of its 141 GB in use.
pub(crate) fn default_segment_mb() -> usize {
    if cfg!(feature = "cuda") {
        16_384
    } else {
        2_048
    }
}

/// The largest segment that has proven: with 48 GiB OpenVM 2.0.2's GPU
/// prover failed its own sumcheck on the 1,000-transfer batch; 32 GiB
/// proved it (33.7 s), so the bound stays there.
pub(crate) const MAX_SEGMENT_MB: usize = 32_768;

/// Refuses a segment size outside what OpenVM proves.
pub(crate) fn check_segment_mb(mb: usize) -> Result<()> {
    if !(256..=MAX_SEGMENT_MB).contains(&mb) {
        bail!("segment memory {mb} MiB: use 256 to {MAX_SEGMENT_MB} MiB (larger segments fail to prove)");
    }
    Ok(())
}

impl Default for ProverConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            backend: default_backend(),
            guest_elf: default_elf(),
            program_id: None,
            queue: None,
            max_blocks: default_max_blocks(),
            max_wait_ms: default_max_wait_ms(),
            max_batch_cycles: default_max_batch_cycles(),
            workers: default_workers(),
            lease_secs: default_lease_secs(),
            segment_max_memory_mb: default_segment_mb(),
        }
    }
}

impl ProverConfig {
    /// Every problem with these settings.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.enabled {
            return problems;
        }
        if !matches!(self.backend.as_str(), "openvm" | "native") {
            problems.push(format!(
                "prover.backend = {}: use openvm or native",
                self.backend
            ));
        }
        if self.backend == "openvm" && self.workers > 0 && !self.guest_elf.is_file() {
            problems.push(format!(
                "prover.guest_elf = {}: not found (build it with prover/guest/build.sh)",
                self.guest_elf.display()
            ));
        }
        if self.max_blocks == 0 {
            problems.push("prover.max_blocks must be at least 1".into());
        }
        if let Err(e) = check_segment_mb(self.segment_max_memory_mb) {
            problems.push(format!("prover.segment_max_memory_mb: {e}"));
        }
        if self.max_batch_cycles < 1_000_000 {
            problems.push(format!(
                "prover.max_batch_cycles = {}: at least 1000000 (an empty batch alone is about 120000)",
                self.max_batch_cycles
            ));
        }
        if let Some(q) = &self.queue {
            if !q.starts_with("postgres://") && !q.starts_with("postgresql://") {
                problems.push(format!(
                    "prover.queue = {}: use a postgres:// URL (or leave it out for the embedded queue)",
                    audit::trail::redact(q)
                ));
            }
        }
        if self.workers == 0 && self.backend == "openvm" {
            if self.queue.is_none() {
                problems.push(
                    "prover.workers = 0 needs a shared prover.queue (postgres://…) that worker processes prove from"
                        .into(),
                );
            }
            if self.program_id.is_none() {
                problems.push(
                    "prover.workers = 0: pin prover.program_id, which proofs from worker processes are checked against"
                        .into(),
                );
            }
        }
        problems
    }

    /// Whether batches get proofs (not only cut and checked natively).
    pub fn proves(&self) -> bool {
        self.enabled && self.backend != "native"
    }

    /// Loads the proving backend (key generation takes tens of seconds).
    pub fn backend(&self) -> Result<Option<Arc<dyn ZkBackend>>> {
        match self.backend.as_str() {
            "native" => Ok(None),
            "openvm" => {
                let backend = openvm_backend(self)?;
                if let Some(pinned) = self.program_id {
                    if backend.program_id() != pinned {
                        bail!(
                            "guest {} has program id {}, configuration pins {pinned}",
                            self.guest_elf.display(),
                            backend.program_id()
                        );
                    }
                }
                Ok(Some(backend))
            }
            other => bail!("unknown prover backend {other}"),
        }
    }
}

#[cfg(feature = "zkvm")]
pub fn openvm_backend(settings: &ProverConfig) -> Result<Arc<dyn ZkBackend>> {
    check_segment_mb(settings.segment_max_memory_mb)?;
    let elf = std::fs::read(&settings.guest_elf)
        .with_context(|| format!("reading guest {}", settings.guest_elf.display()))?;
    let vm = prover::OpenVmConfig {
        segment_max_memory: settings.segment_max_memory_mb << 20,
    };
    Ok(Arc::new(prover::OpenVmBackend::new(&elf, vm)?))
}

#[cfg(not(feature = "zkvm"))]
pub fn openvm_backend(_: &ProverConfig) -> Result<Arc<dyn ZkBackend>> {
    bail!("this build has no zkVM: rebuild with the `zkvm` feature")
}

/// The derived chain as the prover reads it. The cutter waits on the
/// sequencer's head rather than polling the store.
struct SequencerSource {
    sequencer: Arc<Sequencer>,
    /// The node's runtime: the cutter runs on a thread of its own and waits
    /// for the head through it.
    runtime: Option<tokio::runtime::Handle>,
}

impl ChainSource for SequencerSource {
    fn head(&self) -> Result<u64, ProverError> {
        let view = self.sequencer.view().map_err(chain_err)?;
        view.head().map_err(chain_err)
    }

    fn block(&self, n: u64) -> Result<ChainBlock, ProverError> {
        let view = self.sequencer.view().map_err(chain_err)?;
        let block = view
            .block(n)
            .map_err(chain_err)?
            .ok_or_else(|| ProverError::Chain(format!("block {n} not derived")))?;
        Ok(ChainBlock {
            header: block.header,
            hash: block.hash,
            transactions: block.txs.into_iter().map(|t| t.envelope).collect(),
        })
    }

    fn wait_past(&self, seen: u64, timeout: Duration) -> bool {
        let Some(runtime) = &self.runtime else {
            return false;
        };
        let mut heads = self.sequencer.subscribe();
        let waited = runtime.block_on(async {
            tokio::time::timeout(timeout, heads.wait_for(|h| h.number > seen)).await
        });
        // A closed channel (the sequencer is gone) cannot wake anyone: poll.
        !matches!(waited, Ok(Err(_)))
    }
}

fn chain_err(e: impl std::fmt::Display) -> ProverError {
    ProverError::Chain(e.to_string())
}

/// The audit log's latest signed head, as its writer committed it: every
/// batch is bound to the trail as it stood when the batch was cut.
struct TrailHead(Trail);

impl AuditSource for TrailHead {
    fn head(&self) -> AuditHead {
        self.0
            .log()
            .latest_head()
            .map_or_else(AuditHead::default, |h| AuditHead {
                size: h.tree_size,
                root: B256::from(h.root),
            })
    }
}

/// The cutter's checkpoint as a file in the data directory, sealed like the
/// chain when encryption is on.
struct CheckpointFile {
    path: PathBuf,
    cipher: Option<SharedCipher>,
}

impl CheckpointStore for CheckpointFile {
    fn load(&self) -> Result<Option<Vec<u8>>, ProverError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ProverError::Store(format!("{}: {e}", self.path.display()))),
        };
        storage::open_file_if(self.cipher.as_deref(), CHECKPOINT_FILE, &bytes)
            .map(Some)
            .map_err(|e| ProverError::Store(format!("{}: {e}", self.path.display())))
    }

    fn save(&self, bytes: &[u8]) -> Result<(), ProverError> {
        let out = storage::seal_file_if(self.cipher.as_deref(), CHECKPOINT_FILE, bytes)
            .map_err(|e| ProverError::Store(e.to_string()))?;
        storage::write_atomic(&self.path, &out)
            .map_err(|e| ProverError::Store(format!("{}: {e}", self.path.display())))
    }
}

/// Records each proof written for export (public data only: the batch's
/// outputs and the proof's digest, as settlement sends them).
struct ExportAudit(Trail);

impl ProofObserver for ExportAudit {
    fn exported(&self, p: &ExportedProof) {
        let extra = json!({
            "proof_digest": p.proof_digest,
            "proof_bytes": p.proof_bytes,
            "program_id": p.program_id,
            "proving_ms": p.proving_ms,
            "cycles": p.cycles,
            "worker": p.worker,
        });
        record_batch(&self.0, action::PROOF_EXPORTED, &p.outputs, extra);
        // Recorded at export, so proofs from workers on other machines are
        // counted too.
        metrics::histogram!("prividium_proving_seconds", "worker" => worker_label(&p.worker))
            .record(p.proving_ms as f64 / 1_000.0);
        if let Some(cycles) = p.cycles {
            metrics::counter!("prividium_proven_cycles_total").increment(cycles);
        }
    }
}

/// A worker's id without its process id (`host-PID-slot[-gpuN]` →
/// `host-slot[-gpuN]`), so a metric label survives restarts and the
/// label values stay as few as the proving slots.
fn worker_label(id: &str) -> String {
    let (base, gpu) = match id.rfind("-gpu") {
        Some(at) if id[at + 4..].bytes().all(|b| b.is_ascii_digit()) => (&id[..at], &id[at..]),
        _ => (id, ""),
    };
    let mut parts = base.rsplitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(slot), Some(pid), Some(host)) if pid.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}-{slot}{gpu}")
        }
        _ => id.to_owned(),
    }
}

/// The running prover and what holds its sealed records (for re-encryption
/// after a rotation).
pub struct Started {
    /// Cutter, in-process workers and exporter.
    pub service: ProverService,
    /// The embedded job store's (or the shared queue's ledger's) raw file.
    pub raw: Arc<dyn KvStore>,
    /// The shared Postgres queue.
    pub queue: Option<Arc<PgJobStore>>,
    /// The queue as the node reads its progress (`/health`, the lag log).
    pub jobs: Arc<dyn JobStore>,
}

/// Starts cutting (and, with a proving backend, proving and exporting)
/// batches.
pub fn start(
    dir: &DataDir,
    settings: &ProverConfig,
    sequencer: Arc<Sequencer>,
    chain: ChainSpec,
    genesis: MemoryState,
    cipher: Option<SharedCipher>,
    trail: Trail,
) -> Result<Started> {
    // Key generation takes tens of seconds and gigabytes: only for in-process
    // workers.
    let backend = if settings.workers > 0 {
        settings.backend()?
    } else {
        None
    };
    let checkpoints = Arc::new(CheckpointFile {
        path: dir.checkpoint(),
        cipher: cipher.clone(),
    });
    // The embedded queue, or with a shared queue the node's own ledger of
    // what it cut (workers can write to the shared one).
    let raw: Arc<dyn KvStore> = Arc::new(RedbStore::open(&dir.prover_store())?);
    let local = encryption::EncryptedStore::wrap_if(raw.clone(), cipher.clone());
    let (jobs, queue): (Arc<dyn JobStore>, _) = match &settings.queue {
        Some(url) => {
            let q = Arc::new(
                PgJobStore::connect(url, chain.chain_id, cipher)
                    .with_context(|| format!("prover queue {}", audit::trail::redact(url)))?
                    .with_ledger(local),
            );
            (q.clone(), Some(q))
        }
        None => (Arc::new(KvJobStore::new(local)), None),
    };
    let policy = BatchPolicy {
        max_blocks: settings.max_blocks,
        max_wait: Duration::from_millis(settings.max_wait_ms),
        max_cycles: settings.max_batch_cycles,
        ..BatchPolicy::default()
    };
    let cutter = Cutter::new(
        chain,
        genesis,
        Arc::new(SequencerSource {
            sequencer,
            runtime: tokio::runtime::Handle::try_current().ok(),
        }),
        jobs.clone(),
        Arc::new(TrailHead(trail.clone())),
        policy,
    )
    .with_checkpoints(checkpoints, CHECKPOINT_EVERY);
    let workers: Vec<Worker> = match &backend {
        None => Vec::new(),
        Some(b) => (0..settings.workers)
            .map(|i| {
                Worker::new(
                    format!("{}-{}-{i}", hostname(), std::process::id()),
                    jobs.clone(),
                    b.clone(),
                    Duration::from_secs(settings.lease_secs),
                )
            })
            .collect(),
    };
    let program_id = backend
        .as_ref()
        .map(|b| b.program_id())
        .or(settings.program_id);
    let exporter = match program_id {
        Some(id) if settings.proves() => Some(
            Exporter::new(jobs.clone(), dir.proofs(), id)
                .with_observer(Arc::new(ExportAudit(trail))),
        ),
        _ => None,
    };
    tracing::info!(
        backend = %settings.backend,
        ?program_id,
        queue = settings.queue.as_deref().map(audit::trail::redact).unwrap_or_else(|| "embedded".into()),
        max_blocks = settings.max_blocks,
        max_batch_cycles = settings.max_batch_cycles,
        workers = workers.len(),
        "prover started"
    );
    let service = ProverService::spawn(Some(cutter), workers, exporter, Duration::from_millis(200));
    Ok(Started {
        service,
        raw,
        queue,
        jobs,
    })
}

/// This machine's name, to tell workers apart in the queue and audit log.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_labels_drop_the_process_id() {
        assert_eq!(worker_label("bank-gpu-01-4711-0"), "bank-gpu-01-0");
        assert_eq!(
            worker_label("bank-gpu-01-4711-1-gpu3"),
            "bank-gpu-01-1-gpu3"
        );
        assert_eq!(worker_label("external"), "external");
    }

    #[test]
    fn proving_only_in_worker_processes_needs_a_shared_queue_and_a_pinned_program() {
        let base = ProverConfig {
            enabled: true,
            workers: 0,
            ..ProverConfig::default()
        };
        let problems = base.problems().join("\n");
        assert!(problems.contains("prover.queue"), "{problems}");
        assert!(problems.contains("prover.program_id"), "{problems}");

        let file_queue = ProverConfig {
            queue: Some("/var/lib/queue.db".into()),
            program_id: Some(B256::repeat_byte(1)),
            ..base.clone()
        };
        let problems = file_queue.problems().join("\n");
        assert!(problems.contains("use a postgres:// URL"), "{problems}");

        let ok = ProverConfig {
            queue: Some("postgres://prover:secret@db/prover".into()),
            program_id: Some(B256::repeat_byte(1)),
            // No guest on this machine: the node proves nothing itself.
            guest_elf: PathBuf::from("/nonexistent.elf"),
            ..base
        };
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
    }

    #[test]
    fn segments_larger_than_openvm_proves_are_refused() {
        let settings = |mb| ProverConfig {
            enabled: true,
            backend: "native".into(),
            segment_max_memory_mb: mb,
            ..ProverConfig::default()
        };
        for mb in [2_048, 16_384, MAX_SEGMENT_MB] {
            assert!(settings(mb).problems().is_empty(), "{mb} MiB");
        }
        for mb in [0, 255, 49_152] {
            let problems = settings(mb).problems().join("\n");
            assert!(
                problems.contains("prover.segment_max_memory_mb")
                    && problems.contains("256 to 32768"),
                "{mb} MiB: {problems}"
            );
        }
    }
}
