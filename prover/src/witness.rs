//! Builds a batch's witness from the prover's copy of the state.
//!
//! The prover keeps the full state at its last batch boundary
//! ([`ProverState`]). For the next batch it executes the blocks over that
//! state while recording every account, slot, code and block hash they read,
//! then extracts Merkle-Patricia proofs for exactly those keys against the
//! pre-batch root, and finally moves its state past the batch.

use crate::ProverError;
use alloy_consensus::{transaction::SignerRecoverable, Header, TxEnvelope};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles};
use state_transition::{
    account_leaf, AuditHead, BatchOverlay, BlockContext, BlockExecutor, ChainParams, ChainSpec,
    MemoryState, OverlayState, ParentBlock, RootedState, StateDiff, StateError, StateReader,
    WitnessBlock,
};
use state_transition::{revm::state::AccountInfo, BatchWitness};
use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
};

/// One block of the chain as the prover receives it.
#[derive(Debug, Clone)]
pub struct ChainBlock {
    /// Header as hashed.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
    /// Signed transactions in order.
    pub transactions: Vec<TxEnvelope>,
}

/// A batch's witness, with what the state needs to move past the batch
/// ([`ProverState::commit`]).
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    /// The witness the batch program runs on.
    pub witness: BatchWitness,
    diffs: Vec<StateDiff>,
    blocks: Vec<(u64, B256)>,
}

/// The prover's full state at the end of its last batch.
#[derive(Debug, Clone)]
pub struct ProverState {
    state: RootedState,
    height: u64,
}

impl ProverState {
    /// The state after block `height`.
    pub fn new(state: MemoryState, height: u64) -> Self {
        Self {
            state: RootedState::new(state),
            height,
        }
    }

    /// The full state after [`height`](Self::height).
    pub fn memory(&self) -> &MemoryState {
        self.state.state()
    }

    /// Last block applied.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// State root after [`height`](Self::height).
    pub fn root(&self) -> B256 {
        self.state.root()
    }

    /// Re-executes `block` (the block after `height`) without witnessing it:
    /// how a restarted prover catches up to its last proven batch.
    pub fn replay(
        &mut self,
        chain: &ChainSpec,
        parent: &Header,
        block: &ChainBlock,
    ) -> Result<(), ProverError> {
        let (diff, _) = execute_block(chain, parent, block, self.state.state())?;
        self.state
            .apply_diff(&diff, block.header.number, block.hash);
        self.height = block.header.number;
        Ok(())
    }

    /// Builds the witness for `blocks` (which must follow `height`) and
    /// advances past them. `header(n)` returns the header of an earlier block.
    pub fn witness_batch(
        &mut self,
        chain: &ChainSpec,
        batch_number: u64,
        blocks: &[ChainBlock],
        audit: AuditHead,
        header: impl Fn(u64) -> Result<Header, ProverError>,
    ) -> Result<BatchWitness, ProverError> {
        let prepared = self.prepare_batch(chain, batch_number, blocks, audit, header)?;
        Ok(self.commit(prepared))
    }

    /// Moves the state past a batch [`prepare_batch`](Self::prepare_batch)
    /// witnessed from it; returns the witness.
    pub fn commit(&mut self, prepared: PreparedBatch) -> BatchWitness {
        for (diff, (number, hash)) in prepared.diffs.iter().zip(&prepared.blocks) {
            self.state.apply_diff(diff, *number, *hash);
        }
        if let Some((number, _)) = prepared.blocks.last() {
            self.height = *number;
        }
        prepared.witness
    }

