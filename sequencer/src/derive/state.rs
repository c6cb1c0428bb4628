//! The derive stage's copy of the chain state, with its state root kept
//! incrementally (see [`super::trie`]).

use super::trie::{HashedTrie, NewNodes};
use alloy_primitives::{keccak256, map::AddressMap, Address, Bytes, B256, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use state_transition::{
    account_leaf, revm::state::AccountInfo, MemoryState, StateDiff, TrieAccountInput,
};

/// The state after the last derived block, and its tries.
pub(crate) struct DerivedState {
    state: MemoryState,
    accounts: HashedTrie,
    storage: AddressMap<HashedTrie>,
    height: u64,
}

/// An account's EIP-1186 proof against the state root of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProof {
    /// The block whose state root the proof is against.
    pub block: u64,
    /// That root.
    pub state_root: B256,
    /// The account (`None`: the proof shows it does not exist).
    pub account: Option<AccountInfo>,
    /// Root of its storage trie.
    pub storage_root: B256,
    /// Nodes from the state root to the account's leaf.
    pub account_proof: Vec<Bytes>,
    /// One per requested slot, in the order asked.
    pub storage: Vec<SlotProof>,
}

/// A storage slot's value and its proof against the account's storage root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotProof {
    /// The slot as asked.
    pub slot: B256,
    /// Its value (zero when unset).
    pub value: U256,
    /// Nodes from the storage root to the slot's leaf (or to where it is
    /// shown absent).
    pub proof: Vec<Bytes>,
}

fn slot_leaf(value: &U256) -> Vec<u8> {
    if value.is_zero() {
        Vec::new()
    } else {
        alloy_rlp::encode(value)
    }
}

impl DerivedState {
    /// Builds every trie of `state` (the state after block `height`) once;
    /// every node of them goes to `sink`.
    pub(crate) fn new(state: MemoryState, height: u64, sink: &mut NewNodes) -> Self {
        let mut storage = AddressMap::default();
        for (address, slots) in &state.storage {
            let mut trie = HashedTrie::default();
            for (slot, value) in slots {
                trie.set(&keccak256(B256::from(*slot)), slot_leaf(value));
            }
            storage.insert(*address, trie);
        }
        let mut me = Self {
            state,
            accounts: HashedTrie::default(),
            storage,
            height,
        };
        let addresses: Vec<Address> = me.state.accounts.keys().copied().collect();
        for address in addresses {
            me.update_account(&address, sink);
        }
        // Proofs read the references this computes.
        me.accounts.root_into(sink);
        me
    }

    /// `address`'s proof and those of `slots`, against the current root.
    pub(crate) fn proof(&self, address: &Address, slots: &[B256]) -> StateProof {
        let account = self.state.accounts.get(address).cloned();
        let storage_trie = account.as_ref().and_then(|_| self.storage.get(address));
        let storage = slots
            .iter()
            .map(|slot| {
                let value = account
                    .as_ref()
                    .and_then(|_| self.state.storage.get(address))
                    .and_then(|s| s.get(&U256::from_be_bytes(slot.0)))
                    .copied()
                    .unwrap_or_default();
                let proof = storage_trie.map_or_else(Vec::new, |t| t.proof(&keccak256(slot)));
                SlotProof {
                    slot: *slot,
                    value,
                    proof: proof.into_iter().map(Bytes::from).collect(),
                }
            })
            .collect();
        StateProof {
            block: self.height,
            state_root: self.accounts.cached_root(),
            account,
            storage_root: storage_trie.map_or(EMPTY_ROOT_HASH, HashedTrie::cached_root),
            account_proof: self
                .accounts
                .proof(&keccak256(address))
                .into_iter()
                .map(Bytes::from)
                .collect(),
            storage,
        }
    }

    /// The state.
    pub(crate) fn state(&self) -> &MemoryState {
        &self.state
    }

