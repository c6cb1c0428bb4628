use crate::{state_root, storage_root, MemoryState, StateDiff, TrieAccountInput};
use alloc::collections::BTreeMap;
use alloy_primitives::{Address, B256};

/// A full state that keeps each account's storage root, so a block's state
/// root costs one pass over accounts plus only the storage tries it touched.
///
/// The deriver keeps the chain's current state in one; the prover keeps the
/// state at its last batch boundary in another.
#[derive(Debug, Clone, Default)]
pub struct RootedState {
    state: MemoryState,
    storage_roots: BTreeMap<Address, B256>,
}

impl RootedState {
    /// Wraps `state`, computing every storage root once.
    pub fn new(state: MemoryState) -> Self {
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

    /// The state.
    pub fn state(&self) -> &MemoryState {
        &self.state
    }

    /// Storage root of `address` (the empty root for accounts without storage).
    pub fn storage_root(&self, address: &Address) -> B256 {
        self.storage_roots
            .get(address)
            .copied()
            .unwrap_or(alloy_trie::EMPTY_ROOT_HASH)
    }

    /// Applies a block's diff and records its hash; returns the new state root.
    pub fn apply(&mut self, diff: &StateDiff, number: u64, hash: B256) -> B256 {
        self.apply_diff(diff, number, hash);
        self.root()
    }

    /// Like [`apply`](Self::apply) without computing the root.
    pub fn apply_diff(&mut self, diff: &StateDiff, number: u64, hash: B256) {
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
    }

    /// The trie inputs of every account, in address order.
    pub fn trie_accounts(&self) -> impl Iterator<Item = TrieAccountInput> + '_ {
        self.state
            .accounts
            .iter()
            .map(|(address, info)| TrieAccountInput {
                address: *address,
                nonce: info.nonce,
                balance: info.balance,
                code_hash: info.code_hash,
                storage_root: self.storage_root(address),
            })
    }

    /// State root of the current state.
    pub fn root(&self) -> B256 {
        state_root(self.trie_accounts())
    }
}
