//! The public outputs of a proven batch: the only data that leaves the
//! appliance. Hashes and counters only; no address, amount, calldata or
//! transaction hash of the private chain.

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
        if bytes.len() != OUTPUTS_LEN {
            return None;
        }
        let word = |i: usize| B256::from_slice(&bytes[i * 32..(i + 1) * 32]);
        let number = |i: usize| -> Option<u64> { U256::from_be_bytes(word(i).0).try_into().ok() };
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

    /// The 32 bytes the zkVM reveals: keccak256 of the encoding.
    pub fn digest(&self) -> B256 {
        keccak256(self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_every_field_moves_the_digest() {
        let outputs = BatchOutputs {
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
        };
        let bytes = outputs.encode();
        assert_eq!(bytes.len(), OUTPUTS_LEN);
        assert_eq!(BatchOutputs::decode(&bytes), Some(outputs));
        assert_eq!(BatchOutputs::decode(&bytes[1..]), None);
        for i in 0..OUTPUTS_LEN {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            assert_ne!(keccak256(&changed), outputs.digest());
        }
        let mut too_big = bytes.clone();
        too_big[0] = 1;
        assert_eq!(BatchOutputs::decode(&too_big), None);
    }
}
