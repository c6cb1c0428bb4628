//! Where proven batches come from: the files the prover writes
//! (`proofs/batch-N.json` + `batch-N.proof`), read back and checked before
//! anything derived from them is sent out.

use crate::BridgeError;
use alloy_primitives::B256;
use proof::{verify_proof, OutputsFile, ProofEnvelope};
use state_transition::BatchOutputs;
use std::path::PathBuf;

/// A batch ready for settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenBatch {
    /// Its public outputs.
    pub outputs: BatchOutputs,
    /// The program it was proven with.
    pub program_id: B256,
    /// The proof file's bytes.
    pub proof: Vec<u8>,
}

/// Proven batches by number.
pub trait ProvenBatches: Send + Sync {
    /// Batch `n`, or `None` while it is not proven yet.
    fn get(&self, n: u64) -> Result<Option<ProvenBatch>, BridgeError>;
}

/// How much of a proof the bridge re-checks before settling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofCheck {
    /// Full verification (the prover's own check, repeated: the proofs
    /// directory is plain files another process could replace).
    Verify,
    /// Only that the files agree on the program and belong together
    /// (for settlement tests with synthetic proofs).
    Consistency,
}

/// The prover's output directory.
#[derive(Debug, Clone)]
pub struct ProofsDir {
    dir: PathBuf,
    check: ProofCheck,
}

impl ProofsDir {
    /// Reads batches from `dir`, checking each as `check` says.
    pub fn new(dir: impl Into<PathBuf>, check: ProofCheck) -> Self {
        Self {
            dir: dir.into(),
            check,
        }
    }
}

impl ProvenBatches for ProofsDir {
    fn get(&self, n: u64) -> Result<Option<ProvenBatch>, BridgeError> {
        let bad = |reason: String| BridgeError::BadBatch { batch: n, reason };
        let json_path = self.dir.join(OutputsFile::file_name(n));
        let proof_path = self.dir.join(OutputsFile::proof_file_name(n));
        // The worker writes the proof first and the outputs last, so the
        // outputs file is what says a batch is complete.
        let json = match std::fs::read(&json_path) {
            Ok(j) => j,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(format!("{}: {e}", json_path.display()))),
        };
        let file: OutputsFile = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("{}: {e}", json_path.display())))?;
        let proof = std::fs::read(&proof_path)
            .map_err(|e| bad(format!("{}: {e}", proof_path.display())))?;
        let outputs = file.outputs();
        if outputs.batch_number != n {
            return Err(bad(format!(
                "{} describes batch {}",
                json_path.display(),
                outputs.batch_number
            )));
        }
        match self.check {
            // Checks the proof's program as well.
            ProofCheck::Verify => verify_proof(&proof, &outputs, file.program_id)?,
            ProofCheck::Consistency => {
                let claimed = ProofEnvelope::decode(&proof)?.claimed_program_id();
                if claimed != file.program_id {
                    return Err(bad(format!(
                        "proof is for program {claimed}, outputs name {}",
                        file.program_id
                    )));
                }
            }
        }
        Ok(Some(ProvenBatch {
            outputs,
            program_id: file.program_id,
            proof,
        }))
    }
}
