//! Read side of the derived store: what the RPC answers from.

use crate::{
    codec::{self, decode_account, decode_block, decode_u64, storage_key, u64_key},
    sealed::Sealed,
    stored::StoredBlock,
};
use alloy_primitives::{Address, Bytes, B256, U256};
use state_transition::{revm::state::AccountInfo, StateError, StateReader};
use storage::{KvRead, StorageError, Table};

/// A consistent read view of the derived chain: the blocks rooted but not
/// yet committed (see [`crate::sealed`]) over a snapshot of the store.
pub struct ChainView {
    snap: Box<dyn KvRead + Send + Sync>,
    sealed: Sealed,
}

impl std::fmt::Debug for ChainView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainView").finish_non_exhaustive()
    }
}

fn corrupt(table: Table, key: &[u8], message: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        table,
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
        message: message.into(),
    }
}

impl ChainView {
    /// Wraps a store snapshot.
    pub fn new(snap: Box<dyn KvRead + Send + Sync>) -> Self {
        Self {
            snap,
            sealed: Sealed::default(),
        }
    }

    /// Reads the blocks of `sealed` after the snapshot's height, then
    /// `snap` (taken after `sealed`). Blocks the snapshot already holds are
    /// skipped: a later block committed meanwhile must not be shadowed by
    /// an earlier one still in the list.
    pub(crate) fn over(
        snap: Box<dyn KvRead + Send + Sync>,
        sealed: Sealed,
    ) -> Result<Self, StorageError> {
        let stored = stored_height(snap.as_ref())?;
        Ok(Self {
            snap,
            sealed: sealed.after(stored),
        })
    }

    /// Last derived block (rooted; its store commit may still be running).
    pub fn head(&self) -> Result<u64, StorageError> {
        let stored = stored_height(self.snap.as_ref())?;
        Ok(self.sealed.head().map_or(stored, |s| s.max(stored)))
    }

