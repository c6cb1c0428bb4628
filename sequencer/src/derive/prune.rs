//! Retention of the state history: drops the trie nodes no kept block's
//! state needs once the history is longer than configured.
//!
//! Nodes are shared between versions, so a node written by a dropped block
//! may still be needed. It is kept if the oldest kept state (the new start)
//! reaches it, or if a later block wrote it again (its last-written block is
//! after the new start): a node that a later state reaches but the new start
//! does not was rebuilt on a changed path after the start, and so written
//! again. Everything else the dropped blocks wrote goes.

use crate::{chain::ChainView, codec, codec::u64_key, Result, SequencerError};
use alloy_primitives::{map::B256Set, B256};
use alloy_rlp::Decodable;
use alloy_trie::{
    nodes::{RlpNode, TrieNode},
    EMPTY_ROOT_HASH,
};
use storage::{KvStore, StorageError, Table, WriteBatch};

/// What one pass dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pruned {
    /// The first block whose state is still kept.
    pub(crate) from: u64,
    /// Blocks whose states were dropped.
    pub(crate) blocks: u64,
    /// Trie nodes deleted.
    pub(crate) nodes: u64,
}

/// How many dropped blocks one write batch covers.
const BLOCKS_PER_BATCH: u64 = 256;

/// With `keep` blocks of history kept behind `head`, drops what is older,
/// once there is a slice of an eighth of `keep` to drop (so the walk of the
/// oldest kept state is paid once per slice, not per block).
pub(crate) fn prune(store: &dyn KvStore, keep: u64, head: u64) -> Result<Option<Pruned>> {
    let view = ChainView::new(store.snapshot()?);
    let Some(from) = view.history_from()? else {
        return Ok(None);
    };
    let slice = (keep / 8).max(1);
    if head < from.saturating_add(keep).saturating_add(slice) {
        return Ok(None);
    }
    let start = head - keep;
    let root = view
        .state_root(start)?
        .ok_or_else(|| SequencerError::Execution(format!("state root of block {start} missing")))?;
    let live = reachable(&view, root)?;
    // The new start first, durably: a crash part-way leaves blocks before it
    // unreadable by name ("not kept"), never half-deleted and still offered.
    let mut batch = WriteBatch::new();
    batch.put(Table::Meta, codec::META_HISTORY_FROM, u64_key(start));
    store.write(batch, true)?;
    // A node may be listed by several dropped blocks (and twice by one).
    let mut dropped = B256Set::default();
    let mut block = from;
    while block < start {
        let end = (block + BLOCKS_PER_BATCH).min(start);
        let mut batch = WriteBatch::new();
        for b in block..end {
            for hash in view.trie_node_log(b)?.unwrap_or_default() {
                if live.contains(&hash) || dropped.contains(&hash) {
                    continue;
                }
                if let Some((written, _)) = view.trie_node_written(&hash)? {
                    if written <= start {
                        batch.delete(Table::TrieNodes, hash.as_slice());
                        dropped.insert(hash);
                    }
                }
            }
            batch.delete(Table::TrieNodeLog, u64_key(b));
        }
        store.write(batch, false)?;
        block = end;
    }
    Ok(Some(Pruned {
        from: start,
        blocks: start - from,
        nodes: dropped.len() as u64,
    }))
}

/// Every stored node the state under `root` reaches: the account trie and
/// each account's storage trie.
fn reachable(view: &ChainView, root: B256) -> Result<B256Set> {
    let mut seen = B256Set::default();
    // (node hash, whether its leaves are accounts)
    let mut stack = vec![(root, true)];
    while let Some((hash, accounts)) = stack.pop() {
        if hash == EMPTY_ROOT_HASH || !seen.insert(hash) {
            continue;
        }
        let rlp = view
            .trie_node(&hash)?
            .ok_or_else(|| StorageError::Corrupt {
                table: Table::TrieNodes,
                key: hash.to_string(),
                message: "trie node missing".into(),
            })?;
        // Embedded nodes are walked in place: they hold no hashes of
        // stored nodes other than through their own children.
        let mut inline = vec![rlp];
        while let Some(bytes) = inline.pop() {
            let node =
                TrieNode::decode(&mut bytes.as_slice()).map_err(|e| StorageError::Corrupt {
                    table: Table::TrieNodes,
                    key: hash.to_string(),
                    message: format!("malformed trie node: {e}"),
                })?;
            let mut child = |c: &RlpNode| match c.as_hash() {
                Some(h) => stack.push((h, accounts)),
                None => inline.push(c.to_vec()),
            };
            match node {
                TrieNode::EmptyRoot => {}
                TrieNode::Branch(branch) => {
                    for c in &branch.stack {
                        child(c);
                    }
                }
                TrieNode::Extension(ext) => child(&ext.child),
                TrieNode::Leaf(leaf) if accounts => {
                    if let Some(storage_root) = storage_root_of(&leaf.value) {
                        stack.push((storage_root, false));
                    }
                }
                TrieNode::Leaf(_) => {}
            }
        }
    }
    Ok(seen)
}

