//! Derives state, receipts, indexes and the state root from executed blocks.
//!
//! Input: [`BlockOutcome`]s in block order (from the producer, or from
//! re-executing the block log). Output: one atomic store batch per block (or
//! per group of blocks, when the stage has fallen behind and several wait)
//! and the state root recorded per block. The block log stays the durable
//! record: store commits are made durable only every few blocks, and after a
//! crash the missing tail is replayed.

mod prune;
mod replay;
pub(crate) mod state;
pub(crate) mod trie;

pub(crate) use replay::replay;
pub use replay::ReplayReport;
pub use state::{SlotProof, StateProof};

use crate::{
    codec::{self, encode_account, encode_block, storage_key, u64_key},
    genesis::Genesis,
    stored::{StoredBlock, StoredTx},
    ChainView, Result, SequencerError,
};
use alloy_primitives::{Bytes, B256, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use state::DerivedState;
use state_transition::{BlockOutcome, ChainSpec, MemoryState, StateDiff};
use std::sync::Arc;
use storage::{KvStore, Table, WriteBatch};
use trie::NewNodes;

/// The derive stage's state and tries, shared with readers that need
/// proofs against the latest derived root.
pub(crate) type SharedTries = Arc<RwLock<DerivedState>>;

/// Applies blocks to the derived store and keeps the state root current.
pub(crate) struct Deriver {
    store: Arc<dyn KvStore>,
    roots: SharedTries,
    height: u64,
    durable_every: u64,
    /// Blocks of state history kept behind the head (`None`: all).
    keep: Option<u64>,
    /// The first block whose state is kept.
    history_from: u64,
}

impl Deriver {
    /// Opens the derived store, writing genesis into it when it is empty.
    pub(crate) fn open(
        store: Arc<dyn KvStore>,
        genesis: &Genesis,
        chain: &ChainSpec,
        durable_every: u64,
    ) -> Result<Self> {
        match store.get(Table::Meta, codec::META_CHAIN_ID)? {
            Some(raw) => {
                let found = codec::decode_u64(&raw).unwrap_or_default();
                if found != chain.chain_id {
                    return Err(SequencerError::ChainMismatch {
                        expected: chain.chain_id,
                        found,
                    });
                }
            }
            None => write_genesis(store.as_ref(), genesis, chain)?,
        }
        let view = ChainView::new(store.snapshot()?);
        let height = view.head()?;
        let state = load_state(store.as_ref(), &view, height)?;
        let mut nodes = NewNodes::new();
        let mut derived = DerivedState::new(state, height, &mut nodes);
        let root = derived.root();
        let mut history_from = view.history_from()?;
        let kept = history_from.is_some()
            && (root == EMPTY_ROOT_HASH || store.get(Table::TrieNodes, root.as_slice())?.is_some());
        if !kept {
            history_from = Some(height);
            // A store from before history was kept: it starts here.
            let mut batch = WriteBatch::new();
            put_nodes(&mut batch, height, nodes);
            batch.put(Table::Meta, codec::META_HISTORY_FROM, u64_key(height));
            store.write(batch, true)?;
            tracing::info!(from = height, "state history starts");
        }
        Ok(Self {
            store,
            roots: Arc::new(RwLock::new(derived)),
            height,
            durable_every: durable_every.max(1),
            keep: None,
            history_from: history_from.unwrap_or(height),
        })
    }

    /// Keeps the state of only the last `keep` blocks (`None`: all).
    pub(crate) fn keep_history(&mut self, keep: Option<u64>) {
        self.keep = keep;
    }

    /// Last derived block.
    pub(crate) fn height(&self) -> u64 {
        self.height
    }

    /// The state after the last derived block.
    pub(crate) fn state(&self) -> MappedRwLockReadGuard<'_, MemoryState> {
        RwLockReadGuard::map(self.roots.read(), DerivedState::state)
    }

    /// The tries, for proofs (see [`DerivedState::proof`]).
    pub(crate) fn tries(&self) -> SharedTries {
        self.roots.clone()
    }

    /// The state root after the last derived block.
    pub(crate) fn root(&self) -> B256 {
        self.roots.write().root()
    }

    /// Writes one executed block and returns the state root after it.
    pub(crate) fn apply(&mut self, outcome: &BlockOutcome) -> Result<B256> {
        let roots = self.apply_all(std::slice::from_ref(outcome))?;
        Ok(roots[0])
    }

    /// Writes consecutive executed blocks in one store commit and returns
    /// the state root after each. When the stage has fallen behind, this is
    /// what lets it catch up: a commit rewrites every store page its keys
    /// land on, and trie nodes, accounts and slots are keyed by hash, so
    /// one block's writes touch nearly one page each; several blocks in one
    /// commit share pages and the commit's own cost.
    pub(crate) fn apply_all(&mut self, outcomes: &[BlockOutcome]) -> Result<Vec<B256>> {
        let mut batch = WriteBatch::new();
        let mut roots = Vec::with_capacity(outcomes.len());
        let mut durable = false;
        for outcome in outcomes {
            roots.push(self.stage(outcome, &mut batch));
            durable |= outcome.context.number.is_multiple_of(self.durable_every);
        }
        let Some(last) = outcomes.last() else {
            return Ok(roots);
        };
        let number = last.context.number;
        // The flush behind a durable commit holds the derived head back
        // (and shares the disk with the block log): worth watching apart.
        let committing = std::time::Instant::now();
        self.store.write(batch, durable)?;
        metrics::histogram!(
            "prividium_derive_commit_seconds",
            "durable" => if durable { "true" } else { "false" }
        )
        .record(committing.elapsed().as_secs_f64());
        self.height = number;
        if let Some(keep) = self.keep {
            if number >= self.history_from.saturating_add(keep) {
                if let Some(p) = prune::prune(self.store.as_ref(), keep, number)? {
                    tracing::info!(
                        from = p.from,
                        blocks = p.blocks,
                        nodes = p.nodes,
                        "state history pruned"
                    );
                    self.history_from = p.from;
                }
            }
        }
        Ok(roots)
    }

    /// Adds one block's writes to `batch`; returns its state root.
    fn stage(&mut self, outcome: &BlockOutcome, batch: &mut WriteBatch) -> B256 {
        let number = outcome.context.number;
        write_diff(batch, &outcome.diff);
        let mut nodes = NewNodes::new();
        let root = self
            .roots
            .write()
            .apply(&outcome.diff, number, outcome.header.hash, &mut nodes);
        put_nodes(batch, number, nodes);
        let block = StoredBlock {
            header: outcome.header.header.clone(),
            hash: outcome.header.hash,
            txs: outcome
                .txs
                .iter()
                .map(|t| StoredTx {
                    envelope: t.tx.clone(),
                    sender: t.sender,
                    receipt: t.receipt.clone(),
                    gas_used: t.gas_used,
                    contract_address: t.contract_address,
                    effective_gas_price: t.effective_gas_price,
                })
                .collect(),
        };
        for (index, tx) in block.txs.iter().enumerate() {
            let mut loc = u64_key(number).to_vec();
            loc.extend_from_slice(&(index as u32).to_be_bytes());
            batch.put(Table::TxIndex, tx.envelope.tx_hash().as_slice(), loc);
        }
        batch.put(Table::Blocks, u64_key(number), encode_block(&block));
        batch.put(Table::BlockHashes, block.hash.as_slice(), u64_key(number));
        batch.put(Table::StateRoots, u64_key(number), root.as_slice());
        batch.put(Table::Meta, codec::META_DERIVED_HEIGHT, u64_key(number));
        root
    }

    /// Makes everything written so far durable (clean shutdown).
    pub(crate) fn flush(&self) -> Result<()> {
        self.store.write(WriteBatch::new(), true)?;
        Ok(())
    }
}

