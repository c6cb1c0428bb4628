//! The proving service: [`Cutter`] turns derived blocks into queued batch
//! jobs, [`Worker`]s prove them, the [`Exporter`] checks each proof and
//! writes it out; all loop in [`ProverService`].

mod checkpoint;
mod cutter;
mod exporter;
mod progress;
mod queue;
mod worker;

pub use checkpoint::CheckpointStore;
pub use cutter::{BatchPolicy, Cutter, DEFAULT_MAX_CYCLES};
pub use exporter::Exporter;
pub use progress::ProvingProgress;
pub use queue::{
    Claimed, CutterQueue, ExporterQueue, Job, JobState, JobStore, KvJobStore, Lease, Made,
    PgJobStore, QueueView, ResealCount, Retry, WorkerQueue,
};
pub use worker::Worker;

use crate::{ChainBlock, ProverError};
use state_transition::AuditHead;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

/// Where the prover reads the chain (the derived store, in the appliance).
pub trait ChainSource: Send + Sync {
    /// Last block available.
    fn head(&self) -> Result<u64, ProverError>;
    /// Block `n` (0 is genesis).
    fn block(&self, n: u64) -> Result<ChainBlock, ProverError>;
    /// Blocks until the head moves past `seen` or `timeout` passes, and
    /// says it did; a source that cannot tell of new heads returns `false`
    /// at once, and the cutter polls it instead.
    fn wait_past(&self, seen: u64, timeout: Duration) -> bool {
        let _ = (seen, timeout);
        false
    }
}

/// Where the audit tree head bound into each batch comes from.
pub trait AuditSource: Send + Sync {
    /// The latest signed head.
    fn head(&self) -> AuditHead;
}

/// A proof written for export (`proofs/batch-N.proof` + `batch-N.json`).
#[derive(Debug, Clone)]
pub struct ExportedProof {
    /// The batch's public outputs.
    pub outputs: state_transition::BatchOutputs,
    /// keccak256 of the proof file (what settlement commits to).
    pub proof_digest: alloy_primitives::B256,
    /// Size of the proof file.
    pub proof_bytes: usize,
    /// The program proven.
    pub program_id: alloy_primitives::B256,
    /// Proving time.
    pub proving_ms: u64,
    /// Cycles executed, when the backend counts them.
    pub cycles: Option<u64>,
    /// The worker that proved it.
    pub worker: String,
}

/// Told of every proof a worker exports (the appliance records it in the
/// audit log: a proof is data leaving the prover).
pub trait ProofObserver: Send + Sync {
    /// `proof` was written for export.
    fn exported(&self, proof: &ExportedProof);
}

/// How many of a stage's loops are processing now; the rest are waiting. A
/// scrape tells a saturated stage (always busy) from an idle one, and a
/// stuck one (busy, while the lag grows) from both.
pub(crate) fn busy_gauge(stage: &'static str) -> metrics::Gauge {
    metrics::gauge!("prividium_stage_busy", "stage" => stage)
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The cutter and workers running on their own threads until stopped.
#[derive(Debug)]
pub struct ProverService {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    workers: Vec<Arc<Worker>>,
}

impl ProverService {
    /// Starts `cutter` and `exporter` (the node has both, a worker process
    /// neither) and `workers`, polling every `poll`.
    pub fn spawn(
        cutter: Option<Cutter>,
        workers: Vec<Worker>,
        exporter: Option<Exporter>,
        poll: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if let Some(cutter) = cutter {
            threads.push(spawn_loop("prover-cutter", stop.clone(), poll, cutter));
        }
        if let Some(exporter) = exporter {
            threads.push(spawn_loop("prover-export", stop.clone(), poll, exporter));
        }
        let workers: Vec<Arc<Worker>> = workers.into_iter().map(Arc::new).collect();
        for worker in &workers {
            threads.push(spawn_loop(
                "prover-worker",
                stop.clone(),
                poll,
                worker.clone(),
            ));
        }
        Self {
            stop,
            threads,
            workers,
        }
    }

    /// Asks every loop to stop and waits up to `wait` for them. A proof
    /// still running is abandoned and its batch handed back to the queue,
    /// for another worker or the next start.
    pub fn stop(self, wait: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        for w in &self.workers {
            w.release();
        }
        let deadline = std::time::Instant::now() + wait;
        for t in self.threads {
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// One of the service's loops: a step, and how it waits when the step
/// found nothing to do.
trait Stage: Send + 'static {
    /// Does one unit of work; `true` when there may be more at once.
    fn step(&mut self) -> Result<bool, ProverError>;
    /// Waits for work where the stage can be told of it; `false` when it
    /// cannot, and the loop polls instead.
    fn idle(&mut self) -> bool {
        false
    }
}

impl Stage for Cutter {
    fn step(&mut self) -> Result<bool, ProverError> {
        self.cut_if_due().map(|n| n.is_some())
    }
    /// Between cuts: until the chain grows, or the oldest waiting block
    /// reaches the policy's `max_wait`.
    fn idle(&mut self) -> bool {
        self.wait_for_work()
    }
}

impl Stage for Exporter {
    fn step(&mut self) -> Result<bool, ProverError> {
        self.run_once().map(|n| n.is_some())
    }
}

impl Stage for Arc<Worker> {
    fn step(&mut self) -> Result<bool, ProverError> {
        self.run_once().map(|n| n.is_some())
    }
}

/// Runs `stage` until stopped. After a step that did nothing it waits as the
/// stage can ([`Stage::idle`]), or sleeps `poll`; after a failure it sleeps
/// `poll`.
fn spawn_loop(
    name: &'static str,
    stop: Arc<AtomicBool>,
    poll: Duration,
    mut stage: impl Stage,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let busy = busy_gauge(name);
            while !stop.load(Ordering::Relaxed) {
                busy.increment(1.0);
                let stepped = stage.step();
                busy.decrement(1.0);
                let waited = match stepped {
                    Ok(true) => continue,
                    Ok(false) => stage.idle(),
                    Err(e) => {
                        tracing::warn!(task = %name, error = %e, "prover step failed");
                        false
                    }
                };
                if !waited {
                    std::thread::sleep(poll);
                }
            }
        })
        .expect("spawn prover thread")
}
