//! Cuts the chain into batches and witnesses each one.
//!
//! Witnessing is sequential (each batch starts from the previous one's
//! state), proving is not: the cutter queues a job per batch with its
//! witness, and any number of workers prove them.

use super::{
    checkpoint::{self, CheckpointStore},
    queue::{CutterQueue, Job, JobState},
    unix_ms, AuditSource, ChainSource,
};
use crate::{BatchShape, ChainBlock, CycleModel, PreparedBatch, ProverError, ProverState};
use state_transition::{execute_batch, ChainSpec, MemoryState};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// When to cut a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Most blocks in one batch.
    pub max_blocks: u64,
    /// Longest a block waits for its batch to be cut.
    pub max_wait: Duration,
    /// Most estimated zkVM cycles in one batch ([`CycleModel`]): proving
    /// time grows with cycles, so this bounds how long a batch takes to
    /// prove however busy the chain is. A single block over it is still one
    /// batch (blocks are never split).
    pub max_cycles: u64,
    /// How cycles are estimated from the native run.
    pub model: CycleModel,
}

/// Cycles per batch by default: about 66 minutes on a 2-core CPU worker
/// (158 s per million cycles measured on 100 ETH transfers); a GPU worker
/// is meant to take it in far less (not yet measured).
pub const DEFAULT_MAX_CYCLES: u64 = 25_000_000;

/// Longest the cutter waits for a new head before looking again (and
/// noticing a stop).
pub(crate) const IDLE_WAKE: Duration = Duration::from_secs(1);

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_blocks: 100,
            max_wait: Duration::from_secs(60),
            max_cycles: DEFAULT_MAX_CYCLES,
            model: CycleModel::default(),
        }
    }
}

/// Cuts batches from a chain source into a job store.
pub struct Cutter {
    chain: ChainSpec,
    genesis: MemoryState,
    source: Arc<dyn ChainSource>,
    jobs: Arc<dyn CutterQueue>,
    audit: Arc<dyn AuditSource>,
    policy: BatchPolicy,
    state: Option<ProverState>,
    pending_since: Option<Instant>,
    checkpoints: Option<(Arc<dyn CheckpointStore>, Duration)>,
    last_checkpoint: Option<Instant>,
    /// The state was resumed from the checkpoint; if cutting then fails,
    /// the checkpoint is not used again.
    resumed: bool,
    distrust_checkpoint: bool,
    /// Blocks after the last cut, read so far.
    waiting: Vec<ChainBlock>,
    /// The source's head when last looked at.
    seen_head: u64,
}

impl std::fmt::Debug for Cutter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cutter")
            .field("policy", &self.policy)
            .field("height", &self.state.as_ref().map(ProverState::height))
            .finish_non_exhaustive()
    }
}

impl Cutter {
    /// A cutter continuing after the last batch in `jobs`.
    pub fn new(
        chain: ChainSpec,
        genesis: MemoryState,
        source: Arc<dyn ChainSource>,
        jobs: Arc<dyn CutterQueue>,
        audit: Arc<dyn AuditSource>,
        policy: BatchPolicy,
    ) -> Self {
        Self {
            chain,
            genesis,
            source,
            jobs,
            audit,
            policy,
            state: None,
            pending_since: None,
            checkpoints: None,
            last_checkpoint: None,
            seen_head: 0,
            resumed: false,
            distrust_checkpoint: false,
            waiting: Vec::new(),
        }
    }

    /// Saves the state at a batch boundary into `store` at most every
    /// `every`, so a restart replays only the blocks after it.
    pub fn with_checkpoints(mut self, store: Arc<dyn CheckpointStore>, every: Duration) -> Self {
        self.checkpoints = Some((store, every));
        self
    }

