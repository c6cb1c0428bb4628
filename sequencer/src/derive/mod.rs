//! Derives state, receipts, indexes and the state root from executed blocks.
//!
//! Input: [`BlockOutcome`]s in block order (from the producer, or from
//! re-executing the block log). Two steps, which the running node puts on
//! two threads: the [`Stager`] updates the tries, which gives each block
//! its state root, and prepares the store writes; the [`Committer`] writes
//! them (one atomic store batch per block, or per group of blocks when
//! several wait). Between the two the node publishes the rooted blocks to
//! readers (see [`crate::sealed`]), so a store commit, and the periodic
//! durable flush above all, does not hold receipts back. The block log
//! stays the durable record: store commits are made durable only every few
//! blocks, and after a crash the missing tail is replayed.

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
    sealed::SealedBlock,
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

/// Applies blocks to the derived store and keeps the state root current:
/// a [`Stager`] and a [`Committer`] run one after the other (replay and
/// rebuild), or [split](Self::into_parts) onto two threads (the node).
pub(crate) struct Deriver {
    stager: Stager,
    committer: Committer,
}

/// Roots blocks and prepares their store writes.
pub(crate) struct Stager {
    roots: SharedTries,
    durable_every: u64,
}

/// Writes what the [`Stager`] prepared, in order, and prunes history.
pub(crate) struct Committer {
    store: Arc<dyn KvStore>,
    height: u64,
    /// Blocks of state history kept behind the head (`None`: all).
    keep: Option<u64>,
    /// The first block whose state is kept.
    history_from: u64,
}

/// Store writes for consecutive rooted blocks, not yet committed.
pub(crate) struct Staged {
    batch: WriteBatch,
    durable: bool,
    /// The last block in the batch.
    pub(crate) last: u64,
    /// How many blocks the batch holds.
    pub(crate) blocks: usize,
}

impl Staged {
    /// Appends the writes of the blocks after these (one commit for both).
    pub(crate) fn merge(&mut self, next: Staged) {
        for op in next.batch.into_ops() {
            self.batch.push(op);
        }
        self.durable |= next.durable;
        self.last = next.last;
        self.blocks += next.blocks;
    }
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
            put_nodes(&mut batch, height, &nodes);
            batch.put(Table::Meta, codec::META_HISTORY_FROM, u64_key(height));
            store.write(batch, true)?;
            tracing::info!(from = height, "state history starts");
        }
        Ok(Self {
            stager: Stager {
                roots: Arc::new(RwLock::new(derived)),
                durable_every: durable_every.max(1),
            },
            committer: Committer {
                store,
                height,
                keep: None,
                history_from: history_from.unwrap_or(height),
            },
        })
    }

    /// Keeps the state of only the last `keep` blocks (`None`: all).
    pub(crate) fn keep_history(&mut self, keep: Option<u64>) {
        self.committer.keep = keep;
    }

    /// Last derived block.
    pub(crate) fn height(&self) -> u64 {
        self.committer.height
    }

    /// The state after the last derived block.
    pub(crate) fn state(&self) -> MappedRwLockReadGuard<'_, MemoryState> {
        RwLockReadGuard::map(self.stager.roots.read(), DerivedState::state)
    }

    /// The tries, for proofs (see [`DerivedState::proof`]).
    pub(crate) fn tries(&self) -> SharedTries {
        self.stager.roots.clone()
    }

    /// The state root after the last derived block.
    pub(crate) fn root(&self) -> B256 {
        self.stager.roots.write().root()
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
        let (staged, roots) = self.stager.stage(outcomes, None);
        if let Some(staged) = staged {
            self.committer.commit(staged)?;
        }
        Ok(roots)
    }

    /// Makes everything written so far durable (clean shutdown).
    pub(crate) fn flush(&self) -> Result<()> {
        self.committer.flush()
    }

    /// The two steps, for two threads.
    pub(crate) fn into_parts(self) -> (Stager, Committer) {
        (self.stager, self.committer)
    }
}

impl Stager {
    /// Roots consecutive executed blocks and prepares their store writes;
    /// returns the writes (none for no blocks) and the state root after
    /// each block. With `sealed`, each rooted block is also handed out
    /// whole, for readers until its commit.
    pub(crate) fn stage(
        &mut self,
        outcomes: &[BlockOutcome],
        mut sealed: Option<&mut Vec<Arc<SealedBlock>>>,
    ) -> (Option<Staged>, Vec<B256>) {
        let mut batch = WriteBatch::new();
        let mut roots = Vec::with_capacity(outcomes.len());
        let mut durable = false;
        for outcome in outcomes {
            let (root, rooted) = self.stage_one(outcome, &mut batch, sealed.is_some());
            roots.push(root);
            if let (Some(out), Some(rooted)) = (sealed.as_deref_mut(), rooted) {
                out.push(Arc::new(rooted));
            }
            durable |= outcome.context.number.is_multiple_of(self.durable_every);
        }
        let staged = outcomes.last().map(|last| Staged {
            batch,
            durable,
            last: last.context.number,
            blocks: outcomes.len(),
        });
        (staged, roots)
    }

    /// Adds one block's writes to `batch`; returns its state root (and the
    /// block as readers see it, when `keep`).
    fn stage_one(
        &mut self,
        outcome: &BlockOutcome,
        batch: &mut WriteBatch,
        keep: bool,
    ) -> (B256, Option<SealedBlock>) {
        let number = outcome.context.number;
        write_diff(batch, &outcome.diff);
        let mut nodes = NewNodes::new();
        let root = self
            .roots
            .write()
            .apply(&outcome.diff, number, outcome.header.hash, &mut nodes);
        put_nodes(batch, number, &nodes);
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
        let rooted = keep.then(|| {
            let nodes = nodes.into_iter().collect();
            SealedBlock::new(number, block, root, outcome.diff.clone(), nodes)
        });
        (root, rooted)
    }
}

impl Committer {
    /// Last committed block.
    pub(crate) fn height(&self) -> u64 {
        self.height
    }

    /// Commits staged writes (in the order they were staged).
    pub(crate) fn commit(&mut self, staged: Staged) -> Result<()> {
        let Staged {
            batch,
            durable,
            last: number,
            ..
        } = staged;
        // The flush behind a durable commit shares the disk with the block
        // log: worth watching apart.
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
        Ok(())
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
pub(crate) fn put_nodes(batch: &mut WriteBatch, number: u64, nodes: &[(B256, Vec<u8>)]) {
    let mut log = Vec::with_capacity(nodes.len() * 32);
    for (hash, rlp) in nodes {
        let mut value = Vec::with_capacity(8 + rlp.len());
        value.extend_from_slice(&u64_key(number));
        value.extend_from_slice(rlp);
        batch.put(Table::TrieNodes, hash.as_slice(), value);
        log.extend_from_slice(hash.as_slice());
    }
    batch.put(Table::TrieNodeLog, u64_key(number), log);
}

pub(crate) fn write_diff(batch: &mut WriteBatch, diff: &StateDiff) {
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
mod tests;
