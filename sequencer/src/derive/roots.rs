use alloy_primitives::{Address, B256};
use state_transition::{state_root, storage_root, MemoryState, StateDiff, TrieAccountInput};
use std::collections::HashMap;

/// Keeps the full state and each account's storage root, so a block's state
/// root costs one pass over accounts plus only the storage tries it touched.
pub(crate) struct RootTracker {
    state: MemoryState,
    storage_roots: HashMap<Address, B256>,
}

impl RootTracker {
    pub(crate) fn new(state: MemoryState) -> Self {
        let storage_roots = state
            .storage
            .iter()
            .map(|(a, slots)| (*a, storage_root(slots.iter().map(|(k, v)| (*k, *v)))))
            .collect();
        Self {
            state,
            storage_roots,
        }
    }

    pub(crate) fn state(&self) -> &MemoryState {
        &self.state
    }

    /// Applies a block's diff and returns the new state root.
    pub(crate) fn apply(&mut self, diff: &StateDiff, number: u64, hash: B256) -> B256 {
        self.state.apply(diff);
        self.state.record_block_hash(number, hash);
        for (address, change) in &diff.accounts {
            if change.storage.is_empty() && !change.storage_cleared && change.info.is_some() {
                continue;
            }
            match self.state.storage.get(address) {
                Some(slots) => {
                    let root = storage_root(slots.iter().map(|(k, v)| (*k, *v)));
                    self.storage_roots.insert(*address, root);
                }
                None => {
                    self.storage_roots.remove(address);
                }
            }
        }
        self.root()
    }

    /// State root of the current state.
    pub(crate) fn root(&self) -> B256 {
        state_root(self.state.accounts.iter().map(|(address, info)| {
            TrieAccountInput {
                address: *address,
                nonce: info.nonce,
                balance: info.balance,
                code_hash: info.code_hash,
                storage_root: self
                    .storage_roots
                    .get(address)
                    .copied()
                    .unwrap_or(alloy_trie::EMPTY_ROOT_HASH),
            }
        }))
    }
}
