//! Cuts the chain into batches and witnesses each one.
//!
//! Witnessing is sequential (each batch starts from the previous one's
//! state), proving is not: the cutter queues a job per batch with its
//! witness, and any number of workers prove them.

use super::{
    checkpoint::{self, CheckpointStore},
    jobs::{Job, JobState, JobStore},
    unix_ms, AuditSource, ChainSource,
};
use crate::{ChainBlock, ProverError, ProverState};
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
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_blocks: 100,
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Cuts batches from a chain source into a job store.
pub struct Cutter {
    chain: ChainSpec,
    genesis: MemoryState,
    source: Arc<dyn ChainSource>,
    jobs: Arc<dyn JobStore>,
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
        jobs: Arc<dyn JobStore>,
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
            resumed: false,
            distrust_checkpoint: false,
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
        }
        result
    }

    fn try_cut(&mut self) -> Result<Option<u64>, ProverError> {
        let head = self.source.head()?;
        let (last_batch, last_block) = self.jobs.last_cut()?.unwrap_or((0, 0));
        let pending = head.saturating_sub(last_block);
        if pending == 0 {
            self.pending_since = None;
            return Ok(None);
        }
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if pending < self.policy.max_blocks && since.elapsed() < self.policy.max_wait {
            return Ok(None);
        }
        let last = last_block + pending.min(self.policy.max_blocks);
        let number = last_batch + 1;
        let blocks = (last_block + 1..=last)
            .map(|n| self.source.block(n))
            .collect::<Result<Vec<ChainBlock>, _>>()?;
        let audit = self.audit.head();
        let chain = self.chain.clone();
        let source = self.source.clone();
        let started = Instant::now();
        let witness = self
            .state()?
            .witness_batch(&chain, number, &blocks, audit, |n| {
                source.block(n).map(|b| b.header)
            })?;
        // Run the program natively first: a witness it refuses is a bug to
        // report now, not after minutes of proving.
        let outputs = execute_batch(&witness)?;
        let encoded = witness.encode();
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
            witness_bytes = encoded.len(),
            new_state_root = %outputs.new_state_root,
            ms = started.elapsed().as_millis() as u64,
            "batch cut"
        );
        Ok(Some(number))
    }
}
