//! Proves queued batches.

use super::{jobs::JobStore, unix_ms, ExportedProof, ProofObserver};
use crate::{verify_proof, OutputsFile, ProverError, ZkBackend};
use state_transition::BatchOutputs;
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// A proving worker: claims a job, proves it, checks its own proof, stores
/// it and writes `batch-N.proof` / `batch-N.json`.
pub struct Worker {
    id: String,
    jobs: Arc<dyn JobStore>,
    backend: Arc<dyn ZkBackend>,
    out_dir: PathBuf,
    lease: Duration,
    observer: Option<Arc<dyn ProofObserver>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Longest pause between retries of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

impl Worker {
    /// A worker named `id` writing proof files into `out_dir`; a job it
    /// holds longer than `lease` may be taken over by another worker.
    pub fn new(
        id: impl Into<String>,
        jobs: Arc<dyn JobStore>,
        backend: Arc<dyn ZkBackend>,
        out_dir: PathBuf,
        lease: Duration,
    ) -> Self {
        Self {
            id: id.into(),
            jobs,
            backend,
            out_dir,
            lease,
            observer: None,
        }
    }

    /// Tells `observer` of every proof this worker exports.
    pub fn with_observer(mut self, observer: Arc<dyn ProofObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Proves one due job, if any; returns its batch number.
    pub fn run_once(&self) -> Result<Option<u64>, ProverError> {
        let Some((job, witness)) =
            self.jobs
                .claim(&self.id, unix_ms(), self.lease.as_millis() as u64)?
        else {
            return Ok(None);
        };
        let n = job.batch_number;
        tracing::info!(batch = n, attempt = job.attempts, worker = %self.id, backend = self.backend.name(), "proving");
        match self.prove(n, &job.outputs, &witness) {
            Ok((proof, outputs, proving_ms, cycles)) => {
                self.jobs.finish(n, &self.id, &proof, proving_ms, cycles)?;
                self.write_files(n, &proof, &outputs, cycles)?;
                if let Some(o) = &self.observer {
                    o.exported(&ExportedProof {
                        outputs,
                        proof_digest: alloy_primitives::keccak256(&proof),
                        proof_bytes: proof.len(),
                        program_id: self.backend.program_id(),
                        proving_ms,
                        cycles,
                    });
                }
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
                self.jobs.fail(
                    n,
                    &self.id,
                    &e.to_string(),
                    unix_ms(),
                    backoff.as_millis() as u64,
                )?;
                Err(e)
            }
        }
    }

    fn prove(
        &self,
        n: u64,
        encoded_outputs: &[u8],
        witness: &[u8],
    ) -> Result<(Vec<u8>, BatchOutputs, u64, Option<u64>), ProverError> {
        let outputs = BatchOutputs::decode(encoded_outputs)
            .ok_or_else(|| ProverError::Store(format!("outputs of batch {n} do not decode")))?;
        let run = self.backend.execute(witness)?;
        if run.digest != outputs.digest() {
            return Err(ProverError::OutputsMismatch {
                expected: outputs.digest(),
                got: run.digest,
            });
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
        Ok((proof, outputs, proving_ms, run.cycles))
    }

    fn write_files(
        &self,
        n: u64,
        proof: &[u8],
        outputs: &BatchOutputs,
        cycles: Option<u64>,
    ) -> Result<(), ProverError> {
        let io = |path: PathBuf| move |source| ProverError::Io { path, source };
        std::fs::create_dir_all(&self.out_dir).map_err(io(self.out_dir.clone()))?;
        let proof_path = self.out_dir.join(OutputsFile::proof_file_name(n));
        storage::write_atomic(&proof_path, proof)
            .map_err(|e| ProverError::Store(format!("{}: {e}", proof_path.display())))?;
        let file = OutputsFile::new(
            outputs,
            self.backend.program_id(),
            self.backend.name(),
            cycles,
        );
        let json =
            serde_json::to_vec_pretty(&file).map_err(|e| ProverError::Store(e.to_string()))?;
        let json_path = self.out_dir.join(OutputsFile::file_name(n));
        storage::write_atomic(&json_path, &json)
            .map_err(|e| ProverError::Store(format!("{}: {e}", json_path.display())))
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
