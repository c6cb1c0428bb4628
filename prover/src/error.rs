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
