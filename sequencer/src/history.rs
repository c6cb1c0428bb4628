//! The state at an older block, read by walking the trie nodes the derive
//! stage kept (`Table::TrieNodes`) down from that block's state root.
//!
//! Every block stores the nodes its state root needed that earlier blocks
//! had not (see `derive::put_nodes`), so any block from the start of the
//! history on can be read, and proven, as of its own root: an account is
//! one walk of the account trie, a slot one more of its storage trie.

use crate::{chain::ChainView, derive::SlotProof, StateProof};
use alloy_primitives::{keccak256, map::AddressMap, Address, Bytes, B256, U256};
use alloy_rlp::{Decodable, RlpDecodable};
use alloy_trie::{
    nodes::{RlpNode, TrieNode},
    Nibbles, EMPTY_ROOT_HASH,
};
use state_transition::{revm::state::AccountInfo, StateError, StateReader};
use std::cell::RefCell;
use storage::{StorageError, Table};

impl ChainView {
    /// The state after block `number`, if it is kept (at or after
    /// [`Self::history_from`], at or before the head). Defined here, beside
    /// what it returns: the view itself knows nothing of history.
    pub fn state_at(&self, number: u64) -> Result<Option<HistoricalState<'_>>, StorageError> {
        let kept = self.history_from()?.is_some_and(|from| number >= from);
        if !kept || number > self.head()? {
            return Ok(None);
        }
        Ok(self
            .state_root(number)?
            .map(|root| HistoricalState::new(self, number, root)))
    }
}

/// An account leaf as the state trie holds it.
#[derive(RlpDecodable)]
struct TrieAccount {
    nonce: u64,
    balance: U256,
    storage_root: B256,
    code_hash: B256,
}

impl TrieAccount {
    fn info(self) -> AccountInfo {
        AccountInfo {
            nonce: self.nonce,
            balance: self.balance,
            code_hash: self.code_hash,
            // Code is fetched by hash; revm's default would claim "empty code".
            code: None,
            account_id: None,
        }
    }
}

/// The state after block `block`, read from the kept trie nodes.
pub struct HistoricalState<'a> {
    view: &'a ChainView,
    block: u64,
    root: B256,
    /// Storage roots of accounts read so far (a call reads an account's
    /// slots many times).
    storage_roots: RefCell<AddressMap<B256>>,
}

fn missing(hash: &B256) -> StorageError {
    StorageError::Corrupt {
        table: Table::TrieNodes,
        key: hash.to_string(),
        message: "trie node missing".into(),
    }
}

fn malformed(hash: &B256, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt {
        table: Table::TrieNodes,
        key: hash.to_string(),
        message: format!("malformed trie node: {e}"),
    }
}

impl<'a> HistoricalState<'a> {
    pub(crate) fn new(view: &'a ChainView, block: u64, root: B256) -> Self {
        Self {
            view,
            block,
            root,
            storage_roots: RefCell::default(),
        }
    }

    /// The block this is the state after.
    pub fn block(&self) -> u64 {
        self.block
    }

    /// Follows `key` down from `root`; the leaf's value, if the key is set.
    /// With `proof`, every stored node on the way is added to it (a node
    /// embedded in its parent is already there, inside the parent).
    fn walk(
        &self,
        root: B256,
        key: &B256,
        mut proof: Option<&mut Vec<Bytes>>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if root == EMPTY_ROOT_HASH {
            return Ok(None);
        }
        let path = Nibbles::unpack(key);
        let mut at = 0;
        let mut hash = root;
        let mut rlp = self.view.trie_node(&root)?.ok_or_else(|| missing(&root))?;
        let mut stored = true;
        // Each node consumes at least one nibble of the 64: more steps mean
        // a malformed store (a node that leads back to itself).
        for _ in 0..=path.len() {
            if let (true, Some(p)) = (stored, proof.as_deref_mut()) {
                p.push(Bytes::copy_from_slice(&rlp));
            }
            let node = TrieNode::decode(&mut rlp.as_slice()).map_err(|e| malformed(&hash, e))?;
            let next: RlpNode = match node {
                TrieNode::EmptyRoot => return Ok(None),
                TrieNode::Leaf(leaf) => {
                    return Ok((path.slice(at..) == leaf.key).then_some(leaf.value));
                }
                TrieNode::Extension(ext) => {
                    if !path.slice(at..).starts_with(&ext.key) {
                        return Ok(None);
                    }
                    at += ext.key.len();
                    ext.child
                }
                TrieNode::Branch(branch) => {
                    if at >= path.len() {
                        return Ok(None);
                    }
                    let nibble = path.get_unchecked(at);
                    at += 1;
                    let child = branch
                        .as_ref()
                        .children()
                        .find(|(n, _)| *n == nibble)
                        .and_then(|(_, c)| c.cloned());
                    match child {
                        Some(child) => child,
                        None => return Ok(None),
                    }
                }
            };
            match next.as_hash() {
                Some(h) => {
                    hash = h;
                    rlp = self.view.trie_node(&h)?.ok_or_else(|| missing(&h))?;
                    stored = true;
                }
                None => {
                    rlp = next.to_vec();
                    stored = false;
                }
            }
        }
        Err(malformed(&root, "path longer than a key"))
    }

