//! The seam between the prover service and a zkVM.

use crate::ProverError;
use alloy_primitives::B256;

/// A run of the batch program without a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execution {
    /// keccak256 of the encoded public outputs, as the program revealed it.
    pub digest: B256,
    /// RISC-V instructions executed (`None` when run natively).
    pub cycles: Option<u64>,
}

/// Runs and proves the batch program on some zkVM.
///
/// OpenVM is the one implemented ([`crate::OpenVmBackend`], feature
/// `openvm`); RISC Zero or Airbender would be further implementations. The
/// witness is [`state_transition::BatchWitness::encode`]'s bytes.
pub trait ZkBackend: Send + Sync {
    /// Short name written into proof files (e.g. `openvm-stark-2.0.2`).
    fn name(&self) -> &'static str;
    /// The program identity verifiers pin: a proof from any other program,
    /// or from this program under other verifying keys, does not verify.
    fn program_id(&self) -> B256;
    /// Runs the program: its outputs digest and cycle count, no proof.
    fn execute(&self, witness: &[u8]) -> Result<Execution, ProverError>;
    /// Proves one run; the bytes are what [`proof::verify_proof`] checks.
    fn prove(&self, witness: &[u8]) -> Result<Vec<u8>, ProverError>;
}

/// The batch program run natively: the same code the guest runs, for
/// checking a witness before spending minutes proving it, and for
/// execute-only deployments and tests. It cannot prove.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeBackend;

impl ZkBackend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    fn program_id(&self) -> B256 {
        B256::ZERO
    }

    fn execute(&self, witness: &[u8]) -> Result<Execution, ProverError> {
        let witness = state_transition::BatchWitness::decode(witness)?;
        let outputs = state_transition::execute_batch(&witness)?;
        Ok(Execution {
            digest: outputs.digest(),
            cycles: None,
        })
    }

    fn prove(&self, _witness: &[u8]) -> Result<Vec<u8>, ProverError> {
        Err(ProverError::CannotProve(self.name()))
    }
}