/// The trie nodes block `number` added: with those of every block before
/// it, the state at each of them can be walked from its root (reads and
/// proofs at older blocks). Keyed by hash, so a node shared by versions is
/// stored once; each carries the last block that wrote it, and each block
/// lists what it wrote, which is what pruning needs (see `prune`).
pub(crate) fn put_nodes(batch: &mut WriteBatch, number: u64, nodes: NewNodes) {
    let mut log = Vec::with_capacity(nodes.len() * 32);
    for (hash, rlp) in nodes {
        let mut value = Vec::with_capacity(8 + rlp.len());
        value.extend_from_slice(&u64_key(number));
        value.extend_from_slice(&rlp);
        batch.put(Table::TrieNodes, hash.as_slice(), value);
        log.extend_from_slice(hash.as_slice());
    }
    batch.put(Table::TrieNodeLog, u64_key(number), log);
}

fn write_diff(batch: &mut WriteBatch, diff: &StateDiff) {
    for (hash, code) in &diff.codes {
        batch.put(Table::Code, hash.as_slice(), code.to_vec());
    }
    for (address, change) in &diff.accounts {
        if change.storage_cleared || change.info.is_none() {
            batch.delete_prefix(Table::Storage, address.as_slice());
        }
        match &change.info {
            None => batch.delete(Table::Accounts, address.as_slice()),
            Some(info) => {
                batch.put(Table::Accounts, address.as_slice(), encode_account(info));
                for (slot, value) in &change.storage {
                    let key = storage_key(address, slot);
                    if value.is_zero() {
                        batch.delete(Table::Storage, key);
                    } else {
                        batch.put(Table::Storage, key, value.to_be_bytes::<32>());
                    }
                }
            }
        }
    }
}

