//! Verifying OpenVM proofs: one aggregated STARK per batch, checked against
//! the verifying key and program commitment the proof file carries (whose
//! hash is the program id the caller pinned).

mod shape;

use crate::{ProofEnvelope, ProofError};
use alloy_primitives::B256;
use openvm_stark_sdk::{
    config::baby_bear_poseidon2::Digest,
    openvm_stark_backend::{
        codec::Decode,
        p3_field::{integers::QuotientMap, PrimeField32},
    },
};
use openvm_verify_stark_host::{
    verify_vm_stark_proof_decoded, vk::VmStarkVerifyingKey, VmStarkProof,
};

/// Name written into proof files; a verifier refuses other backends.
pub const BACKEND: &str = "openvm-stark-2.0.2";

/// A program commitment as proof files carry it: each field element
/// big-endian.
pub fn commit_bytes(digest: &Digest) -> Vec<u8> {
    digest
        .iter()
        .flat_map(|f| f.as_canonical_u32().to_be_bytes())
        .collect()
}

/// The inverse of [`commit_bytes`]; `None` unless every element is canonical.
fn commit_from_bytes(bytes: &[u8]) -> Option<Digest> {
    let mut digest = Digest::default();
    if bytes.len() != digest.len() * 4 {
        return None;
    }
    for (f, chunk) in digest.iter_mut().zip(bytes.chunks_exact(4)) {
        let canonical: Option<_> =
            QuotientMap::from_canonical_checked(u32::from_be_bytes(chunk.try_into().ok()?));
        *f = canonical?;
    }
    Some(digest)
}

/// The outputs digest the batch program reveals: the first 32 public bytes.
pub fn outputs_digest(public_values: &[u8]) -> Option<B256> {
    let bytes: [u8; 32] = public_values.get(..32)?.try_into().ok()?;
    Some(B256::from(bytes))
}

/// Checks an OpenVM proof envelope and returns the outputs digest it proves.
///
/// By now the key and commitment are the pinned program's (the caller
/// checked the id), but the proof bytes are whatever the sender chose: they
/// are walked with a bounded budget before OpenVM decodes them (see
/// [`shape`]), and decoding and checking run under `catch_unwind`, so a
/// malformed proof is reported as one instead of taking the verifier (a
/// counterparty's CLI, the node's exporter) down.
pub(crate) fn verify(envelope: &ProofEnvelope) -> Result<B256, ProofError> {
    let started = std::time::Instant::now();
    shape::check(&envelope.proof)
        .map_err(|e| ProofError::BadProofFile(format!("proof encoding: {e}")))?;
    let vk: VmStarkVerifyingKey = bitcode::deserialize(&envelope.verifying_key)
        .map_err(|_| ProofError::BadProofFile("verifying key does not decode".into()))?;
    let proof = std::panic::catch_unwind(|| VmStarkProof::decode_from_bytes(&envelope.proof))
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ProofError::BadProofFile("proof does not decode".into()))?;
    let commit = commit_from_bytes(&envelope.program_commit)
        .ok_or_else(|| ProofError::BadProofFile("program commitment is malformed".into()))?;
    // The program id hashes both fields; they must also agree, or a file
    // could name one program and carry the key of another.
    if commit != vk.baseline.app_exe_commit {
        return Err(ProofError::BadProofFile(
            "program commitment differs from the verifying key's".into(),
        ));
    }
    let decoded = started.elapsed();
    std::panic::catch_unwind(|| verify_vm_stark_proof_decoded(&vk, &proof))
        .map_err(|_| ProofError::Invalid("the proof is malformed".into()))?
        .map_err(|e| ProofError::Invalid(e.to_string()))?;
    tracing::debug!(
        decode_ms = decoded.as_secs_f64() * 1e3,
        verify_ms = (started.elapsed() - decoded).as_secs_f64() * 1e3,
        "aggregated proof verified"
    );
    let bytes: Vec<u8> = proof
        .user_pvs_proof
        .public_values
        .iter()
        .map(|f| u8::try_from(f.as_canonical_u32()))
        .collect::<Result<_, _>>()
        .map_err(|_| ProofError::Invalid("public values are not bytes".into()))?;
    outputs_digest(&bytes)
        .ok_or_else(|| ProofError::Invalid("the program revealed no outputs digest".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitments_round_trip_and_refuse_non_canonical_elements() {
        let mut bytes = Vec::new();
        for i in 0..8u32 {
            bytes.extend_from_slice(&(i * 1_000_003).to_be_bytes());
        }
        let digest = commit_from_bytes(&bytes).expect("canonical elements");
        assert_eq!(commit_bytes(&digest), bytes);
        assert!(commit_from_bytes(&bytes[..31]).is_none(), "short");
        // BabyBear's modulus, 15·2^27 + 1, is not a canonical element.
        bytes[..4].copy_from_slice(&0x7800_0001u32.to_be_bytes());
        assert!(commit_from_bytes(&bytes).is_none(), "non-canonical");
    }
}
