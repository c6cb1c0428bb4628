//! Blocks the derive stage has rooted but not yet committed to the store.
//!
//! A block is durable once the block log has fsync'd it, and its state root
//! is known once the derive stage has updated its tries; the store commit
//! that follows (tens of milliseconds for a block of 1,000 transfers, a few
//! hundred for a durable flush) adds nothing a reader needs. So rooted
//! blocks are published here first and every [`crate::ChainView`] reads
//! through them to the store snapshot: a receipt is visible as soon as its
//! block is rooted, not when the store has written it.
//!
//! Consistency: a view takes the sealed list *before* the store snapshot,
//! and the committer drops blocks from the list only *after* their commit,
//! so every block a view can see is either in its list or in its snapshot;
//! the view reads only the listed blocks after the snapshot's height, so a
//! block committed after the list was taken is never shadowed by an older
//! one still in it.

use crate::{codec, stored::StoredBlock};
use alloy_primitives::{map::B256Map, Address, Bytes, B256, U256};
use parking_lot::RwLock;
use state_transition::{revm::state::AccountInfo, StateDiff};
use std::sync::Arc;

/// One rooted block, with everything the store would answer about it.
#[derive(Debug)]
pub(crate) struct SealedBlock {
    pub(crate) block: StoredBlock,
    pub(crate) number: u64,
    pub(crate) root: B256,
    pub(crate) diff: StateDiff,
    /// The trie nodes this block added (RLP by hash).
    pub(crate) nodes: B256Map<Vec<u8>>,
    /// Transaction hash → index in the block.
    tx_index: B256Map<u32>,
}

impl SealedBlock {
    pub(crate) fn new(
        number: u64,
        block: StoredBlock,
        root: B256,
        diff: StateDiff,
        nodes: B256Map<Vec<u8>>,
    ) -> Self {
        let tx_index = block
            .txs
            .iter()
            .enumerate()
            .map(|(i, tx)| (*tx.envelope.tx_hash(), i as u32))
            .collect();
        Self {
            block,
            number,
            root,
            diff,
            nodes,
            tx_index,
        }
    }
}

/// An immutable list of rooted, uncommitted blocks in ascending order: what
/// one view reads through. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sealed(Arc<Vec<Arc<SealedBlock>>>);

impl Sealed {
    fn by_number(&self, number: u64) -> Option<&SealedBlock> {
        let first = self.0.first()?.number;
        let at = usize::try_from(number.checked_sub(first)?).ok()?;
        self.0.get(at).map(|b| &**b).filter(|b| b.number == number)
    }

    /// Newest first: the first block that touched something has its value.
    fn newest_first(&self) -> impl Iterator<Item = &SealedBlock> {
        self.0.iter().rev().map(|b| &**b)
    }

    /// The blocks after `height` (all of them, usually: the committer
    /// drops blocks as it commits them).
    pub(crate) fn after(self, height: u64) -> Sealed {
        match self.0.first() {
            Some(first) if first.number <= height => Sealed(Arc::new(
                self.0
                    .iter()
                    .filter(|b| b.number > height)
                    .cloned()
                    .collect(),
            )),
            _ => self,
        }
    }

    pub(crate) fn head(&self) -> Option<u64> {
        self.0.last().map(|b| b.number)
    }

    pub(crate) fn block(&self, number: u64) -> Option<&StoredBlock> {
        self.by_number(number).map(|b| &b.block)
    }

    pub(crate) fn block_hash(&self, number: u64) -> Option<B256> {
        self.by_number(number).map(|b| b.block.hash)
    }

    pub(crate) fn block_number(&self, hash: &B256) -> Option<u64> {
        self.0
            .iter()
            .find(|b| b.block.hash == *hash)
            .map(|b| b.number)
    }

    pub(crate) fn tx_location(&self, hash: &B256) -> Option<(u64, usize)> {
        self.newest_first()
            .find_map(|b| b.tx_index.get(hash).map(|i| (b.number, *i as usize)))
    }

    pub(crate) fn state_root(&self, number: u64) -> Option<B256> {
        self.by_number(number).map(|b| b.root)
    }

    /// `Some(answer)` when a sealed block changed the account; the answer is
    /// what the store holds after committing it (`None`: deleted).
    pub(crate) fn account(&self, address: &Address) -> Option<Option<AccountInfo>> {
        let change = self
            .newest_first()
            .find_map(|b| b.diff.accounts.get(address))?;
        // Exactly what the store's encoding keeps (code goes by hash).
        Some(
            change
                .info
                .as_ref()
                .and_then(|info| codec::decode_account(&codec::encode_account(info))),
        )
    }

