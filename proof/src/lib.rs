//! A batch proof as it leaves the bank: what a counterparty, the settlement
//! bridge and the node's exporter need to read and check one, and nothing
//! of how it was made.
//!
//! - [`ProofEnvelope`]: the proof file (`batch-N.proof`), self-contained.
//! - [`OutputsFile`]: the batch's public outputs beside it (`batch-N.json`).
//! - [`verify_proof`]: `Ok` only for a valid proof of exactly those outputs
//!   under the pinned program id.
//!
//! Feature `openvm` adds the OpenVM STARK verifier; without it every proof
//! is refused as from an unsupported backend. The prover (witnesses, the
//! zkVM, the job queue) is the `prover` crate, which depends on this one.

mod envelope;
mod error;
mod files;
#[cfg(feature = "openvm")]
pub mod openvm;
mod verify;

pub use envelope::ProofEnvelope;
pub use error::ProofError;
pub use files::OutputsFile;
pub use verify::{verify_envelope, verify_proof, verify_proof_digest};
