use crate::error::StateError;
use alloc::collections::BTreeMap;
use alloy_primitives::{Address, Bytes, B256, U256};
use revm::state::AccountInfo;

/// Read access to the state a block executes against.
///
/// Implemented by the sequencer's in-memory state, the derived store, and the
/// prover's Merkle-checked witness. Account infos carry no code; code is
/// fetched by hash.
pub trait StateReader {
    /// The account at `address`, or `None` if it does not exist.
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError>;
    /// A storage slot (zero when unset).
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError>;
    /// Contract code by its keccak hash.
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError>;
    /// The hash of an earlier block, for the BLOCKHASH opcode (zero if unknown).
    fn block_hash(&self, number: u64) -> Result<B256, StateError>;
}

impl<T: StateReader + ?Sized> StateReader for &T {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        (**self).storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        (**self).code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        (**self).block_hash(number)
    }
}

/// A complete state held in ordered maps: genesis, tests and small witnesses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// Accounts (code hash only; code lives in `codes`).
    pub accounts: BTreeMap<Address, AccountInfo>,
    /// Non-zero storage slots per account.
    pub storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    /// Code by hash.
    pub codes: BTreeMap<B256, Bytes>,
    /// Known block hashes.
    pub block_hashes: BTreeMap<u64, B256>,
}

/// How many recent block hashes BLOCKHASH can see (the EVM rule).
pub const BLOCK_HASH_WINDOW: u64 = 256;

impl MemoryState {
    /// Records a sealed block's hash for BLOCKHASH and forgets hashes the
    /// next block can no longer ask for.
    pub fn record_block_hash(&mut self, number: u64, hash: B256) {
        self.block_hashes.insert(number, hash);
        self.block_hashes
            .retain(|n, _| n + BLOCK_HASH_WINDOW > number);
    }

    /// Applies a block's diff, as the next block would see it.
    pub fn apply(&mut self, diff: &crate::StateDiff) {
        for (code_hash, code) in &diff.codes {
            self.codes.insert(*code_hash, code.clone());
        }
        for (address, change) in &diff.accounts {
            if change.storage_cleared {
                self.storage.remove(address);
            }
            match &change.info {
                None => {
                    self.accounts.remove(address);
                    self.storage.remove(address);
                }
                Some(info) => {
                    self.accounts.insert(*address, info.clone());
                    let slots = self.storage.entry(*address).or_default();
                    for (slot, value) in &change.storage {
                        if value.is_zero() {
                            slots.remove(slot);
                        } else {
                            slots.insert(*slot, *value);
                        }
                    }
                    if slots.is_empty() {
                        self.storage.remove(address);
                    }
                }
            }
        }
    }

    /// The Merkle-Patricia state root of this state.
    pub fn state_root(&self) -> B256 {
        crate::state_root(self.accounts.iter().map(|(address, info)| {
            let slots = self.storage.get(address);
            crate::TrieAccountInput {
                address: *address,
                nonce: info.nonce,
                balance: info.balance,
                code_hash: info.code_hash,
                storage_root: crate::storage_root(
                    slots
                        .into_iter()
                        .flat_map(|s| s.iter().map(|(k, v)| (*k, *v))),
                ),
            }
        }))
    }
}

impl StateReader for MemoryState {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.accounts.get(&address).cloned())
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        Ok(self
            .storage
            .get(&address)
            .and_then(|s| s.get(&slot))
            .copied()
            .unwrap_or_default())
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.codes.get(&code_hash).cloned())
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        Ok(self.block_hashes.get(&number).copied().unwrap_or_default())
    }
}