    /// Builds the witness for `blocks` (which must follow `height`) without
    /// moving the state: a cutter that finds the batch too large witnesses
    /// fewer blocks instead.
    pub fn prepare_batch(
        &self,
        chain: &ChainSpec,
        batch_number: u64,
        blocks: &[ChainBlock],
        audit: AuditHead,
        header: impl Fn(u64) -> Result<Header, ProverError>,
    ) -> Result<PreparedBatch, ProverError> {
        let first = blocks.first().ok_or(ProverError::EmptyBatch)?.header.number;
        if first != self.height + 1 {
            return Err(ProverError::NotNext {
                expected: self.height + 1,
                got: first,
            });
        }
        let recorder = Recorder::new(self.state.state());
        let mut overlay = OverlayState::new(&recorder, BTreeMap::new());
        let mut diffs = Vec::with_capacity(blocks.len());
        let mut parent = header(first - 1)?;
        for block in blocks {
            let (diff, _) = execute_block(chain, &parent, block, &overlay)?;
            overlay.apply(&diff, block.header.number, block.hash);
            diffs.push(diff);
            parent = block.header.clone();
        }
        let (_, net) = overlay.into_parts();
        let reads = recorder.into_reads();

        let mut nodes = self.account_proof(&reads, &net);
        for (address, slots) in &reads.slots {
            nodes.extend(self.storage_proof(address, slots, net.accounts.get(address)));
        }
        let codes = reads
            .codes
            .iter()
            .filter_map(|h| self.state.state().codes.get(h).cloned())
            .collect();
        let oldest = reads
            .block_numbers
            .first()
            .copied()
            .unwrap_or(first - 1)
            .min(first - 1);
        let ancestors = (oldest..first)
            .map(&header)
            .collect::<Result<Vec<_>, _>>()?;

        let witness = BatchWitness {
            chain: ChainParams::of(chain),
            batch_number,
            prev_state_root: self.state.root(),
            ancestors,
            blocks: blocks
                .iter()
                .map(|b| WitnessBlock {
                    timestamp: b.header.timestamp,
                    beneficiary: b.header.beneficiary,
                    transactions: b.transactions.clone(),
                })
                .collect(),
            nodes: dedup(nodes),
            codes,
            audit,
        };
        Ok(PreparedBatch {
            witness,
            diffs,
            blocks: blocks.iter().map(|b| (b.header.number, b.hash)).collect(),
        })
    }

    /// State-trie nodes for every account read or written, plus the nearest
    /// surviving neighbours of deleted accounts (removing a key can fold its
    /// branch into a sibling, which must then be open).
    fn account_proof(&self, reads: &Reads, net: &BatchOverlay) -> Vec<Bytes> {
        let leaves: Vec<(B256, Vec<u8>)> = self
            .state
            .trie_accounts()
            .map(|a| (keccak256(a.address), account_leaf(&a)))
            .collect();
        let deleted: BTreeSet<B256> = net
            .accounts
            .iter()
            .filter(|(a, d)| d.info.is_none() && self.state.state().accounts.contains_key(*a))
            .map(|(a, _)| keccak256(a))
            .collect();
        let mut targets: BTreeSet<B256> = reads.accounts.iter().map(keccak256).collect();
        targets.extend(net.accounts.keys().map(keccak256));
        proof_nodes(leaves, targets, &deleted)
    }

    /// Storage-trie nodes for the slots of `address` the batch read.
    fn storage_proof(
        &self,
        address: &Address,
        slots: &BTreeSet<U256>,
        delta: Option<&state_transition::AccountDelta>,
    ) -> Vec<Bytes> {
        let Some(existing) = self.state.state().storage.get(address) else {
            return Vec::new();
        };
        let leaves: Vec<(B256, Vec<u8>)> = existing
            .iter()
            .map(|(k, v)| (keccak256(B256::from(*k)), alloy_rlp::encode(v)))
            .collect();
        let mut targets: BTreeSet<B256> = slots.iter().map(|s| keccak256(B256::from(*s))).collect();
        let mut deleted = BTreeSet::new();
        if let Some(delta) = delta.filter(|d| !d.cleared && d.info.is_some()) {
            for (slot, value) in &delta.slots {
                let key = keccak256(B256::from(*slot));
                targets.insert(key);
                if value.is_zero() && existing.contains_key(slot) {
                    deleted.insert(key);
                }
            }
        }
        proof_nodes(leaves, targets, &deleted)
    }
}