    /// A block by number.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, StorageError> {
        if let Some(block) = self.sealed.block(number) {
            return Ok(Some(block.clone()));
        }
        let key = u64_key(number);
        match self.snap.get(Table::Blocks, &key)? {
            None => Ok(None),
            Some(raw) => decode_block(&raw)
                .map(Some)
                .map_err(|m| corrupt(Table::Blocks, &key, m)),
        }
    }

    /// A block number by hash.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, StorageError> {
        if let Some(number) = self.sealed.block_number(hash) {
            return Ok(Some(number));
        }
        Ok(self
            .snap
            .get(Table::BlockHashes, hash.as_slice())?
            .and_then(|b| decode_u64(&b)))
    }

    /// Where a transaction landed: (block number, index).
    pub fn tx_location(&self, hash: &B256) -> Result<Option<(u64, usize)>, StorageError> {
        if let Some(location) = self.sealed.tx_location(hash) {
            return Ok(Some(location));
        }
        let Some(raw) = self.snap.get(Table::TxIndex, hash.as_slice())? else {
            return Ok(None);
        };
        if raw.len() != 12 {
            return Err(corrupt(Table::TxIndex, hash.as_slice(), "bad location"));
        }
        let number = decode_u64(&raw[..8]).expect("8 bytes");
        let index = u32::from_be_bytes(raw[8..].try_into().expect("4 bytes")) as usize;
        Ok(Some((number, index)))
    }

    /// State root recorded after a block.
    pub fn state_root(&self, number: u64) -> Result<Option<B256>, StorageError> {
        if let Some(root) = self.sealed.state_root(number) {
            return Ok(Some(root));
        }
        Ok(self
            .snap
            .get(Table::StateRoots, &u64_key(number))?
            .filter(|r| r.len() == 32)
            .map(|r| B256::from_slice(&r)))
    }

    /// Account at the derived head.
    pub fn account_info(&self, address: &Address) -> Result<Option<AccountInfo>, StorageError> {
        if let Some(sealed) = self.sealed.account(address) {
            return Ok(sealed);
        }
        match self.snap.get(Table::Accounts, address.as_slice())? {
            None => Ok(None),
            Some(raw) => decode_account(&raw)
                .map(Some)
                .ok_or_else(|| corrupt(Table::Accounts, address.as_slice(), "bad account")),
        }
    }

    /// Storage slot at the derived head.
    pub fn storage_slot(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        if let Some(value) = self.sealed.storage(address, slot) {
            return Ok(value);
        }
        Ok(self
            .snap
            .get(Table::Storage, &storage_key(address, slot))?
            .map(|v| U256::from_be_slice(&v))
            .unwrap_or_default())
    }

    /// A kept trie node by its hash: its RLP.
    pub(crate) fn trie_node(&self, hash: &B256) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.trie_node_written(hash)?.map(|(_, rlp)| rlp))
    }

    /// A kept trie node by its hash: the last block that wrote it, its RLP.
    pub(crate) fn trie_node_written(
        &self,
        hash: &B256,
    ) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        if let Some(node) = self.sealed.trie_node(hash) {
            return Ok(Some(node));
        }
        let Some(mut raw) = self.snap.get(Table::TrieNodes, hash.as_slice())? else {
            return Ok(None);
        };
        if raw.len() < 9 {
            return Err(corrupt(Table::TrieNodes, hash.as_slice(), "short node"));
        }
        let block = decode_u64(&raw[..8]).expect("8 bytes");
        raw.drain(..8);
        Ok(Some((block, raw)))
    }

    /// The hashes of the trie nodes block `number` wrote.
    pub(crate) fn trie_node_log(&self, number: u64) -> Result<Option<Vec<B256>>, StorageError> {
        if let Some(log) = self.sealed.trie_node_log(number) {
            return Ok(Some(log));
        }
        let key = u64_key(number);
        let Some(raw) = self.snap.get(Table::TrieNodeLog, &key)? else {
            return Ok(None);
        };
        if raw.len() % 32 != 0 {
            return Err(corrupt(Table::TrieNodeLog, &key, "not a list of hashes"));
        }
        Ok(Some(raw.chunks_exact(32).map(B256::from_slice).collect()))
    }

    /// The first block whose state is kept (reads and proofs at it and
    /// later blocks); `None` in a store that keeps no history.
    pub fn history_from(&self) -> Result<Option<u64>, StorageError> {
        match self.snap.get(Table::Meta, codec::META_HISTORY_FROM)? {
            None => Ok(None),
            Some(b) => decode_u64(&b)
                .map(Some)
                .ok_or_else(|| corrupt(Table::Meta, codec::META_HISTORY_FROM, "bad height")),
        }
    }

    /// Code by hash.
    pub fn code_by_hash(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        if let Some(code) = self.sealed.code(hash) {
            return Ok(Some(code));
        }
        Ok(self
            .snap
            .get(Table::Code, hash.as_slice())?
            .map(Bytes::from))
    }
}

/// The last block the store has committed.
fn stored_height(snap: &(dyn KvRead + Send + Sync)) -> Result<u64, StorageError> {
    match snap.get(Table::Meta, codec::META_DERIVED_HEIGHT)? {
        None => Ok(0),
        Some(b) => decode_u64(&b)
            .ok_or_else(|| corrupt(Table::Meta, codec::META_DERIVED_HEIGHT, "bad height")),
    }
}

fn state_err(e: StorageError) -> StateError {
    StateError::Backend(e.to_string())
}

impl StateReader for ChainView {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        self.account_info(&address).map_err(state_err)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.storage_slot(&address, &slot).map_err(state_err)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.code_by_hash(&code_hash).map_err(state_err)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        if let Some(hash) = self.sealed.block_hash(number) {
            return Ok(hash);
        }
        Ok(self
            .block(number)
            .map_err(state_err)?
            .map(|b| b.hash)
            .unwrap_or_default())
    }
}