/// The genesis block: number 0, carrying the genesis state root.
fn genesis_block(genesis: &Genesis, chain: &ChainSpec, root: B256) -> StoredBlock {
    let header = genesis.header(chain, root);
    let hash = header.hash_slow();
    StoredBlock {
        header,
        hash,
        txs: Vec::new(),
    }
}

fn write_genesis(store: &dyn KvStore, genesis: &Genesis, chain: &ChainSpec) -> Result<()> {
    let state = genesis.state();
    let mut batch = WriteBatch::new();
    let diff = StateDiff {
        accounts: state
            .accounts
            .iter()
            .map(|(a, info)| {
                let change = state_transition::AccountChange {
                    info: Some(info.clone()),
                    storage_cleared: false,
                    storage: state.storage.get(a).cloned().unwrap_or_default(),
                };
                (*a, change)
            })
            .collect(),
        codes: state.codes.clone(),
    };
    write_diff(&mut batch, &diff);
    let root = state.state_root();
    let block = genesis_block(genesis, chain, root);
    batch.put(Table::Blocks, u64_key(0), encode_block(&block));
    batch.put(Table::BlockHashes, block.hash.as_slice(), u64_key(0));
    batch.put(Table::StateRoots, u64_key(0), root.as_slice());
    batch.put(Table::Meta, codec::META_DERIVED_HEIGHT, u64_key(0));
    batch.put(Table::Meta, codec::META_CHAIN_ID, u64_key(chain.chain_id));
    store.write(batch, true)?;
    tracing::info!(chain_id = chain.chain_id, %root, hash = %block.hash, "genesis written");
    Ok(())
}

/// Loads the complete derived state into memory (execution works on it).
fn load_state(store: &dyn KvStore, view: &ChainView, height: u64) -> Result<MemoryState> {
    let mut state = MemoryState::default();
    for_each(store, Table::Accounts, |k, v| {
        if let (Ok(addr), Some(info)) = (<[u8; 20]>::try_from(k), codec::decode_account(v)) {
            state.accounts.insert(addr.into(), info);
        }
    })?;
    for_each(store, Table::Storage, |k, v| {
        if k.len() == 52 && v.len() == 32 {
            let addr = alloy_primitives::Address::from_slice(&k[..20]);
            let slot = U256::from_be_slice(&k[20..]);
            state
                .storage
                .entry(addr)
                .or_default()
                .insert(slot, U256::from_be_slice(v));
        }
    })?;
    for_each(store, Table::Code, |k, v| {
        if k.len() == 32 {
            state
                .codes
                .insert(B256::from_slice(k), Bytes::copy_from_slice(v));
        }
    })?;
    for n in height.saturating_sub(state_transition::BLOCK_HASH_WINDOW - 1)..=height {
        if let Some(block) = view.block(n)? {
            state.block_hashes.insert(n, block.hash);
        }
    }
    Ok(state)
}