/// Runs one block over `state` and checks it reproduces the recorded hash.
fn execute_block(
    chain: &ChainSpec,
    parent: &Header,
    block: &ChainBlock,
    state: impl StateReader,
) -> Result<(StateDiff, B256), ProverError> {
    let parent_hash = block.header.parent_hash;
    let ctx = BlockContext::child_of(
        chain,
        &ParentBlock::of(parent, parent_hash),
        block.header.timestamp,
        block.header.beneficiary,
    );
    let number = ctx.number;
    let mut exec = BlockExecutor::new(chain, ctx, state);
    for (index, tx) in block.transactions.iter().enumerate() {
        let sender = tx.recover_signer().map_err(|_| ProverError::Diverged {
            number,
            reason: format!("transaction {index} has no valid signature"),
        })?;
        exec.execute(tx.clone(), sender)
            .map_err(|e| ProverError::Diverged {
                number,
                reason: format!("transaction {index} rejected: {e}"),
            })?;
    }
    let outcome = exec.finish();
    if outcome.header.hash != block.hash {
        return Err(ProverError::Diverged {
            number,
            reason: format!(
                "re-executed hash {} but the chain has {}",
                outcome.header.hash, block.hash
            ),
        });
    }
    Ok((outcome.diff, outcome.header.hash))
}

/// Nodes on the paths to `targets` (and to the nearest keys that survive
/// each deleted key) in the trie of `leaves`.
fn proof_nodes(
    mut leaves: Vec<(B256, Vec<u8>)>,
    mut targets: BTreeSet<B256>,
    deleted: &BTreeSet<B256>,
) -> Vec<Bytes> {
    if leaves.is_empty() {
        return Vec::new();
    }
    leaves.sort_unstable_by_key(|(k, _)| *k);
    let survivors: Vec<B256> = leaves
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !deleted.contains(k))
        .collect();
    for key in deleted {
        let at = survivors.partition_point(|s| s < key);
        targets.extend(survivors.get(at));
        if at > 0 {
            targets.insert(survivors[at - 1]);
        }
    }
    let retainer = ProofRetainer::new(targets.iter().map(Nibbles::unpack).collect());
    let mut hb = HashBuilder::default().with_proof_retainer(retainer);
    for (key, value) in &leaves {
        hb.add_leaf(Nibbles::unpack(key), value);
    }
    hb.root();
    hb.take_proof_nodes()
        .into_nodes_sorted()
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}

fn dedup(nodes: Vec<Bytes>) -> Vec<Bytes> {
    let unique: BTreeSet<Bytes> = nodes.into_iter().collect();
    unique.into_iter().collect()
}

/// What a batch read from the pre-batch state.
#[derive(Debug, Default)]
struct Reads {
    accounts: BTreeSet<Address>,
    slots: BTreeMap<Address, BTreeSet<U256>>,
    codes: BTreeSet<B256>,
    block_numbers: BTreeSet<u64>,
}

/// A state reader that notes every key it is asked for.
struct Recorder<'a> {
    inner: &'a MemoryState,
    reads: RefCell<Reads>,
}

impl<'a> Recorder<'a> {
    fn new(inner: &'a MemoryState) -> Self {
        Self {
            inner,
            reads: RefCell::default(),
        }
    }

    fn into_reads(self) -> Reads {
        self.reads.into_inner()
    }
}

impl StateReader for Recorder<'_> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        self.reads.borrow_mut().accounts.insert(address);
        self.inner.account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        let mut reads = self.reads.borrow_mut();
        reads.accounts.insert(address);
        reads.slots.entry(address).or_default().insert(slot);
        drop(reads);
        self.inner.storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.reads.borrow_mut().codes.insert(code_hash);
        self.inner.code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        self.reads.borrow_mut().block_numbers.insert(number);
        self.inner.block_hash(number)
    }
}
