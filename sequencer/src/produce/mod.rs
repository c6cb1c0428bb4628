//! Block production.
//!
//! Input: the mempool's executable transactions, every block time. Output:
//! a sealed block appended (fsync'd) to the block log, the producer's state
//! advanced, and the executed block handed to the derive stage. Nothing is
//! reported included before the log append returns.

mod heartbeat;
mod reseal;

pub(crate) use heartbeat::Heartbeat;
pub(crate) use reseal::ResealControl;

use crate::{
    hot::{ProducedHead, SharedHot},
    mempool::Mempool,
    wal::{BlockLog, BlockLogWriter, BlockRecord},
    SequencerConfig,
};
use alloy_primitives::Address;
use parking_lot::Mutex;
use state_transition::{BlockContext, BlockExecutor, BlockOutcome, TxRejection};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::SyncSender,
        Arc,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

pub(crate) struct Producer {
    pub(crate) config: SequencerConfig,
    pub(crate) hot: SharedHot,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    pub(crate) log: BlockLog,
    pub(crate) to_derive: SyncSender<BlockOutcome>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) beneficiary: Address,
    pub(crate) reseal: Arc<ResealControl>,
    pub(crate) heartbeat: Arc<Heartbeat>,
}

impl Producer {
    /// Runs until `stop` is set; returns the first fatal error.
    pub(crate) fn run(mut self) -> Result<(), crate::SequencerError> {
        let mut next_tick = Instant::now() + self.config.block_time;
        let mut last_slice = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            self.heartbeat.beat();
            let now = Instant::now();
            if now < next_tick {
                if self.reseal_slice()? {
                    last_slice = Instant::now();
                    continue;
                }
                std::thread::sleep((next_tick - now).min(Duration::from_millis(5)));
                continue;
            }
            next_tick += self.config.block_time;
            if next_tick < now {
                // Fell behind (a slow block): don't burst to catch up.
                next_tick = now + self.config.block_time;
            }
            self.produce_one()?;
            // Under constant load there is no idle time: a re-seal still
            // gets a slice a second.
            if last_slice.elapsed() > Duration::from_secs(1) && self.reseal_slice()? {
                last_slice = Instant::now();
            }
        }
        Ok(())
    }

    fn next_context(&self, parent: &ProducedHead) -> BlockContext {
        next_context(&self.config.chain, parent, self.beneficiary)
    }

    /// Builds, logs and publishes one block (or nothing when idle).
    pub(crate) fn produce_one(&mut self) -> Result<(), crate::SequencerError> {
        let started = Instant::now();
        let candidates = {
            // Pool before hot, everywhere (see Sequencer::pending_nonce).
            let pool = self.mempool.lock();
            let hot = self.hot.read();
            pool.best(self.config.max_block_txs, |a| hot.nonce_and_balance(a).0)
        };
        if candidates.is_empty() && !self.config.empty_blocks {
            return Ok(());
        }
        let (outcome, dropped, admitted) = {
            let hot = self.hot.read();
            let ctx = self.next_context(&hot.head);
            let mut exec = BlockExecutor::new(&self.config.chain, ctx, &hot.state);
            exec.reserve(candidates.len());
            let mut dropped = Vec::new();
            let mut admitted = Vec::with_capacity(candidates.len());
            for tx in candidates {
                if exec.gas_left() < 21_000 {
                    break;
                }
                match exec.execute_guarded(tx.envelope.clone(), tx.sender, tx.guard.0.as_ref()) {
                    // Contracts get their owner before the next transaction
                    // of this block can reach them.
                    Ok(executed) => {
                        if let (Some(g), false) = (&tx.guard.0, executed.created.is_empty()) {
                            g.included(&executed.created);
                        }
                        admitted.push(tx.admitted);
                    }
                    Err(TxRejection::BlockGasExhausted) => continue,
                    Err(e) if e.is_fatal() => {
                        return Err(crate::SequencerError::Execution(e.to_string()))
                    }
                    Err(e) => {
                        tracing::info!(hash = %tx.hash, reason = %e, "dropping transaction at execution");
                        dropped.push(tx.hash);
                    }
                }
            }
            (exec.finish(), dropped, admitted)
        };
        if !dropped.is_empty() {
            metrics::counter!("prividium_transactions_dropped_total")
                .increment(dropped.len() as u64);
            let mut pool = self.mempool.lock();
            for hash in &dropped {
                pool.remove_with_descendants(hash);
            }
        }
        if outcome.txs.is_empty() && !self.config.empty_blocks {
            return Ok(());
        }
        let record = BlockRecord {
            number: outcome.context.number,
            context: outcome.context.clone(),
            transactions: outcome.txs.iter().map(|t| t.tx.clone()).collect(),
            output_hash: outcome.output_hash,
            block_hash: outcome.header.hash,
        };
        let appending = Instant::now();
        self.log.append(&record)?;
        metrics::histogram!("prividium_block_log_append_seconds")
            .record(appending.elapsed().as_secs_f64());

        let senders: BTreeMap<Address, u64> = {
            let mut hot = self.hot.write();
            hot.state.apply(&outcome.diff);
            hot.state
                .record_block_hash(record.number, record.block_hash);
            hot.head = ProducedHead {
                number: record.number,
                hash: record.block_hash,
                timestamp: outcome.context.timestamp,
                gas_used: outcome.header.header.gas_used,
                base_fee: outcome.context.base_fee,
            };
            outcome
                .txs
                .iter()
                .map(|t| (t.sender, hot.nonce_and_balance(&t.sender).0))
                .collect()
        };
        self.mempool.lock().on_block(senders);
        record_block_metrics(started, &admitted, outcome.header.header.gas_used);
        tracing::debug!(
            number = record.number,
            txs = outcome.txs.len(),
            "block sealed"
        );
        self.to_derive
            .send(outcome)
            .map_err(|_| crate::SequencerError::Stopped)?;
        Ok(())
    }
}

/// A block is durable and applied: what it took and what it held. An
/// inclusion is counted from admission to the block log's fsync, which is
/// when a receipt can first be seen.
fn record_block_metrics(started: Instant, admitted: &[Instant], gas_used: u64) {
    metrics::counter!("prividium_blocks_produced_total").increment(1);
    metrics::histogram!("prividium_block_production_seconds")
        .record(started.elapsed().as_secs_f64());
    metrics::histogram!("prividium_block_transactions").record(admitted.len() as f64);
    metrics::histogram!("prividium_block_gas_used").record(gas_used as f64);
    let inclusion = metrics::histogram!("prividium_inclusion_latency_seconds");
    for at in admitted {
        inclusion.record(at.elapsed().as_secs_f64());
    }
}

/// The context of the block that follows `parent` (also used to pre-flight
/// transactions at admission).
pub(crate) fn next_context(
    chain: &state_transition::ChainSpec,
    parent: &ProducedHead,
    beneficiary: Address,
) -> BlockContext {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    BlockContext::child_of(chain, parent, now.max(parent.timestamp), beneficiary)
}
