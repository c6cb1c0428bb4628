//! Proves queued batches.

use super::{
    queue::{Lease, Made, Retry, WorkerQueue},
    unix_ms,
};
use crate::{ProverError, ZkBackend};
use parking_lot::Mutex;
use proof::{verify_proof, ProofError};
use state_transition::BatchOutputs;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// A proving worker: claims a job, proves it, checks its own proof and
/// stores it in the queue (the node's [`Exporter`](super::Exporter) writes
/// the files). It may run in the node or in a process of its own on a
/// proving machine (`prividium prover worker`).
pub struct Worker {
    id: String,
    jobs: Arc<dyn WorkerQueue>,
    backend: Arc<dyn ZkBackend>,
    lease: Duration,
    /// The batch being proven now.
    holding: Mutex<Option<u64>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Longest pause between attempts to store a proof.
const FINISH_RETRY_MAX: Duration = Duration::from_secs(8);

/// Longest pause between retries of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

impl Worker {
    /// A worker named `id`; a job it holds longer than `lease` may be taken
    /// over by another worker.
    pub fn new(
        id: impl Into<String>,
        jobs: Arc<dyn WorkerQueue>,
        backend: Arc<dyn ZkBackend>,
        lease: Duration,
    ) -> Self {
        Self {
            id: id.into(),
            jobs,
            backend,
            lease,
            holding: Mutex::new(None),
        }
    }

    /// Hands the batch being proven back to the queue (the worker is
    /// stopping): otherwise it would wait for the lease to run out, and
    /// export, which is in batch order, with it.
    pub fn release(&self) {
        if let Some(n) = self.holding.lock().take() {
            let why = Retry::new("worker stopped before finishing", unix_ms(), 0);
            match self.jobs.fail(n, &self.id, why) {
                Ok(()) => tracing::info!(batch = n, "batch handed back to the queue"),
                Err(e) => tracing::warn!(batch = n, error = %e, "cannot hand the batch back"),
            }
        }
    }

    /// Stores a proof, retrying a failing queue a few times (the proof
    /// took minutes to make).
    fn store(&self, n: u64, made: Made<'_>) -> Result<(), ProverError> {
        let mut wait = Duration::from_secs(1);
        loop {
            match self.jobs.finish(n, &self.id, made) {
                Err(e) if e.is_retryable() && wait <= FINISH_RETRY_MAX => {
                    tracing::warn!(batch = n, error = %e, "storing the proof failed; retrying");
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                done => return done,
            }
        }
    }

    /// Proves one due job, if any; returns its batch number.
    pub fn run_once(&self) -> Result<Option<u64>, ProverError> {
        let lease = Lease::new(&self.id, unix_ms(), self.lease.as_millis() as u64);
        let Some((job, witness)) = self.jobs.claim(lease)? else {
            return Ok(None);
        };
        let n = job.batch_number;
        tracing::info!(batch = n, attempt = job.attempts, worker = %self.id, backend = self.backend.name(), "proving");
        *self.holding.lock() = Some(n);
        let proved = self.prove(n, &job.outputs, &witness);
        if self.holding.lock().take().is_none() {
            return Err(ProverError::LeaseLost(n)); // released while proving
        }
        match proved {
            Ok((proof, proving_ms, cycles)) => {
                self.store(n, Made::new(&proof, proving_ms, cycles))?;
                tracing::info!(
                    batch = n,
                    proving_ms,
                    cycles,
                    proof_bytes = proof.len(),
                    "batch proven"
                );
                Ok(Some(n))
            }
            Err(e) => {
                let backoff = Duration::from_secs(1 << job.attempts.min(10)).min(MAX_BACKOFF);
                tracing::warn!(batch = n, error = %e, retry_in_s = backoff.as_secs(), "proving failed");
                let why = e.to_string();
                let retry = Retry::new(&why, unix_ms(), backoff.as_millis() as u64);
                self.jobs.fail(n, &self.id, retry)?;
                Err(e)
            }
        }
    }

    fn prove(
        &self,
        n: u64,
        encoded_outputs: &[u8],
        witness: &[u8],
    ) -> Result<(Vec<u8>, u64, Option<u64>), ProverError> {
        let outputs = BatchOutputs::decode(encoded_outputs)
            .ok_or_else(|| ProverError::Store(format!("outputs of batch {n} do not decode")))?;
        let run = self.backend.execute(witness)?;
        if run.digest != outputs.digest() {
            return Err(ProofError::OutputsMismatch {
                expected: outputs.digest(),
                got: run.digest,
            }
            .into());
        }
        let started = Instant::now();
        let done = Arc::new(AtomicBool::new(false));
        let ticker = progress_ticker(n, run.cycles, done.clone());
        let proof = self.backend.prove(witness);
        done.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        let proof = proof?;
        let proving_ms = started.elapsed().as_millis() as u64;
        verify_proof(&proof, &outputs, self.backend.program_id())?;
        Ok((proof, proving_ms, run.cycles))
    }
}

/// Logs every 15 s while a proof runs (OpenVM reports no progress itself).
fn progress_ticker(
    batch: u64,
    cycles: Option<u64>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut next = Duration::from_secs(15);
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            if started.elapsed() >= next {
                tracing::info!(batch, elapsed_s = next.as_secs(), cycles, "still proving");
                next += Duration::from_secs(15);
            }
        }
    })
}