    /// Re-derives `address`'s leaf (and storage root) from the state.
    fn update_account(&mut self, address: &Address, sink: &mut NewNodes) {
        let key = keccak256(address);
        let Some(info) = self.state.accounts.get(address) else {
            self.storage.remove(address);
            self.accounts.set(&key, Vec::new());
            return;
        };
        let storage_root = self
            .storage
            .get_mut(address)
            .map_or(EMPTY_ROOT_HASH, |t| t.root_into(sink));
        let leaf = account_leaf(&TrieAccountInput {
            address: *address,
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
            storage_root,
        });
        self.accounts.set(&key, leaf);
    }

    /// Applies a block's diff and records its hash; returns the new state
    /// root. The nodes this block's tries gained go to `sink`.
    pub(crate) fn apply(
        &mut self,
        diff: &StateDiff,
        number: u64,
        hash: B256,
        sink: &mut NewNodes,
    ) -> B256 {
        self.height = number;
        self.state.apply(diff);
        self.state.record_block_hash(number, hash);
        for (address, change) in &diff.accounts {
            if change.storage_cleared || change.info.is_none() {
                self.storage.remove(address);
            }
            if change.info.is_some() && !change.storage.is_empty() {
                let trie = self.storage.entry(*address).or_default();
                for (slot, value) in &change.storage {
                    trie.set(&keccak256(B256::from(*slot)), slot_leaf(value));
                }
                if trie.len() == 0 {
                    self.storage.remove(address);
                }
            }
            self.update_account(address, sink);
        }
        self.accounts.root_into(sink)
    }

    /// State root of the current state.
    pub(crate) fn root(&mut self) -> B256 {
        self.accounts.root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        codec::{self, u64_key},
        ChainView,
    };
    use alloy_primitives::U256;
    use state_transition::{revm::state::AccountInfo, AccountChange};
    use std::collections::BTreeMap;
    use storage::{KvStore, MemoryStore, Table, WriteBatch};

    fn account(balance: u64) -> Option<AccountInfo> {
        Some(AccountInfo {
            balance: U256::from(balance),
            ..Default::default()
        })
    }

    fn change(info: Option<AccountInfo>, cleared: bool, slots: &[(u64, u64)]) -> AccountChange {
        AccountChange {
            info,
            storage_cleared: cleared,
            storage: slots
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
        }
    }

    const SLOTS: [u64; 3] = [1, 2, 77];

    /// `address`'s proof, and those of [`SLOTS`] (set and not), verify
    /// against the reference's root with alloy-trie's verifier and give the
    /// reference's values.
    fn check_proof(proof: &StateProof, reference: &MemoryState, address: &Address) {
        use alloy_trie::{proof::verify_proof, Nibbles};
        let root = reference.state_root();
        assert_eq!(proof.state_root, root);
        let leaf = proof.account.as_ref().map(|info| {
            account_leaf(&TrieAccountInput {
                address: *address,
                nonce: info.nonce,
                balance: info.balance,
                code_hash: info.code_hash,
                storage_root: proof.storage_root,
            })
        });
        let want = reference.accounts.get(address);
        assert_eq!(
            proof.account.as_ref().map(|a| a.balance),
            want.map(|a| a.balance)
        );
        assert_eq!(
            proof.account.as_ref().map(|a| a.nonce),
            want.map(|a| a.nonce)
        );
        verify_proof(
            root,
            Nibbles::unpack(keccak256(address)),
            leaf,
            &proof.account_proof,
        )
        .unwrap_or_else(|e| panic!("{address}: {e}"));
        assert_eq!(proof.storage.len(), SLOTS.len());
        for s in &proof.storage {
            let want = reference
                .storage
                .get(address)
                .and_then(|m| m.get(&U256::from_be_bytes(s.slot.0)))
                .copied()
                .unwrap_or_default();
            assert_eq!(s.value, want);
            let leaf = (!want.is_zero()).then(|| alloy_rlp::encode(want));
            verify_proof(
                proof.storage_root,
                Nibbles::unpack(keccak256(s.slot)),
                leaf,
                &s.proof,
            )
            .unwrap_or_else(|e| panic!("{address} slot {}: {e}", s.slot));
        }
    }

