//! What a proven batch asserts, in two layers.
//!
//! [`BatchOutputs`] is the whole statement (block range, roots, block
//! hashes, audit head); the appliance keeps it and opens it to its own
//! auditors. [`SettledOutputs`] is all the settlement chain sees: the chain
//! id, the batch number, two state commitments and one private commitment.
//! The zkVM reveals the digest of the settled form only, so a proof can be
//! checked against the settlement contract without the block numbers,
//! audit sizes or times that would give away the bank's volume and cadence.
//!
//! Both commitments hide what they bind because each includes a block hash
//! of the private chain: 256 bits nobody outside the bank has seen, so the
//! low-entropy fields beside it (block numbers, audit size) cannot be
//! guessed and checked against the hash.

use alloc::vec::Vec;
use alloy_primitives::{keccak256, B256, U256};

/// What a batch proof asserts, in the order they are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutputs {
    /// EIP-155 chain id of the private chain.
    pub chain_id: u64,
    /// Batch sequence number.
    pub batch_number: u64,
    /// First block in the batch.
    pub first_block: u64,
    /// Last block in the batch.
    pub last_block: u64,
    /// State root before the batch.
    pub prev_state_root: B256,
    /// State root after the batch.
    pub new_state_root: B256,
    /// Hash of the block before the batch.
    pub prev_block_hash: B256,
    /// Hash of the batch's last block.
    pub last_block_hash: B256,
    /// keccak256 over the batch's block hashes; each header binds its
    /// transactions root, receipts root and output hash.
    pub batch_commitment: B256,
    /// Commitment to the chain rules ([`ChainParams::hash`](crate::ChainParams::hash)).
    pub config_hash: B256,
    /// Audit log size at the bound tree head.
    pub audit_size: u64,
    /// Audit log root at the bound tree head.
    pub audit_root: B256,
}

/// Encoded size: twelve 32-byte words.
pub const OUTPUTS_LEN: usize = 12 * 32;

/// Encoded size of [`SettledOutputs`]: five 32-byte words.
pub const SETTLED_LEN: usize = 5 * 32;

/// The state commitment the settlement contract chains batch to batch:
/// keccak256(state root ‖ block hash). The block hash makes it hiding and
/// binds the block height and history, so the contract keeps batches
/// contiguous without knowing any block number. Opening it (the root and
/// the hash) lets a disclosure recipient check Merkle proofs against the
/// settled batch.
pub fn state_commitment(state_root: B256, block_hash: B256) -> B256 {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(state_root.as_slice());
    bytes[32..].copy_from_slice(block_hash.as_slice());
    keccak256(bytes)
}

/// Readers of the `i`-th 32-byte word of an ABI encoding of `len` bytes, as
/// a hash and as a `uint64` (`None` when it does not fit); `None` for
/// another length.
#[allow(clippy::type_complexity)]
fn words(
    bytes: &[u8],
    len: usize,
) -> Option<(
    impl Fn(usize) -> B256 + '_,
    impl Fn(usize) -> Option<u64> + '_,
)> {
    if bytes.len() != len {
        return None;
    }
    let word = |i: usize| B256::from_slice(&bytes[i * 32..(i + 1) * 32]);
    let number = move |i: usize| -> Option<u64> { U256::from_be_bytes(word(i).0).try_into().ok() };
    Some((word, number))
}

/// What the settlement chain stores for a batch, and what the proof's
/// revealed digest covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettledOutputs {
    /// EIP-155 chain id of the private chain: the key it is registered under.
    pub chain_id: u64,
    /// Batch sequence number.
    pub batch_number: u64,
    /// [`state_commitment`] before the batch.
    pub prev_commitment: B256,
    /// [`state_commitment`] after the batch.
    pub new_commitment: B256,
    /// keccak256 of the full [`BatchOutputs`] encoding: everything else the
    /// proof asserts, opened only to the bank's auditors.
    pub private_commitment: B256,
}

impl SettledOutputs {
    /// ABI encoding (`abi.encode(uint64, uint64, bytes32, bytes32, bytes32)`),
    /// the `outputs` argument of `commitBatch`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SETTLED_LEN);
        out.extend_from_slice(&U256::from(self.chain_id).to_be_bytes::<32>());
        out.extend_from_slice(&U256::from(self.batch_number).to_be_bytes::<32>());
        for h in [
            self.prev_commitment,
            self.new_commitment,
            self.private_commitment,
        ] {
            out.extend_from_slice(h.as_slice());
        }
        out
    }

    /// Parses [`encode`](Self::encode)'s bytes; `None` if malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (word, number) = words(bytes, SETTLED_LEN)?;
        Some(Self {
            chain_id: number(0)?,
            batch_number: number(1)?,
            prev_commitment: word(2),
            new_commitment: word(3),
            private_commitment: word(4),
        })
    }

    /// The 32 bytes the zkVM reveals: keccak256 of the encoding.
    pub fn digest(&self) -> B256 {
        keccak256(self.encode())
    }
}

