//! Counterparty verification: a proof file, the public outputs and the
//! pinned program id, nothing else.

use crate::{ProofEnvelope, ProofError};
use alloy_primitives::B256;
use state_transition::BatchOutputs;

/// Checks that `proof_file` proves exactly `outputs` for program
/// `program_id`. `Ok` only for a valid proof of those outputs.
pub fn verify_proof(
    proof_file: &[u8],
    outputs: &BatchOutputs,
    program_id: B256,
) -> Result<(), ProofError> {
    verify_proof_digest(proof_file, outputs.digest(), program_id)
}

/// Checks that `proof_file` proves outputs whose digest is `digest` (what a
/// settlement contract stores) for program `program_id`.
pub fn verify_proof_digest(
    proof_file: &[u8],
    digest: B256,
    program_id: B256,
) -> Result<(), ProofError> {
    verify_envelope(&ProofEnvelope::decode(proof_file)?, digest, program_id)
}

/// [`verify_proof_digest`] on a proof file already decoded (the node's
/// exporter also needs the envelope's backend name).
pub fn verify_envelope(
    envelope: &ProofEnvelope,
    digest: B256,
    program_id: B256,
) -> Result<(), ProofError> {
    let claimed = envelope.claimed_program_id();
    if claimed != program_id {
        return Err(ProofError::WrongProgram {
            expected: program_id,
            got: claimed,
        });
    }
    let proven = proven_digest(envelope)?;
    if proven != digest {
        return Err(ProofError::OutputsMismatch {
            expected: digest,
            got: proven,
        });
    }
    Ok(())
}

/// The outputs digest a backend's proof proves.
fn proven_digest(envelope: &ProofEnvelope) -> Result<B256, ProofError> {
    match envelope.backend.as_str() {
        #[cfg(feature = "openvm")]
        crate::openvm::BACKEND => crate::openvm::verify(envelope),
        other => Err(ProofError::UnknownBackend(other.to_string())),
    }
}