    /// The state a checkpoint holds, if it is one of this chain at or
    /// before `target`: its state must hash to the new state root its batch
    /// was cut with.
    fn resume_point(&self, target: u64) -> Option<(ProverState, ChainBlock)> {
        let (store, _) = self.checkpoints.as_ref()?;
        if self.distrust_checkpoint {
            return None;
        }
        let attempt = || -> Result<Option<(ProverState, ChainBlock)>, ProverError> {
            let Some(bytes) = store.load()? else {
                return Ok(None);
            };
            let c = checkpoint::decode(&bytes)?;
            let (height, batch) = (c.height, c.batch);
            if height > target {
                return Err(ProverError::Store(format!(
                    "checkpoint at block {height} is past the last batch's block {target}"
                )));
            }
            let job = self.jobs.job(batch)?.ok_or_else(|| {
                ProverError::Store(format!(
                    "checkpoint names batch {batch}, which is not queued"
                ))
            })?;
            let outputs = state_transition::BatchOutputs::decode(&job.outputs)
                .filter(|o| o.last_block == height)
                .ok_or_else(|| {
                    ProverError::Store(format!("batch {batch} does not end at block {height}"))
                })?;
            // The root covers accounts and storage; code and block hashes
            // are checked against their own hashes.
            if let Some(bad) = c
                .state
                .codes
                .iter()
                .find(|(hash, code)| alloy_primitives::keccak256(code) != **hash)
            {
                return Err(ProverError::Store(format!(
                    "checkpoint code {} is altered",
                    bad.0
                )));
            }
            let block = self.source.block(height)?;
            if c.state.block_hashes.get(&height) != Some(&block.hash) {
                return Err(ProverError::Store(format!(
                    "checkpoint does not hold block {height}'s hash"
                )));
            }
            let state = ProverState::new(c.state, height);
            if state.root() != outputs.new_state_root {
                return Err(ProverError::Store(format!(
                    "checkpoint state root {} is not batch {batch}'s {}",
                    state.root(),
                    outputs.new_state_root
                )));
            }
            Ok(Some((state, block)))
        };
        match attempt() {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "prover checkpoint not used; replaying from genesis");
                None
            }
        }
    }

    fn save_checkpoint(&mut self, batch: u64) {
        let Some((store, every)) = self.checkpoints.clone() else {
            return;
        };
        if self.last_checkpoint.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        let Some(state) = &self.state else {
            return;
        };
        let started = Instant::now();
        let bytes = checkpoint::encode(state.memory(), state.height(), batch);
        match store.save(&bytes) {
            Ok(()) => {
                tracing::info!(
                    height = state.height(),
                    bytes = bytes.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "prover checkpoint saved"
                );
                self.last_checkpoint = Some(Instant::now());
            }
            Err(e) => tracing::warn!(error = %e, "prover checkpoint not saved"),
        }
    }

    /// Rebuilds the prover's state at the end of the last cut batch by
    /// re-executing the chain from the checkpoint, or from genesis (after a
    /// start, or an error).
    fn state(&mut self) -> Result<&mut ProverState, ProverError> {
        if self.state.is_none() {
            let target = self.jobs.last_cut()?.map_or(0, |(_, last)| last);
            let started = Instant::now();
            self.resumed = false;
            let (mut state, mut parent) = match self.resume_point(target) {
                Some(found) => {
                    self.resumed = true;
                    found
                }
                None => {
                    let mut genesis = self.genesis.clone();
                    let parent = self.source.block(0)?;
                    genesis.record_block_hash(0, parent.hash);
                    (ProverState::new(genesis, 0), parent)
                }
            };
            let from = state.height();
            for n in from + 1..=target {
                let block = self.source.block(n)?;
                state.replay(&self.chain, &parent.header, &block)?;
                parent = block;
            }
            tracing::info!(
                from,
                to = target,
                ms = started.elapsed().as_millis() as u64,
                "prover state rebuilt"
            );
            self.state = Some(state);
        }
        Ok(self.state.as_mut().expect("just set"))
    }

    /// Waits until cutting may be due again: the chain grew past the head
    /// last looked at, or the oldest waiting block reached `max_wait`. At
    /// most [`IDLE_WAKE`], so a stop is noticed. `false`: the source cannot
    /// tell of new heads, and nothing was waited for.
    pub fn wait_for_work(&self) -> bool {
        let timeout = match self.pending_since {
            Some(since) => self.policy.max_wait.saturating_sub(since.elapsed()),
            None => IDLE_WAKE,
        };
        self.source
            .wait_past(self.seen_head, timeout.min(IDLE_WAKE))
    }

    /// Cuts the next batch if one is due; returns its number.
    pub fn cut_if_due(&mut self) -> Result<Option<u64>, ProverError> {
        let result = self.try_cut();
        if let Err(e) = &result {
            // The state may be ahead of the queue: rebuild it next time, and
            // not from a checkpoint it was resumed from (a checkpoint whose
            // root matched can still be wrong in what the root does not
            // cover), unless the failure was only the chain being unreadable.
            if self.resumed && !matches!(e, ProverError::Chain(_)) {
                tracing::warn!(error = %e, "cutting failed after resuming from the checkpoint; it will not be used again");
                self.distrust_checkpoint = true;
            }
            self.state = None;
            self.waiting.clear();
        }
        result
    }

    fn try_cut(&mut self) -> Result<Option<u64>, ProverError> {
        let head = self.source.head()?;
        self.seen_head = head;
        let (last_batch, last_block) = self.jobs.last_cut()?.unwrap_or((0, 0));
        let pending = head.saturating_sub(last_block);
        if pending == 0 {
            self.pending_since = None;
            return Ok(None);
        }
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        self.fetch_waiting(last_block, pending.min(self.policy.max_blocks))?;
        let blocks = &self.waiting;
        let full = pending >= self.policy.max_blocks
            || self
                .policy
                .model
                .lower_bound(tx_count(blocks), gas_used(blocks))
                >= self.policy.max_cycles;
        if !full && since.elapsed() < self.policy.max_wait {
            return Ok(None);
        }
        let number = last_batch + 1;
        let started = Instant::now();
        let blocks = std::mem::take(&mut self.waiting);
        let (prepared, encoded, outputs, shape) = self.witness_within_budget(number, &blocks)?;
        let last = outputs.last_block;
        // Blocks left over wait for the next batch, already read.
        self.waiting = blocks
            .into_iter()
            .skip_while(|b| b.header.number <= last)
            .collect();
        self.state()?.commit(prepared);
        let job = Job {
            batch_number: number,
            first_block: last_block + 1,
            last_block: last,
            outputs: outputs.encode().into(),
            state: JobState::Queued { not_before_ms: 0 },
            attempts: 0,
            last_error: None,
            created_ms: unix_ms(),
        };
        self.jobs.insert(&job, &encoded)?;
        self.pending_since = (head > last).then(Instant::now);
        self.save_checkpoint(number);
        tracing::info!(
            batch = number,
            first_block = job.first_block,
            last_block = last,
            transactions = shape.transactions,
            gas_used = shape.gas_used,
            witness_bytes = encoded.len(),
            estimated_cycles = self.policy.model.estimate(&shape),
            new_state_root = %outputs.new_state_root,
            ms = started.elapsed().as_millis() as u64,
            "batch cut"
        );
        Ok(Some(number))
    }

    /// Makes `waiting` the `count` blocks after `last_cut`, reading only
    /// those it does not hold yet (the cutter looks at every new head, and
    /// the budget check needs the blocks' transactions and gas).
    fn fetch_waiting(&mut self, last_cut: u64, count: u64) -> Result<(), ProverError> {
        if self
            .waiting
            .first()
            .is_some_and(|b| b.header.number != last_cut + 1)
        {
            self.waiting.clear();
        }
        self.waiting.truncate(count as usize);
        let have = self.waiting.len() as u64;
        for n in last_cut + 1 + have..=last_cut + count {
            self.waiting.push(self.source.block(n)?);
        }
        Ok(())
    }

    /// Witnesses the longest prefix of `blocks` whose estimated cycles fit
    /// the budget (at least one block), and runs the program natively on
    /// it: a witness it refuses is a bug to report now, not after minutes
    /// of proving.
    fn witness_within_budget(
        &mut self,
        number: u64,
        blocks: &[ChainBlock],
    ) -> Result<Witnessed, ProverError> {
        let audit = self.audit.head();
        let (chain, source, policy) = (self.chain.clone(), self.source.clone(), self.policy);
        // The longest prefix whose lower bound fits (no witness needed for
        // that), then shorter while the full estimate does not.
        let mut take = (1..=blocks.len())
            .take_while(|&n| {
                let prefix = &blocks[..n];
                policy.model.lower_bound(tx_count(prefix), gas_used(prefix)) <= policy.max_cycles
            })
            .last()
            .unwrap_or(1);
        loop {
            let batch = &blocks[..take];
            let prepared = self
                .state()?
                .prepare_batch(&chain, number, batch, audit, |n| {
                    source.block(n).map(|b| b.header)
                })?;
            let outputs = execute_batch(&prepared.witness)?;
            let encoded = prepared.witness.encode();
            let shape = BatchShape::of(&prepared.witness, encoded.len(), gas_used(batch));
            let estimate = policy.model.estimate(&shape);
            if estimate <= policy.max_cycles || take == 1 {
                if estimate > policy.max_cycles {
                    tracing::warn!(
                        block = batch[0].header.number,
                        estimated_cycles = estimate,
                        max_cycles = policy.max_cycles,
                        "one block is over the batch cycle budget; it is cut alone"
                    );
                }
                return Ok((prepared, encoded, outputs, shape));
            }
            // Shrink in proportion to the overshoot; the estimate is close
            // to linear in the blocks taken.
            let fit = (take as u128 * policy.max_cycles as u128 / estimate as u128) as usize;
            take = fit.clamp(1, take - 1);
        }
    }
}

/// A batch witnessed within the budget: the prepared batch, its encoded
/// witness (what is queued), its outputs and its shape.
type Witnessed = (
    PreparedBatch,
    Vec<u8>,
    state_transition::BatchOutputs,
    BatchShape,
);

fn tx_count(blocks: &[ChainBlock]) -> u64 {
    blocks.iter().map(|b| b.transactions.len() as u64).sum()
}

fn gas_used(blocks: &[ChainBlock]) -> u64 {
    blocks.iter().map(|b| b.header.gas_used).sum()
}