    /// What the derive stage writes for one block, as far as history goes.
    fn persist(store: &MemoryStore, number: u64, root: B256, nodes: NewNodes) {
        let mut batch = WriteBatch::new();
        super::super::put_nodes(&mut batch, number, &nodes);
        batch.put(Table::StateRoots, u64_key(number), root.as_slice());
        batch.put(Table::Meta, codec::META_DERIVED_HEIGHT, u64_key(number));
        if number == 0 {
            batch.put(Table::Meta, codec::META_HISTORY_FROM, u64_key(0));
        }
        store.write(batch, true).unwrap();
    }

    #[test]
    fn roots_follow_a_full_recomputation_block_after_block() {
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let c = Address::repeat_byte(3);
        let mut genesis = MemoryState::default();
        genesis.accounts.insert(a, account(10).unwrap());
        genesis.accounts.insert(b, account(20).unwrap());
        genesis
            .storage
            .insert(b, BTreeMap::from([(U256::from(1), U256::from(5))]));
        let store = MemoryStore::new();
        let mut nodes = NewNodes::new();
        let mut derived = DerivedState::new(genesis.clone(), 0, &mut nodes);
        persist(&store, 0, derived.root(), nodes);
        let mut reference = genesis;
        let mut kept = vec![reference.clone()];
        assert_eq!(derived.root(), reference.state_root());
        let blocks = [
            // Storage written, an account created.
            vec![
                (b, change(account(21), false, &[(1, 6), (2, 7)])),
                (c, change(account(1), false, &[])),
            ],
            // A slot cleared, another account's storage appears.
            vec![
                (b, change(account(21), false, &[(1, 0)])),
                (a, change(account(9), false, &[(9, 9)])),
            ],
            // Destroyed and re-created with fresh storage; one deleted.
            vec![
                (a, change(account(3), true, &[(4, 4)])),
                (c, change(None, false, &[])),
            ],
            // Every slot cleared.
            vec![(b, change(account(22), false, &[(2, 0)]))],
        ];
        for (n, accounts) in blocks.into_iter().enumerate() {
            let diff = StateDiff {
                accounts: accounts.into_iter().collect(),
                codes: Default::default(),
            };
            let mut nodes = NewNodes::new();
            let root = derived.apply(&diff, n as u64 + 1, B256::ZERO, &mut nodes);
            persist(&store, n as u64 + 1, root, nodes);
            reference.apply(&diff);
            kept.push(reference.clone());
            assert_eq!(root, reference.state_root(), "block {}", n + 1);
            for address in [a, b, c, Address::repeat_byte(9)] {
                let proof = derived.proof(&address, &SLOTS.map(|s| B256::from(U256::from(s))));
                assert_eq!(proof.block, n as u64 + 1);
                check_proof(&proof, &reference, &address);
            }
            assert_eq!(derived.state(), &{
                let mut r = reference.clone();
                r.block_hashes = derived.state().block_hashes.clone();
                r
            });
        }
        // Every block's state, read back from the kept nodes alone.
        let view = ChainView::new(store.snapshot().unwrap());
        for (number, state) in kept.iter().enumerate() {
            let at = view.state_at(number as u64).unwrap().expect("kept");
            for address in [a, b, c, Address::repeat_byte(9)] {
                let proof = at
                    .proof(&address, &SLOTS.map(|s| B256::from(U256::from(s))))
                    .unwrap();
                assert_eq!(proof.block, number as u64);
                check_proof(&proof, state, &address);
                let info = at.account_info(&address).unwrap();
                assert_eq!(
                    info.map(|i| (i.balance, i.nonce)),
                    state.accounts.get(&address).map(|i| (i.balance, i.nonce)),
                    "block {number} {address}"
                );
                for slot in SLOTS.map(U256::from) {
                    let want = state
                        .storage
                        .get(&address)
                        .and_then(|m| m.get(&slot))
                        .copied()
                        .unwrap_or_default();
                    assert_eq!(at.storage_slot(&address, &slot).unwrap(), want);
                }
            }
        }
        assert!(view.state_at(kept.len() as u64).unwrap().is_none());
    }
}
