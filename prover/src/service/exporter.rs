//! Writes proven batches out for export, in batch order: checks each proof
//! against the pinned program, then writes `proofs/batch-N.proof` and
//! `batch-N.json` and tells the observer (the audit log).
//!
//! The exporter runs in the node, whoever proved the batch: a worker on a
//! proving machine only has the queue, and its proof is not trusted until
//! the node has checked it here.

use super::{
    queue::{ExporterQueue, Retry},
    unix_ms, ExportedProof, ProofObserver,
};
use crate::{JobState, ProverError};
use alloy_primitives::B256;
use proof::{verify_envelope, OutputsFile, ProofEnvelope};
use state_transition::BatchOutputs;
use std::{path::PathBuf, sync::Arc, time::Duration};

/// How long a batch whose proof was refused waits before it is proven again.
const REJECT_RETRY: Duration = Duration::from_secs(30);

/// Exports proofs from the queue into a directory.
pub struct Exporter {
    jobs: Arc<dyn ExporterQueue>,
    out_dir: PathBuf,
    program_id: B256,
    observer: Option<Arc<dyn ProofObserver>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("out_dir", &self.out_dir)
            .field("program_id", &self.program_id)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Exports proofs of `program_id` into `out_dir`.
    pub fn new(jobs: Arc<dyn ExporterQueue>, out_dir: PathBuf, program_id: B256) -> Self {
        Self {
            jobs,
            out_dir,
            program_id,
            observer: None,
        }
    }

    /// Tells `observer` of every proof exported.
    pub fn with_observer(mut self, observer: Arc<dyn ProofObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Exports the next batch if it is proven; returns its number.
    ///
    /// A proof that does not verify for the batch's outputs and the pinned
    /// program is dropped and the batch goes back to the queue.
    pub fn run_once(&self) -> Result<Option<u64>, ProverError> {
        let n = self.jobs.exported_through()? + 1;
        let Some(job) = self.jobs.job(n)? else {
            return Ok(None);
        };
        let JobState::Proven {
            proving_ms,
            cycles,
            worker,
        } = job.state
        else {
            return Ok(None);
        };
        let proof = self
            .jobs
            .proof(n)?
            .ok_or_else(|| ProverError::Store(format!("proof of batch {n} missing")))?;
        let outputs = BatchOutputs::decode(&job.outputs)
            .ok_or_else(|| ProverError::Store(format!("outputs of batch {n} do not decode")))?;
        let checked = ProofEnvelope::decode(&proof).and_then(|envelope| {
            verify_envelope(&envelope, outputs.digest(), self.program_id)?;
            Ok(envelope.backend)
        });
        let backend = match checked {
            Ok(backend) => backend,
            Err(e) => {
                tracing::error!(batch = n, %worker, error = %e, "proof refused; proving the batch again");
                let why = format!("proof from worker {worker} refused at export: {e}");
                let retry = Retry::new(&why, unix_ms(), REJECT_RETRY.as_millis() as u64);
                self.jobs.reject(n, retry)?;
                return Err(e.into());
            }
        };
        self.write_files(n, &proof, &outputs, &backend, cycles)?;
        if let Some(o) = &self.observer {
            o.exported(&ExportedProof {
                outputs,
                proof_digest: alloy_primitives::keccak256(&proof),
                proof_bytes: proof.len(),
                program_id: self.program_id,
                proving_ms,
                cycles,
                worker,
            });
        }
        self.jobs.set_exported(n)?;
        tracing::info!(batch = n, "proof exported");
        Ok(Some(n))
    }

    fn write_files(
        &self,
        n: u64,
        proof: &[u8],
        outputs: &BatchOutputs,
        backend: &str,
        cycles: Option<u64>,
    ) -> Result<(), ProverError> {
        OutputsFile::new(outputs, self.program_id, backend, cycles).write_with_proof(
            &self.out_dir,
            &OutputsFile::stem(n),
            proof,
        )?;
        Ok(())
    }
}
