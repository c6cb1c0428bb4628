use alloy_primitives::B256;
use std::path::PathBuf;

/// Why a proof file was refused, or its files could not be written.
///
/// Every variant but [`ProofError::Io`] is final for that file: trying it
/// again gives the same answer.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
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
    /// Writing a proof or outputs file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}