impl BatchOutputs {
    /// ABI encoding (`abi.encode` of the twelve fields as uint64/bytes32), so
    /// the settlement contract hashes exactly these bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(OUTPUTS_LEN);
        let word =
            |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&U256::from(n).to_be_bytes::<32>());
        word(&mut out, self.chain_id);
        word(&mut out, self.batch_number);
        word(&mut out, self.first_block);
        word(&mut out, self.last_block);
        for h in [
            self.prev_state_root,
            self.new_state_root,
            self.prev_block_hash,
            self.last_block_hash,
            self.batch_commitment,
            self.config_hash,
        ] {
            out.extend_from_slice(h.as_slice());
        }
        word(&mut out, self.audit_size);
        out.extend_from_slice(self.audit_root.as_slice());
        out
    }

    /// Parses [`encode`](Self::encode)'s bytes; `None` if malformed
    /// (wrong length, or a counter that does not fit 64 bits).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (word, number) = words(bytes, OUTPUTS_LEN)?;
        Some(Self {
            chain_id: number(0)?,
            batch_number: number(1)?,
            first_block: number(2)?,
            last_block: number(3)?,
            prev_state_root: word(4),
            new_state_root: word(5),
            prev_block_hash: word(6),
            last_block_hash: word(7),
            batch_commitment: word(8),
            config_hash: word(9),
            audit_size: number(10)?,
            audit_root: word(11),
        })
    }

    /// keccak256 of [`encode`](Self::encode): the settled private commitment.
    pub fn private_commitment(&self) -> B256 {
        keccak256(self.encode())
    }

    /// What the settlement chain sees of these outputs.
    pub fn settled(&self) -> SettledOutputs {
        SettledOutputs {
            chain_id: self.chain_id,
            batch_number: self.batch_number,
            prev_commitment: state_commitment(self.prev_state_root, self.prev_block_hash),
            new_commitment: state_commitment(self.new_state_root, self.last_block_hash),
            private_commitment: self.private_commitment(),
        }
    }

    /// The 32 bytes the zkVM reveals: the digest of the settled form.
    pub fn digest(&self) -> B256 {
        self.settled().digest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs with every field distinct.
    fn sample() -> BatchOutputs {
        BatchOutputs {
            chain_id: 7,
            batch_number: 3,
            first_block: 10,
            last_block: 19,
            prev_state_root: B256::repeat_byte(1),
            new_state_root: B256::repeat_byte(2),
            prev_block_hash: B256::repeat_byte(3),
            last_block_hash: B256::repeat_byte(4),
            batch_commitment: B256::repeat_byte(5),
            config_hash: B256::repeat_byte(6),
            audit_size: 99,
            audit_root: B256::repeat_byte(7),
        }
    }

    #[test]
    fn encoding_round_trips_and_every_field_moves_the_digest() {
        let outputs = sample();
        let bytes = outputs.encode();
        assert_eq!(bytes.len(), OUTPUTS_LEN);
        assert_eq!(BatchOutputs::decode(&bytes), Some(outputs));
        assert_eq!(BatchOutputs::decode(&bytes[1..]), None);
        for i in 0..OUTPUTS_LEN {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            assert_ne!(keccak256(&changed), outputs.private_commitment());
        }
        let mut too_big = bytes.clone();
        too_big[0] = 1;
        assert_eq!(BatchOutputs::decode(&too_big), None);
    }

    #[test]
    fn the_settled_form_binds_every_field_and_shows_no_number_but_the_batch() {
        let outputs = sample();
        let settled = outputs.settled();
        let bytes = settled.encode();
        assert_eq!(bytes.len(), SETTLED_LEN);
        assert_eq!(SettledOutputs::decode(&bytes), Some(settled));
        assert_eq!(outputs.digest(), keccak256(&bytes));
        // Only the chain id and batch number are readable; no root, hash,
        // block number or audit size appears as a word.
        let words: Vec<&[u8]> = bytes.chunks(32).collect();
        for hidden in [
            outputs.prev_state_root,
            outputs.new_state_root,
            outputs.last_block_hash,
            outputs.audit_root,
            B256::from(U256::from(19)),
            B256::from(U256::from(99)),
        ] {
            assert!(!words.contains(&hidden.as_slice()), "{hidden} is settled");
        }
        assert_eq!(
            settled.new_commitment,
            state_commitment(outputs.new_state_root, outputs.last_block_hash)
        );
        // Every field of the full outputs moves the digest.
        let full = outputs.encode();
        for i in 0..OUTPUTS_LEN {
            let mut changed = full.clone();
            changed[i] ^= 1;
            let Some(other) = BatchOutputs::decode(&changed) else {
                continue;
            };
            assert_ne!(other.digest(), outputs.digest(), "byte {i}");
        }
    }
}