/// The storage root in an account leaf's value.
fn storage_root_of(value: &[u8]) -> Option<B256> {
    #[derive(alloy_rlp::RlpDecodable)]
    struct Account {
        _nonce: u64,
        _balance: alloy_primitives::U256,
        storage_root: B256,
        _code_hash: B256,
    }
    Account::decode(&mut &value[..])
        .ok()
        .map(|a| a.storage_root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::{put_nodes, state::DerivedState, trie::NewNodes};
    use alloy_primitives::{Address, U256};
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use state_transition::{revm::state::AccountInfo, AccountChange, MemoryState, StateDiff};
    use storage::{KvRead, MemoryStore};

    fn persist(store: &MemoryStore, number: u64, root: B256, nodes: NewNodes) {
        let mut batch = WriteBatch::new();
        put_nodes(&mut batch, number, &nodes);
        batch.put(Table::StateRoots, u64_key(number), root.as_slice());
        batch.put(Table::Meta, codec::META_DERIVED_HEIGHT, u64_key(number));
        if number == 0 {
            batch.put(Table::Meta, codec::META_HISTORY_FROM, u64_key(0));
        }
        store.write(batch, true).unwrap();
    }

    fn stored_nodes(store: &MemoryStore) -> u64 {
        let mut n = 0;
        store
            .scan(Table::TrieNodes, &mut |_, _| {
                n += 1;
                Ok(())
            })
            .unwrap();
        n
    }

    /// Balances and slots drawn from a few values, so states recur and
    /// nodes a dropped block wrote come back in kept blocks.
    #[test]
    fn pruning_keeps_every_kept_block_readable_and_drops_only_what_none_needs() {
        let mut rng = StdRng::seed_from_u64(5);
        let addresses: Vec<Address> = (1..=10u8).map(Address::repeat_byte).collect();
        let store = MemoryStore::new();
        let mut reference = MemoryState::default();
        for a in &addresses[..4] {
            reference.accounts.insert(
                *a,
                AccountInfo {
                    balance: U256::from(1),
                    ..Default::default()
                },
            );
        }
        let mut nodes = NewNodes::new();
        let mut derived = DerivedState::new(reference.clone(), 0, &mut nodes);
        persist(&store, 0, derived.root(), nodes);
        let mut states = vec![reference.clone()];
        for number in 1..=60u64 {
            let mut diff = StateDiff::default();
            for _ in 0..rng.random_range(1..4) {
                let a = addresses[rng.random_range(0..addresses.len())];
                let change = if rng.random_bool(0.1) {
                    AccountChange {
                        info: None,
                        storage_cleared: false,
                        storage: Default::default(),
                    }
                } else {
                    AccountChange {
                        info: Some(AccountInfo {
                            balance: U256::from(rng.random_range(1..4u64)),
                            ..Default::default()
                        }),
                        storage_cleared: false,
                        storage: (0..rng.random_range(0..3))
                            .map(|_| {
                                (
                                    U256::from(rng.random_range(0..6u64)),
                                    U256::from(rng.random_range(0..3u64)),
                                )
                            })
                            .collect(),
                    }
                };
                diff.accounts.insert(a, change);
            }
            let mut nodes = NewNodes::new();
            let root = derived.apply(&diff, number, B256::ZERO, &mut nodes);
            persist(&store, number, root, nodes);
            reference.apply(&diff);
            assert_eq!(root, reference.state_root());
            states.push(reference.clone());
        }
        let before = stored_nodes(&store);
        // Not yet a slice past the kept length: nothing to do.
        assert_eq!(prune(&store, 58, 60).unwrap(), None);
        let pruned = prune(&store, 20, 60).unwrap().expect("a slice to drop");
        assert_eq!((pruned.from, pruned.blocks), (40, 40));
        assert!(pruned.nodes > 0);
        assert_eq!(stored_nodes(&store), before - pruned.nodes);
        let view = ChainView::new(store.snapshot().unwrap());
        assert_eq!(view.history_from().unwrap(), Some(40));
        for (number, state) in states.iter().enumerate() {
            let at = view.state_at(number as u64).unwrap();
            if number < 40 {
                assert!(at.is_none(), "block {number} still offered");
                assert_eq!(view.trie_node_log(number as u64).unwrap(), None);
                continue;
            }
            let at = at.expect("kept");
            for a in &addresses {
                let got = at.account_info(a).unwrap();
                assert_eq!(
                    got.map(|i| i.balance),
                    state.accounts.get(a).map(|i| i.balance),
                    "block {number} {a}"
                );
                for slot in 0..6u64 {
                    let slot = U256::from(slot);
                    let want = state
                        .storage
                        .get(a)
                        .and_then(|s| s.get(&slot))
                        .copied()
                        .unwrap_or_default();
                    assert_eq!(at.storage_slot(a, &slot).unwrap(), want, "block {number}");
                }
            }
        }
    }
}
