//! State read from Merkle-Patricia proofs, and the new root after a batch.

use super::BatchOverlay;
use crate::{
    mpt::{NodePool, PartialTrie, TrieError},
    root::{account_leaf, TrieAccountInput},
    BatchError, StateError, StateReader,
};
use alloc::{collections::BTreeMap, format, vec::Vec};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_trie::{TrieAccount, EMPTY_ROOT_HASH};
use core::cell::RefCell;
use revm::state::AccountInfo;

/// The pre-batch state as far as the witness opens it.
#[derive(Debug)]
pub struct TrieState<'a> {
    pool: &'a NodePool,
    accounts: PartialTrie,
    /// Storage tries opened so far, by account.
    storage: RefCell<BTreeMap<Address, PartialTrie>>,
    codes: BTreeMap<B256, Bytes>,
}

fn missing(e: TrieError) -> StateError {
    StateError::MissingWitness(format!("{e:?}"))
}

impl<'a> TrieState<'a> {
    /// Opens the state trie at `root`; `codes` are keyed by their keccak hash.
    pub fn open(
        root: B256,
        pool: &'a NodePool,
        codes: BTreeMap<B256, Bytes>,
    ) -> Result<Self, BatchError> {
        Ok(Self {
            pool,
            accounts: PartialTrie::open(root, pool)?,
            storage: RefCell::new(BTreeMap::new()),
            codes,
        })
    }

    fn trie_account(&self, address: Address) -> Result<Option<TrieAccount>, StateError> {
        let Some(raw) = self.accounts.get(&keccak256(address)).map_err(missing)? else {
            return Ok(None);
        };
        let account = alloy_rlp::Decodable::decode(&mut &raw[..])
            .map_err(|_| StateError::MissingWitness(format!("account {address} is not RLP")))?;
        Ok(Some(account))
    }

    /// Takes the account's storage trie out of the cache (opening it if needed).
    fn take_storage_trie(&self, address: Address, root: B256) -> Result<PartialTrie, StateError> {
        match self.storage.borrow_mut().remove(&address) {
            Some(trie) => Ok(trie),
            None => PartialTrie::open(root, self.pool).map_err(missing),
        }
    }

    /// Applies the batch's net changes and returns the new state root.
    pub fn commit(mut self, overlay: &BatchOverlay) -> Result<B256, BatchError> {
        for (address, delta) in &overlay.accounts {
            let key = keccak256(address);
            let Some(info) = &delta.info else {
                self.accounts.set(&key, Vec::new())?;
                continue;
            };
            let before = self.trie_account(*address).map_err(witness)?;
            let old_root = before.map_or(EMPTY_ROOT_HASH, |a| a.storage_root);
            let storage_root = if delta.slots.is_empty() && !delta.cleared {
                old_root
            } else {
                let mut trie = if delta.cleared {
                    PartialTrie::open(EMPTY_ROOT_HASH, self.pool)?
                } else {
                    self.take_storage_trie(*address, old_root)
                        .map_err(witness)?
                };
                for (slot, value) in &delta.slots {
                    let slot_key = keccak256(B256::from(*slot));
                    let encoded = if value.is_zero() {
                        Vec::new()
                    } else {
                        alloy_rlp::encode(value)
                    };
                    trie.set(&slot_key, encoded)?;
                }
                trie.root()
            };
            let leaf = account_leaf(&TrieAccountInput {
                address: *address,
                nonce: info.nonce,
                balance: info.balance,
                code_hash: info.code_hash,
                storage_root,
            });
            self.accounts.set(&key, leaf)?;
        }
        Ok(self.accounts.root())
    }
}

fn witness(e: StateError) -> BatchError {
    BatchError::Witness(format!("{e}"))
}

impl StateReader for TrieState<'_> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.trie_account(address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            account_id: None,
            // Not `..Default::default()`: that supplies empty code, which
            // revm would run instead of loading the code by its hash.
            code: None,
        }))
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        let Some(account) = self.trie_account(address)? else {
            return Ok(U256::ZERO);
        };
        if account.storage_root == EMPTY_ROOT_HASH {
            return Ok(U256::ZERO);
        }
        let trie = self.take_storage_trie(address, account.storage_root)?;
        let value = match trie.get(&keccak256(B256::from(slot))).map_err(missing) {
            Ok(None) => Ok(U256::ZERO),
            Ok(Some(mut raw)) => alloy_rlp::Decodable::decode(&mut raw)
                .map_err(|_| StateError::MissingWitness(format!("slot of {address} is not RLP"))),
            Err(e) => Err(e),
        };
        self.storage.borrow_mut().insert(address, trie);
        value
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.codes.get(&code_hash).cloned())
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        Err(StateError::MissingWitness(format!(
            "hash of block {number}"
        )))
    }
}
