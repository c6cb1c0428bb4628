//! The proving lag as operators see it: on `/health` and, while proving is
//! behind, in the log once a minute.
//!
//! Counted in blocks (produced, cut, proven, exported, settled) plus the
//! seconds the oldest unproven block has waited, so "proofs keep pace" is a
//! number an alert can watch rather than a guess from file dates.

use prover::{ProvingProgress, QueueView};
use sequencer::Sequencer;
use serde::Serialize;
use std::{sync::Arc, time::Duration};

/// What `/health` and the log need to say how far proving is behind.
#[derive(Clone)]
pub struct ProvingLag {
    jobs: Arc<dyn QueueView>,
    sequencer: Arc<Sequencer>,
    settlement: Option<Arc<std::sync::Mutex<gateway_bridge::BridgeStatus>>>,
}

/// One reading.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LagReading {
    /// Last block produced.
    pub produced_block: u64,
    /// Last block in a batch that was cut and queued for proving.
    pub cut_block: u64,
    /// Last block up to which every batch is proven.
    pub proven_block: u64,
    /// Last block of the last batch whose proof was written for export.
    pub exported_block: u64,
    /// Last block of the last batch the settlement contract holds (null
    /// when not settling).
    pub settled_block: Option<u64>,
    /// Batches cut and not yet exported.
    pub unexported_batches: u64,
    /// Batches waiting for a worker: the proving queue's depth.
    pub queued_batches: u64,
    /// Batches a worker holds now.
    pub proving_batches: u64,
    /// The first block not yet proven, if any.
    pub oldest_unproven_block: Option<u64>,
    /// How long ago it was produced (0 when every block is proven).
    pub oldest_unproven_wait_secs: u64,
}

impl ProvingLag {
    /// Reads from the node's job store (its ledger, with a shared queue).
    pub fn new(
        jobs: Arc<dyn QueueView>,
        sequencer: Arc<Sequencer>,
        settlement: Option<Arc<std::sync::Mutex<gateway_bridge::BridgeStatus>>>,
    ) -> Self {
        Self {
            jobs,
            sequencer,
            settlement,
        }
    }

    /// Reads the queue and the chain (blocking: call off the async workers).
    pub fn read(&self) -> Result<LagReading, String> {
        let p = ProvingProgress::read(self.jobs.as_ref()).map_err(|e| e.to_string())?;
        let produced = self.sequencer.head().number;
        let settled_batch = self
            .settlement
            .as_ref()
            .and_then(|s| s.lock().ok().map(|s| s.settled_batch));
        let settled_block = match settled_batch {
            None => None,
            Some(None) | Some(Some(0)) => Some(0),
            Some(Some(b)) => Some(
                self.jobs
                    .job(b)
                    .map_err(|e| e.to_string())?
                    .map_or(0, |j| j.last_block),
            ),
        };
        let oldest = (p.proven_through < produced).then_some(p.proven_through + 1);
        let wait = match oldest {
            None => 0,
            Some(n) => {
                let view = self.sequencer.view().map_err(|e| e.to_string())?;
                let produced_at = view
                    .block(n)
                    .map_err(|e| e.to_string())?
                    .map_or(0, |b| b.header.timestamp);
                unix_secs().saturating_sub(produced_at)
            }
        };
        Ok(LagReading {
            produced_block: produced,
            cut_block: p.cut_through,
            proven_block: p.proven_through,
            exported_block: p.exported_through,
            settled_block,
            unexported_batches: p.unexported_batches,
            queued_batches: p.queued_batches,
            proving_batches: p.proving_batches,
            oldest_unproven_block: oldest,
            oldest_unproven_wait_secs: wait,
        })
    }

    /// Logs a reading every `every` while some block is unproven, and once
    /// when proving has caught up again.
    pub fn spawn_log(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut behind = false;
            loop {
                tick.tick().await;
                let lag = self.clone();
                let Ok(reading) = tokio::task::spawn_blocking(move || lag.read()).await else {
                    return;
                };
                match reading {
                    Ok(r) if r.oldest_unproven_block.is_some() => {
                        behind = true;
                        tracing::info!(
                            produced = r.produced_block,
                            cut = r.cut_block,
                            proven = r.proven_block,
                            exported = r.exported_block,
                            settled = r.settled_block,
                            unexported_batches = r.unexported_batches,
                            oldest_unproven_wait_secs = r.oldest_unproven_wait_secs,
                            "proving lag"
                        );
                    }
                    Ok(r) => {
                        if std::mem::take(&mut behind) {
                            tracing::info!(proven = r.proven_block, "proving caught up");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "proving lag unreadable"),
                }
            }
        })
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl rpc::StageReport for ProvingLag {
    fn report(&self) -> Result<serde_json::Value, String> {
        self.read()
            .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
    }
}
