//! The proof file format (`batch-N.proof`): self-contained, so a
//! counterparty needs only this file, the outputs and the program id.
//!
//! Layout (integers big-endian): magic `PRVDPRF1`, then four
//! length-prefixed fields: backend name (u32 length), program commitment
//! (u32), verifying key (u64) and proof (u64). The program id a verifier pins
//! is derived from the commitment and the verifying key
//! ([`ProofEnvelope::program_id`]), so a proof made under any other program
//! or key does not match it.

use crate::ProofError;
use alloy_primitives::{keccak256, B256};

const MAGIC: &[u8; 8] = b"PRVDPRF1";
/// Larger inputs are refused before anything is allocated for them.
const MAX_FIELD: u64 = 1 << 31;

/// A proof with everything needed to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofEnvelope {
    /// Which verifier understands it.
    pub backend: String,
    /// The zkVM's commitment to the program image.
    pub program_commit: Vec<u8>,
    /// Serialized verifying key.
    pub verifying_key: Vec<u8>,
    /// Serialized proof.
    pub proof: Vec<u8>,
}

impl ProofEnvelope {
    /// `keccak256(backend ‖ keccak256(commit) ‖ keccak256(vk))`.
    pub fn program_id(backend: &str, program_commit: &[u8], verifying_key: &[u8]) -> B256 {
        let mut buf = Vec::with_capacity(backend.len() + 64);
        buf.extend_from_slice(backend.as_bytes());
        buf.extend_from_slice(keccak256(program_commit).as_slice());
        buf.extend_from_slice(keccak256(verifying_key).as_slice());
        keccak256(buf)
    }

    /// The id of the program this proof claims to be from.
    pub fn claimed_program_id(&self) -> B256 {
        Self::program_id(&self.backend, &self.program_commit, &self.verifying_key)
    }

    /// File bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            8 + 24
                + self.backend.len()
                + self.program_commit.len()
                + self.verifying_key.len()
                + self.proof.len(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.backend.len() as u32).to_be_bytes());
        out.extend_from_slice(self.backend.as_bytes());
        out.extend_from_slice(&(self.program_commit.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.program_commit);
        out.extend_from_slice(&(self.verifying_key.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.verifying_key);
        out.extend_from_slice(&(self.proof.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.proof);
        out
    }

    /// Parses file bytes; anything malformed is [`ProofError::BadProofFile`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let mut r = Reader(bytes);
        if r.take(8)? != MAGIC {
            return Err(bad("not a prividium proof file"));
        }
        let backend = r.field(4)?;
        let backend = String::from_utf8(backend.to_vec()).map_err(|_| bad("backend name"))?;
        let program_commit = r.field(4)?.to_vec();
        let verifying_key = r.field(8)?.to_vec();
        let proof = r.field(8)?.to_vec();
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            backend,
            program_commit,
            verifying_key,
            proof,
        })
    }
}

fn bad(what: &str) -> ProofError {
    ProofError::BadProofFile(what.to_string())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProofError> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self, width: usize) -> Result<&'a [u8], ProofError> {
        let raw = self.take(width)?;
        let mut len = [0u8; 8];
        len[8 - width..].copy_from_slice(raw);
        let len = u64::from_be_bytes(len);
        if len > MAX_FIELD {
            return Err(bad("field too large"));
        }
        self.take(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let env = ProofEnvelope {
            backend: "openvm-stark-2.0.2".into(),
            program_commit: vec![1; 32],
            verifying_key: vec![2; 100],
            proof: vec![3; 1000],
        };
        let bytes = env.encode();
        assert_eq!(ProofEnvelope::decode(&bytes).unwrap(), env);
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            assert!(
                ProofEnvelope::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ProofEnvelope::decode(&longer).is_err());
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(ProofEnvelope::decode(&huge).is_err());
        // The program id depends on every identity field.
        let id = env.claimed_program_id();
        let mut other = env.clone();
        other.verifying_key[0] ^= 1;
        assert_ne!(other.claimed_program_id(), id);
        let mut other = env.clone();
        other.program_commit[0] ^= 1;
        assert_ne!(other.claimed_program_id(), id);
    }
}
