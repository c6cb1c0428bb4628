//! `batch-N.json`: a batch's full outputs next to `batch-N.proof`. The bank
//! keeps it and gives it to its own auditors: it opens the commitments the
//! settlement contract holds (`new_commitment`, `private_commitment`).
//! Counterparties need only the proof and the contract.

use crate::ProofError;
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use state_transition::BatchOutputs;
use std::path::{Path, PathBuf};

/// The public outputs of one batch, plus how they were proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsFile {
    /// Chain id.
    pub chain_id: u64,
    /// Batch number.
    pub batch_number: u64,
    /// First block.
    pub first_block: u64,
    /// Last block.
    pub last_block: u64,
    /// State root before.
    pub prev_state_root: B256,
    /// State root after.
    pub new_state_root: B256,
    /// Hash of the block before the batch.
    pub prev_block_hash: B256,
    /// Hash of the last block.
    pub last_block_hash: B256,
    /// Commitment to the batch's transactions and receipts.
    pub batch_commitment: B256,
    /// Commitment to the chain rules.
    pub config_hash: B256,
    /// Audit log size at the bound head.
    pub audit_size: u64,
    /// Audit log root at the bound head.
    pub audit_root: B256,
    /// The digest the proof reveals: keccak256 of the settled outputs
    /// (informational: verifiers recompute it).
    pub digest: B256,
    /// The settled state commitment before the batch (informational).
    #[serde(default)]
    pub prev_commitment: B256,
    /// The settled state commitment after the batch: keccak256(new state
    /// root ‖ last block hash) (informational).
    #[serde(default)]
    pub new_commitment: B256,
    /// The settled private commitment: keccak256 of the twelve fields above,
    /// ABI-encoded (informational).
    #[serde(default)]
    pub private_commitment: B256,
    /// Program id the proof is for.
    pub program_id: B256,
    /// Proving backend.
    pub backend: String,
    /// RISC-V instructions executed, when measured.
    #[serde(default)]
    pub cycles: Option<u64>,
}

impl OutputsFile {
    /// Describes `outputs` proven by `backend` under `program_id`.
    pub fn new(
        outputs: &BatchOutputs,
        program_id: B256,
        backend: &str,
        cycles: Option<u64>,
    ) -> Self {
        Self {
            chain_id: outputs.chain_id,
            batch_number: outputs.batch_number,
            first_block: outputs.first_block,
            last_block: outputs.last_block,
            prev_state_root: outputs.prev_state_root,
            new_state_root: outputs.new_state_root,
            prev_block_hash: outputs.prev_block_hash,
            last_block_hash: outputs.last_block_hash,
            batch_commitment: outputs.batch_commitment,
            config_hash: outputs.config_hash,
            audit_size: outputs.audit_size,
            audit_root: outputs.audit_root,
            digest: outputs.digest(),
            prev_commitment: outputs.settled().prev_commitment,
            new_commitment: outputs.settled().new_commitment,
            private_commitment: outputs.private_commitment(),
            program_id,
            backend: backend.to_string(),
            cycles,
        }
    }

    /// The outputs these fields describe (the digest field is not trusted).
    pub fn outputs(&self) -> BatchOutputs {
        BatchOutputs {
            chain_id: self.chain_id,
            batch_number: self.batch_number,
            first_block: self.first_block,
            last_block: self.last_block,
            prev_state_root: self.prev_state_root,
            new_state_root: self.new_state_root,
            prev_block_hash: self.prev_block_hash,
            last_block_hash: self.last_block_hash,
            batch_commitment: self.batch_commitment,
            config_hash: self.config_hash,
            audit_size: self.audit_size,
            audit_root: self.audit_root,
        }
    }

    /// What batch `n`'s two files are named before their extension.
    pub fn stem(n: u64) -> String {
        format!("batch-{n}")
    }

    /// File name of batch `n`'s outputs.
    pub fn file_name(n: u64) -> String {
        format!("{}.json", Self::stem(n))
    }

    /// File name of batch `n`'s proof.
    pub fn proof_file_name(n: u64) -> String {
        format!("{}.proof", Self::stem(n))
    }

    /// Writes `proof` to `dir/STEM.proof` and these outputs to
    /// `dir/STEM.json`, each atomically (a reader never sees half a file):
    /// the pair a counterparty gives `prividium verify`.
    pub fn write_with_proof(&self, dir: &Path, stem: &str, proof: &[u8]) -> Result<(), ProofError> {
        let write = |path: PathBuf, bytes: &[u8]| {
            storage::write_atomic(&path, bytes).map_err(|source| ProofError::Io { path, source })
        };
        write(dir.join(format!("{stem}.proof")), proof)?;
        let json_path = dir.join(format!("{stem}.json"));
        let json = serde_json::to_vec_pretty(self).map_err(|e| ProofError::Io {
            path: json_path.clone(),
            source: e.into(),
        })?;
        write(json_path, &json)
    }
}
