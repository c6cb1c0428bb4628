use alloy_primitives::B256;

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
    /// Writing proof files failed.
    #[error("writing {path}: {source}")]
    Io {
        /// File.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// This backend only executes.
    #[error("the {0} backend cannot prove")]
    CannotProve(&'static str),
    /// The zkVM failed (bad ELF, guest panic, prover error).
    #[error("zkVM: {0}")]
    Zkvm(String),
    /// A proof file that is not well-formed.
    #[error("bad proof file: {0}")]
    BadProofFile(String),
    /// A well-formed proof that does not verify.
    #[error("proof does not verify: {0}")]
    Invalid(String),
    /// The proof is of another program (or under other keys).
    #[error("proof is for program {got}, not the pinned {expected}")]
    WrongProgram {
        /// Pinned program id.
        expected: B256,
        /// What the proof claims.
        got: B256,
    },
    /// A proof from a backend this build cannot verify.
    #[error("proof backend {0} is not supported by this build")]
    UnknownBackend(String),
    /// The proof is of different outputs.
    #[error("proof is of outputs digest {got}, not {expected}")]
    OutputsMismatch {
        /// Expected digest.
        expected: B256,
        /// Digest produced.
        got: B256,
    },
}
