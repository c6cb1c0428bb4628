//! The cutter's state at a batch boundary, kept so a restart replays only
//! the blocks after it instead of the whole chain.
//!
//! A checkpoint is only a shortcut: it is trusted only when its state
//! hashes to the new state root of the batch it was taken after (as the
//! queue recorded it when the batch was cut), and anything else
//! (unreadable, damaged, from another chain) falls back to replay from
//! genesis.

use crate::ProverError;
use alloy_primitives::{Address, Bytes, B256, U256};
use revm::state::AccountInfo;
use state_transition::MemoryState;
use std::collections::BTreeMap;

/// Where checkpoints are kept (the appliance seals them like chain data:
/// they hold every balance).
pub trait CheckpointStore: Send + Sync {
    /// The last checkpoint saved, if any.
    fn load(&self) -> Result<Option<Vec<u8>>, ProverError>;
    /// Replaces the checkpoint.
    fn save(&self, bytes: &[u8]) -> Result<(), ProverError>;
}

const MAGIC: &[u8; 8] = b"PVDCKPT1";

/// Encodes the state after block `height`, the last of batch `batch`.
pub(crate) fn encode(state: &MemoryState, height: u64, batch: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let put_len = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u64).to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&batch.to_be_bytes());
    put_len(&mut out, state.accounts.len());
    for (address, info) in &state.accounts {
        out.extend_from_slice(address.as_slice());
        out.extend_from_slice(&info.balance.to_be_bytes::<32>());
        out.extend_from_slice(&info.nonce.to_be_bytes());
        out.extend_from_slice(info.code_hash.as_slice());
    }
    put_len(&mut out, state.storage.len());
    for (address, slots) in &state.storage {
        out.extend_from_slice(address.as_slice());
        put_len(&mut out, slots.len());
        for (slot, value) in slots {
            out.extend_from_slice(&slot.to_be_bytes::<32>());
            out.extend_from_slice(&value.to_be_bytes::<32>());
        }
    }
    put_len(&mut out, state.codes.len());
    for (hash, code) in &state.codes {
        out.extend_from_slice(hash.as_slice());
        put_len(&mut out, code.len());
        out.extend_from_slice(code);
    }
    put_len(&mut out, state.block_hashes.len());
    for (n, hash) in &state.block_hashes {
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(hash.as_slice());
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProverError> {
        if self.0.len() < n {
            return Err(ProverError::Store("checkpoint is truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, ProverError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }

    /// A count, bounded by what is left (a damaged length must not make
    /// the loop below allocate or spin for long).
    fn len(&mut self, item: usize) -> Result<usize, ProverError> {
        let n = self.u64()?;
        if n > (self.0.len() / item.max(1)) as u64 {
            return Err(ProverError::Store("checkpoint length out of range".into()));
        }
        Ok(n as usize)
    }

    fn b256(&mut self) -> Result<B256, ProverError> {
        Ok(B256::from_slice(self.take(32)?))
    }

    fn u256(&mut self) -> Result<U256, ProverError> {
        Ok(U256::from_be_slice(self.take(32)?))
    }

    fn address(&mut self) -> Result<Address, ProverError> {
        Ok(Address::from_slice(self.take(20)?))
    }
}

/// A decoded checkpoint.
pub(crate) struct Checkpoint {
    pub(crate) state: MemoryState,
    /// The block it is after.
    pub(crate) height: u64,
    /// The batch that block ends.
    pub(crate) batch: u64,
}

/// Decodes a checkpoint.
pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, ProverError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| ProverError::Store("not a prover checkpoint".into()))?;
    let mut r = Reader(body);
    let height = r.u64()?;
    let batch = r.u64()?;
    let mut state = MemoryState::default();
    for _ in 0..r.len(20 + 32 + 8 + 32)? {
        let address = r.address()?;
        let info = AccountInfo {
            balance: r.u256()?,
            nonce: r.u64()?,
            code_hash: r.b256()?,
            // Code comes from `codes` by hash (the default would be empty
            // code, silently turning contracts into plain accounts).
            code: None,
            ..AccountInfo::default()
        };
        state.accounts.insert(address, info);
    }
    for _ in 0..r.len(20 + 8)? {
        let address = r.address()?;
        let mut slots = BTreeMap::new();
        for _ in 0..r.len(64)? {
            slots.insert(r.u256()?, r.u256()?);
        }
        state.storage.insert(address, slots);
    }
    for _ in 0..r.len(32 + 8)? {
        let hash = r.b256()?;
        let n = r.len(1)?;
        state.codes.insert(hash, Bytes::copy_from_slice(r.take(n)?));
    }
    for _ in 0..r.len(8 + 32)? {
        let n = r.u64()?;
        state.block_hashes.insert(n, r.b256()?);
    }
    if !r.0.is_empty() {
        return Err(ProverError::Store("checkpoint has trailing bytes".into()));
    }
    Ok(Checkpoint {
        state,
        height,
        batch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MemoryState {
        let mut s = MemoryState::default();
        let a = Address::repeat_byte(1);
        s.accounts.insert(
            a,
            AccountInfo {
                balance: U256::from(123_456u64),
                nonce: 7,
                code_hash: B256::repeat_byte(9),
                ..AccountInfo::default()
            },
        );
        s.storage
            .insert(a, BTreeMap::from([(U256::from(1), U256::from(2))]));
        s.codes
            .insert(B256::repeat_byte(9), Bytes::from_static(&[0x60, 0x00]));
        s.block_hashes.insert(5, B256::repeat_byte(5));
        s
    }

    #[test]
    fn a_checkpoint_decodes_to_the_same_state_and_damage_is_refused() {
        let state = sample();
        let bytes = encode(&state, 42, 3);
        let Checkpoint {
            state: back,
            height,
            batch,
        } = decode(&bytes).unwrap();
        assert_eq!((height, batch), (42, 3));
        assert_eq!(back.accounts, state.accounts);
        // AccountInfo's equality ignores code: a decoded account must leave
        // it to be loaded by hash, never carry (empty) code of its own.
        assert!(back.accounts.values().all(|a| a.code.is_none()));
        assert_eq!(back.storage, state.storage);
        assert_eq!(back.codes, state.codes);
        assert_eq!(back.block_hashes, state.block_hashes);

        for cut in [0, 8, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        let mut huge = bytes;
        huge[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(decode(&huge).is_err(), "a damaged count is refused");
    }
}