    /// `Some(value)` when a sealed block decides the slot: it wrote it, or
    /// deleted the account or cleared its storage after the last write.
    pub(crate) fn storage(&self, address: &Address, slot: &U256) -> Option<U256> {
        for block in self.newest_first() {
            let Some(change) = block.diff.accounts.get(address) else {
                continue;
            };
            if change.info.is_none() {
                return Some(U256::ZERO);
            }
            if let Some(value) = change.storage.get(slot) {
                return Some(*value);
            }
            if change.storage_cleared {
                return Some(U256::ZERO);
            }
        }
        None
    }

    pub(crate) fn code(&self, hash: &B256) -> Option<Bytes> {
        self.newest_first()
            .find_map(|b| b.diff.codes.get(hash).cloned())
    }

    /// A trie node a sealed block added: the block, its RLP.
    pub(crate) fn trie_node(&self, hash: &B256) -> Option<(u64, Vec<u8>)> {
        self.newest_first()
            .find_map(|b| b.nodes.get(hash).map(|rlp| (b.number, rlp.clone())))
    }

    pub(crate) fn trie_node_log(&self, number: u64) -> Option<Vec<B256>> {
        self.by_number(number)
            .map(|b| b.nodes.keys().copied().collect())
    }
}

/// The shared, current list: the derive stage appends rooted blocks, the
/// committer drops committed ones, views take a copy.
#[derive(Debug, Default)]
pub(crate) struct SealedBlocks(RwLock<Sealed>);

impl SealedBlocks {
    pub(crate) fn current(&self) -> Sealed {
        self.0.read().clone()
    }

    /// Publishes rooted blocks (consecutive, after any already held).
    pub(crate) fn push(&self, blocks: impl IntoIterator<Item = Arc<SealedBlock>>) {
        let mut current = self.0.write();
        let mut list = Vec::clone(&current.0);
        list.extend(blocks);
        *current = Sealed(Arc::new(list));
    }

    /// Drops the blocks up to `number`, now in the store.
    pub(crate) fn committed(&self, number: u64) {
        let mut current = self.0.write();
        let list: Vec<_> = current
            .0
            .iter()
            .filter(|b| b.number > number)
            .cloned()
            .collect();
        *current = Sealed(Arc::new(list));
    }