fn for_each(store: &dyn KvStore, table: Table, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
    store.scan(table, &mut |k, v| {
        f(k, v);
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        signed_call_from, signed_transfer_from, test_context, test_signer, TEST_CHAIN_ID,
    };
    use alloy_primitives::{Address, Bytes};
    use parking_lot::Mutex;
    use state_transition::{revm::primitives::hardfork::SpecId, BlockExecutor, FeeMode};
    use storage::{Entry, KeyRange, KvRead, RedbStore};

    /// Stores `calldata[32..64]` in slot `calldata[0..32]`.
    const SET_SLOT: [u8; 8] = [0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00];
    const SLOTS_AT: Address = Address::repeat_byte(0xcc);

    /// A redb store that remembers whether each write asked for durability.
    struct Recording {
        inner: RedbStore,
        writes: Mutex<Vec<bool>>,
    }

    impl KvRead for Recording {
        fn get(&self, table: Table, key: &[u8]) -> storage::Result<Option<Vec<u8>>> {
            self.inner.get(table, key)
        }
        fn range(&self, table: Table, keys: KeyRange<'_>) -> storage::Result<Vec<Entry>> {
            self.inner.range(table, keys)
        }
    }

    impl KvStore for Recording {
        fn write(&self, batch: WriteBatch, durable: bool) -> storage::Result<()> {
            self.writes.lock().push(durable);
            self.inner.write(batch, durable)
        }
        fn snapshot(&self) -> storage::Result<Box<dyn KvRead + Send + Sync>> {
            self.inner.snapshot()
        }
    }

    fn everything(store: &dyn KvStore) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for table in Table::ALL {
            store
                .scan(table, &mut |k, v| {
                    out.push((table, k.to_vec(), v.to_vec()));
                    Ok(())
                })
                .unwrap();
        }
        out
    }

    /// Blocks derived together in one commit leave the store exactly as
    /// deriving them one at a time does: the same roots, blocks, receipts,
    /// indexes, state and history, byte for byte, including a slot written,
    /// cleared and written again within the group.
    #[test]
    fn blocks_derived_together_store_what_one_at_a_time_stores() {
        let chain = ChainSpec {
            chain_id: TEST_CHAIN_ID,
            spec: SpecId::PRAGUE,
            fee_mode: FeeMode::Zero,
            block_gas_limit: 30_000_000,
        };
        let signers: Vec<_> = (0..4).map(test_signer).collect();
        let funded = crate::genesis::GenesisAccount {
            balance: Some(U256::from(10u64).pow(U256::from(18u64))),
            ..Default::default()
        };
        let mut alloc: std::collections::BTreeMap<_, _> = signers
            .iter()
            .map(|s| (s.address(), funded.clone()))
            .collect();
        let slots_at = crate::genesis::GenesisAccount {
            code: Some(Bytes::from_static(&SET_SLOT)),
            ..Default::default()
        };
        alloc.insert(SLOTS_AT, slots_at);
        let genesis = Genesis {
            config: crate::genesis::GenesisConfig {
                chain_id: Some(TEST_CHAIN_ID),
            },
            timestamp: None,
            gas_limit: None,
            alloc,
        };
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            Arc::new(Recording {
                inner: RedbStore::open(&dir.path().join(name)).unwrap(),
                writes: Mutex::new(Vec::new()),
            })
        };
        let (one_store, grouped_store) = (open("one.redb"), open("grouped.redb"));
        let mut one = Deriver::open(one_store.clone(), &genesis, &chain, 3).unwrap();
        let mut grouped = Deriver::open(grouped_store.clone(), &genesis, &chain, 3).unwrap();
        grouped_store.writes.lock().clear();
        // (slot, value) the last signer sets in each block: slot 1 is
        // written, cleared and written again.
        let sets = [(1u8, 5u8), (1, 0), (2, 7), (1, 9), (2, 0)];
        let mut outcomes = Vec::new();
        let mut one_roots = Vec::new();
        for (number, (slot, value)) in (1..=5u64).zip(sets) {
            let outcome = {
                let state = one.state();
                let mut exec = BlockExecutor::new(&chain, test_context(number), &*state);
                for (i, s) in signers.iter().take(3).enumerate() {
                    // New recipients each block: accounts created, tries grown.
                    let to = Address::with_last_byte(0x20 + (number * 4 + i as u64) as u8);
                    let tx = signed_transfer_from(s, number - 1, to, 1_000 + i as u64, 0);
                    exec.execute(tx, s.address()).unwrap();
                }
                let mut input = [0u8; 64];
                (input[31], input[63]) = (slot, value);
                let setter = &signers[3];
                let input = Bytes::copy_from_slice(&input);
                let tx = signed_call_from(setter, number - 1, SLOTS_AT, input, 100_000);
                let executed = exec.execute(tx, setter.address()).unwrap();
                assert!(executed.receipt.status(), "block {number}: slot set");
                exec.finish()
            };
            one_roots.push(one.apply(&outcome).unwrap());
            outcomes.push(outcome);
        }
        let grouped_roots = grouped.apply_all(&outcomes).unwrap();
        assert_eq!(grouped_roots, one_roots);
        assert_eq!(grouped.height(), 5);
        assert_eq!(grouped.root(), one.root());
        // One commit, durable because block 3 is a multiple of 3.
        assert_eq!(*grouped_store.writes.lock(), vec![true]);
        let (a, b) = (everything(&*one_store), everything(&*grouped_store));
        assert!(a.iter().any(|(t, ..)| *t == Table::TrieNodes));
        assert_eq!(a, b);
        // Slot 1 holds 9 and slot 2 was cleared.
        let slot = |n: u8| storage_key(&SLOTS_AT, &U256::from(n));
        let stored = |n: u8| grouped_store.get(Table::Storage, &slot(n)).unwrap();
        assert_eq!(stored(1), Some(U256::from(9).to_be_bytes::<32>().to_vec()));
        assert_eq!(stored(2), None);
        // The history of every block in the group is readable.
        let view = ChainView::new(grouped_store.snapshot().unwrap());
        for number in 0..=5u64 {
            assert!(view.state_at(number).unwrap().is_some(), "block {number}");
        }
    }
}