    fn trie_account(
        &self,
        address: &Address,
        proof: Option<&mut Vec<Bytes>>,
    ) -> Result<Option<TrieAccount>, StorageError> {
        let Some(leaf) = self.walk(self.root, &keccak256(address), proof)? else {
            return Ok(None);
        };
        let account = TrieAccount::decode(&mut leaf.as_slice())
            .map_err(|e| malformed(&self.root, format!("account {address}: {e}")))?;
        self.storage_roots
            .borrow_mut()
            .insert(*address, account.storage_root);
        Ok(Some(account))
    }

    fn storage_root(&self, address: &Address) -> Result<B256, StorageError> {
        if let Some(r) = self.storage_roots.borrow().get(address) {
            return Ok(*r);
        }
        Ok(self
            .trie_account(address, None)?
            .map_or(EMPTY_ROOT_HASH, |a| a.storage_root))
    }

    /// The account after this block.
    pub fn account_info(&self, address: &Address) -> Result<Option<AccountInfo>, StorageError> {
        Ok(self.trie_account(address, None)?.map(TrieAccount::info))
    }

    /// A storage slot after this block (zero when unset).
    pub fn storage_slot(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        let root = self.storage_root(address)?;
        slot_value(self.walk(root, &keccak256(B256::from(*slot)), None)?, &root)
    }

    /// EIP-1186 proof of `address` and its `slots` against this block's root.
    pub fn proof(&self, address: &Address, slots: &[B256]) -> Result<StateProof, StorageError> {
        let mut account_proof = Vec::new();
        let account = self.trie_account(address, Some(&mut account_proof))?;
        let storage_root = account.as_ref().map_or(EMPTY_ROOT_HASH, |a| a.storage_root);
        let storage = slots
            .iter()
            .map(|slot| {
                let mut proof = Vec::new();
                let leaf = self.walk(storage_root, &keccak256(slot), Some(&mut proof))?;
                Ok(SlotProof {
                    slot: *slot,
                    value: slot_value(leaf, &storage_root)?,
                    proof,
                })
            })
            .collect::<Result<_, StorageError>>()?;
        Ok(StateProof {
            block: self.block,
            state_root: self.root,
            account: account.map(TrieAccount::info),
            storage_root,
            account_proof,
            storage,
        })
    }
}

fn slot_value(leaf: Option<Vec<u8>>, root: &B256) -> Result<U256, StorageError> {
    match leaf {
        None => Ok(U256::ZERO),
        Some(v) => U256::decode(&mut v.as_slice()).map_err(|e| malformed(root, e)),
    }
}

fn state_err(e: StorageError) -> StateError {
    StateError::Backend(e.to_string())
}

impl StateReader for HistoricalState<'_> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        self.account_info(&address).map_err(state_err)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.storage_slot(&address, &slot).map_err(state_err)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.view.code_by_hash(&code_hash).map_err(state_err)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        // As the EVM sees it from the block after this one.
        if number > self.block || number + state_transition::BLOCK_HASH_WINDOW <= self.block {
            return Ok(B256::ZERO);
        }
        StateReader::block_hash(self.view, number)
    }
}
