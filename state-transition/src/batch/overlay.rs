//! The batch's writes on top of the pre-batch state, block after block.

use crate::{StateDiff, StateError, StateReader};
use alloc::collections::BTreeMap;
use alloy_primitives::{Address, Bytes, B256, U256};
use revm::state::AccountInfo;

/// Net effect of the batch so far on one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountDelta {
    /// Account after the batch (`None`: deleted).
    pub info: Option<AccountInfo>,
    /// Every slot the account had before the batch is gone.
    pub cleared: bool,
    /// Slots written, with their latest values (zero: removed).
    pub slots: BTreeMap<U256, U256>,
}

/// Net effect of the batch so far: the union of its blocks' diffs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOverlay {
    /// Changed accounts.
    pub accounts: BTreeMap<Address, AccountDelta>,
    /// Code deployed in the batch.
    pub codes: BTreeMap<B256, Bytes>,
}

impl BatchOverlay {
    /// Folds one block's diff in, as the next block must see it.
    pub fn apply(&mut self, diff: &StateDiff) {
        for (hash, code) in &diff.codes {
            self.codes.insert(*hash, code.clone());
        }
        for (address, change) in &diff.accounts {
            let delta = self.accounts.entry(*address).or_default();
            if change.storage_cleared || change.info.is_none() {
                delta.cleared = true;
                delta.slots.clear();
            }
            delta.info = change.info.clone();
            if change.info.is_some() {
                delta
                    .slots
                    .extend(change.storage.iter().map(|(k, v)| (*k, *v)));
            }
        }
    }
}

/// A state reader that sees the batch's earlier blocks over `base`.
#[derive(Debug)]
pub struct OverlayState<B> {
    base: B,
    overlay: BatchOverlay,
    block_hashes: BTreeMap<u64, B256>,
}

impl<B: StateReader> OverlayState<B> {
    /// Starts with no changes; `block_hashes` are known ancestors.
    pub fn new(base: B, block_hashes: BTreeMap<u64, B256>) -> Self {
        Self {
            base,
            overlay: BatchOverlay::default(),
            block_hashes,
        }
    }

    /// Records a finished block.
    pub fn apply(&mut self, diff: &StateDiff, number: u64, hash: B256) {
        self.overlay.apply(diff);
        self.block_hashes.insert(number, hash);
    }

    /// The changes so far.
    pub fn overlay(&self) -> &BatchOverlay {
        &self.overlay
    }

    /// The base state and the batch's net changes.
    pub fn into_parts(self) -> (B, BatchOverlay) {
        (self.base, self.overlay)
    }
}

impl<B: StateReader> StateReader for OverlayState<B> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        match self.overlay.accounts.get(&address) {
            Some(delta) => Ok(delta.info.clone()),
            None => self.base.account(address),
        }
    }

    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        if let Some(delta) = self.overlay.accounts.get(&address) {
            if let Some(value) = delta.slots.get(&slot) {
                return Ok(*value);
            }
            if delta.cleared || delta.info.is_none() {
                return Ok(U256::ZERO);
            }
        }
        self.base.storage(address, slot)
    }

    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        match self.overlay.codes.get(&code_hash) {
            Some(code) => Ok(Some(code.clone())),
            None => self.base.code(code_hash),
        }
    }

    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        match self.block_hashes.get(&number) {
            Some(hash) => Ok(*hash),
            None => self.base.block_hash(number),
        }
    }
}