    /// How many blocks are waiting for their commit.
    pub(crate) fn len(&self) -> usize {
        self.0.read().0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::Header;
    use state_transition::AccountChange;

    fn account(nonce: u64) -> AccountInfo {
        AccountInfo {
            nonce,
            balance: U256::from(nonce * 10),
            code_hash: alloy_primitives::KECCAK256_EMPTY,
            code: None,
            account_id: None,
        }
    }

    fn diff(changes: Vec<(Address, AccountChange)>) -> StateDiff {
        StateDiff {
            accounts: changes.into_iter().collect(),
            codes: Default::default(),
        }
    }

    fn block(number: u64, changes: Vec<(Address, AccountChange)>) -> Arc<SealedBlock> {
        let stored = StoredBlock {
            header: Header {
                number,
                ..Default::default()
            },
            hash: B256::with_last_byte(number as u8),
            txs: Vec::new(),
        };
        Arc::new(SealedBlock::new(
            number,
            stored,
            B256::repeat_byte(number as u8),
            diff(changes),
            Default::default(),
        ))
    }

    fn change(nonce: Option<u64>, cleared: bool, slots: &[(u64, u64)]) -> AccountChange {
        AccountChange {
            info: nonce.map(account),
            storage_cleared: cleared,
            storage: slots
                .iter()
                .map(|(k, v)| (U256::from(*k), U256::from(*v)))
                .collect(),
        }
    }

    /// The newest block that touched an account decides what it holds: a
    /// deletion hides every slot, a cleared storage hides the slots it did
    /// not write again, and what no sealed block touched is left to the
    /// store.
    #[test]
    fn the_newest_sealed_change_decides_accounts_and_slots() {
        let (a, b, c) = (
            Address::repeat_byte(0xa),
            Address::repeat_byte(0xb),
            Address::repeat_byte(0xc),
        );
        let list = SealedBlocks::default();
        list.push([block(
            7,
            vec![
                (a, change(Some(1), false, &[(1, 5), (3, 9)])),
                (b, change(Some(1), false, &[(1, 4)])),
            ],
        )]);
        list.push([block(
            8,
            vec![
                (a, change(Some(2), true, &[(2, 7)])),
                (b, change(None, false, &[(1, 6)])),
            ],
        )]);
        let sealed = list.current();
        assert_eq!(sealed.head(), Some(8));
        assert_eq!(sealed.account(&a), Some(Some(account(2))));
        assert_eq!(sealed.storage(&a, &U256::from(1)), Some(U256::ZERO));
        assert_eq!(sealed.storage(&a, &U256::from(2)), Some(U256::from(7)));
        assert_eq!(sealed.storage(&a, &U256::from(3)), Some(U256::ZERO));
        assert_eq!(sealed.account(&b), Some(None), "deleted in block 8");
        assert_eq!(sealed.storage(&b, &U256::from(1)), Some(U256::ZERO));
        assert_eq!(sealed.account(&c), None, "the store decides");
        assert_eq!(sealed.storage(&c, &U256::from(1)), None);
        assert_eq!(sealed.state_root(7), Some(B256::repeat_byte(7)));
        assert_eq!(sealed.block_number(&B256::with_last_byte(8)), Some(8));
        assert_eq!(sealed.block(9), None);

        // Block 7 committed: block 8 still decides a; b's slot 1 from 7 is
        // gone with it, and 8's deletion still hides it.
        list.committed(7);
        let sealed = list.current();
        assert_eq!(sealed.block(7), None);
        assert_eq!(sealed.storage(&a, &U256::from(3)), Some(U256::ZERO));
        assert_eq!(sealed.storage(&b, &U256::from(1)), Some(U256::ZERO));
        list.committed(8);
        assert_eq!(list.current().head(), None);
        assert_eq!(list.current().account(&a), None);
    }

    /// Read through the list, accounts and slots are what the store holds
    /// once the same diffs are written to it the way the derive stage
    /// writes them: updated, deleted, storage cleared, slots zeroed,
    /// untouched.
    #[test]
    fn sealed_changes_read_as_the_store_reads_them_written() {
        use crate::{
            codec::{u64_key, META_DERIVED_HEIGHT},
            derive::write_diff,
            ChainView,
        };
        use storage::{KvStore, MemoryStore, Table, WriteBatch};

        let [a, b, c, d] = [0xa, 0xb, 0xc, 0xd].map(Address::repeat_byte);
        let base = vec![
            (a, change(Some(1), false, &[(1, 1), (3, 3), (4, 4)])),
            (b, change(Some(1), false, &[(1, 1), (2, 2)])),
            (c, change(Some(1), false, &[(1, 5), (2, 6)])),
            (d, change(Some(1), false, &[(1, 8)])),
        ];
        let seven = vec![
            (a, change(Some(2), false, &[(1, 5), (4, 0)])),
            (b, change(Some(2), false, &[(1, 4)])),
        ];
        let eight = vec![
            (a, change(Some(3), true, &[(2, 7)])),
            (b, change(None, false, &[(1, 6)])),
            (c, change(Some(2), false, &[(1, 0)])),
        ];
        let write = |store: &MemoryStore, changes: &[(Address, AccountChange)], height: u64| {
            let mut batch = WriteBatch::new();
            write_diff(&mut batch, &diff(changes.to_vec()));
            batch.put(Table::Meta, META_DERIVED_HEIGHT, u64_key(height));
            store.write(batch, false).unwrap();
        };
        let stored = MemoryStore::new();
        write(&stored, &base, 6);
        write(&stored, &seven, 7);
        write(&stored, &eight, 8);
        let under = MemoryStore::new();
        write(&under, &base, 6);
        let list = SealedBlocks::default();
        list.push([block(7, seven), block(8, eight)]);

        let through = ChainView::over(under.snapshot().unwrap(), list.current()).unwrap();
        let plain = ChainView::new(stored.snapshot().unwrap());
        assert_eq!(through.head().unwrap(), 8);
        for address in [a, b, c, d, Address::repeat_byte(0xe)] {
            let want = plain.account_info(&address).unwrap();
            assert_eq!(through.account_info(&address).unwrap(), want, "{address}");
            for slot in (0..6u64).map(U256::from) {
                let want = plain.storage_slot(&address, &slot).unwrap();
                let got = through.storage_slot(&address, &slot).unwrap();
                assert_eq!(got, want, "{address} slot {slot}");
            }
        }
        // The store's answers are the ones worked out by hand above.
        assert_eq!(plain.account_info(&b).unwrap(), None);
        assert_eq!(plain.storage_slot(&a, &U256::from(3)).unwrap(), U256::ZERO);
        assert_eq!(
            plain.storage_slot(&c, &U256::from(2)).unwrap(),
            U256::from(6)
        );
    }
}
