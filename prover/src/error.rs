/// What can go wrong while cutting, witnessing, proving or verifying a batch.
#[derive(Debug, thiserror::Error)]
pub enum ProverError {
    /// A batch needs at least one block.
    #[error("a batch needs at least one block")]
    EmptyBatch,
    /// Blocks given out of order.
    #[error("expected block {expected} next, got block {got}")]
    NotNext {
        /// The block after the prover's state.
        expected: u64,
        /// What was given.
        got: u64,
    },
    /// Re-executing a block did not reproduce the chain.
    #[error("block {number} does not re-execute: {reason}")]
    Diverged {
        /// Block number.
        number: u64,
        /// What differed.
        reason: String,
    },
    /// A header the witness needs is not available.
    #[error("header of block {0} is not available")]
    MissingHeader(u64),
    /// The batch program refused the witness.
    #[error("batch program failed: {0}")]
    Program(#[from] state_transition::BatchError),
    /// The job queue's storage failed.
    #[error("prover store: {0}")]
    Store(String),
    /// Another worker took the job over (the lease ran out).
    #[error("lease on batch {0} was lost")]
    LeaseLost(u64),
    /// The chain could not be read.
    #[error("chain: {0}")]
    Chain(String),
    /// This backend only executes.
    #[error("the {0} backend cannot prove")]
    CannotProve(&'static str),
    /// The zkVM failed (bad ELF, guest panic, prover error).
    #[error("zkVM: {0}")]
    Zkvm(String),
    /// A proof, or its files, refused or not written.
    #[error(transparent)]
    Proof(#[from] proof::ProofError),
}

impl ProverError {
    /// Whether the same step may succeed if tried again: the queue's
    /// storage or the chain was unavailable for a moment. Every other error
    /// is a verdict on the batch, the job or the proof (it re-executes
    /// differently, the lease moved on, the proof is refused) that a retry
    /// would only repeat.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Chain(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_or_chain_hiccup_is_retried_a_verdict_is_not() {
        assert!(ProverError::Store("postgres: connection reset".into()).is_retryable());
        assert!(ProverError::Chain("block 9 unreadable".into()).is_retryable());
        assert!(!ProverError::LeaseLost(4).is_retryable());
        assert!(!ProverError::Diverged {
            number: 9,
            reason: "state root".into()
        }
        .is_retryable());
    }
}
