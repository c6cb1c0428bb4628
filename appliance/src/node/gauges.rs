//! The gauges a scrape reads from the running node's state: the pool, the
//! chain heads, the audit writer, the proving lag and queue, the data keys,
//! the data directory's free space and the settlement signer's balance. Set at
//! each scrape (see `telemetry::Sampler`), so they are never stale; the
//! counters and histograms are recorded where things happen instead.

use crate::proving_status::ProvingLag;
use audit::Trail;
use encryption::Cipher;
use sequencer::Sequencer;
use std::{
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
};

/// What the gauges are read from, once the node is unsealed and open.
pub struct Parts {
    /// The chain.
    pub sequencer: Arc<Sequencer>,
    /// The audit trail.
    pub trail: Trail,
    /// The proving lag, when the node proves.
    pub proving: Option<ProvingLag>,
    /// The data keys, when encrypted.
    pub cipher: Option<Arc<Cipher>>,
    /// The settlement bridge's status, when settling.
    pub settlement: Option<Arc<Mutex<gateway_bridge::BridgeStatus>>>,
    /// The data directory (its file system's free space).
    pub data_dir: PathBuf,
}

/// The node's gauges; until [`NodeGauges::open`] only `prividium_sealed`.
#[derive(Default)]
pub struct NodeGauges {
    parts: OnceLock<Parts>,
}

impl NodeGauges {
    /// The node is open: read from `parts` from now on.
    pub fn open(&self, parts: Parts) {
        let _ = self.parts.set(parts);
    }
}

impl telemetry::Sampler for NodeGauges {
    fn sample(&self) {
        let Some(p) = self.parts.get() else {
            metrics::gauge!("prividium_sealed").set(1.0);
            return;
        };
        metrics::gauge!("prividium_sealed").set(0.0);
        let seq = &p.sequencer;
        let produced = seq.produced_number();
        let derived = seq.head().number;
        metrics::gauge!("prividium_up").set(if seq.is_running() { 1.0 } else { 0.0 });
        metrics::gauge!("prividium_mempool_transactions").set(seq.pool_size() as f64);
        metrics::gauge!("prividium_block_height", "stage" => "produced").set(produced as f64);
        metrics::gauge!("prividium_block_height", "stage" => "derived").set(derived as f64);
        metrics::gauge!("prividium_derive_lag_blocks").set(produced.saturating_sub(derived) as f64);
        metrics::gauge!("prividium_producer_heartbeat_age_seconds")
            .set(seq.producer_heartbeat_age().as_secs_f64());

        let a = p.trail.log().stats();
        metrics::gauge!("prividium_audit_queue_events").set(a.queued as f64);
        metrics::counter!("prividium_audit_committed_events_total").absolute(a.committed);
        metrics::counter!("prividium_audit_refused_events_total").absolute(a.refused);
        metrics::gauge!("prividium_audit_failing").set(if a.failing { 1.0 } else { 0.0 });
        metrics::gauge!("prividium_audit_commit_waiting_seconds")
            .set(a.commit_waiting_ms as f64 / 1_000.0);

        match crate::disk::free_space(&p.data_dir) {
            Ok((free, total)) => {
                metrics::gauge!("prividium_data_dir_free_bytes").set(free as f64);
                metrics::gauge!("prividium_data_dir_capacity_bytes").set(total as f64);
            }
            Err(e) => tracing::warn!(error = %e, "data directory free space unreadable"),
        }
        let balance = p
            .settlement
            .as_ref()
            .and_then(|s| s.lock().ok().and_then(|s| s.signer_balance_wei));
        if let Some(wei) = balance {
            // Ether as a float: precise enough for an alert threshold.
            metrics::gauge!("prividium_settlement_signer_balance_ether")
                .set(wei.saturating_to::<u128>() as f64 / 1e18);
        }

        if let Some(c) = &p.cipher {
            let (version, used) = c.sealed_total();
            metrics::gauge!("prividium_data_key_version").set(f64::from(version));
            metrics::gauge!("prividium_data_key_sealed_records").set(used as f64);
        }

        if let Some(lag) = &p.proving {
            match lag.read() {
                Ok(r) => {
                    for (stage, n) in [
                        ("cut", Some(r.cut_block)),
                        ("proven", Some(r.proven_block)),
                        ("exported", Some(r.exported_block)),
                        ("settled", r.settled_block),
                    ] {
                        if let Some(n) = n {
                            metrics::gauge!("prividium_block_height", "stage" => stage)
                                .set(n as f64);
                        }
                    }
                    metrics::gauge!("prividium_unexported_batches")
                        .set(r.unexported_batches as f64);
                    metrics::gauge!("prividium_prover_queue_batches", "state" => "queued")
                        .set(r.queued_batches as f64);
                    metrics::gauge!("prividium_prover_queue_batches", "state" => "proving")
                        .set(r.proving_batches as f64);
                    metrics::gauge!("prividium_oldest_unproven_block_age_seconds")
                        .set(r.oldest_unproven_wait_secs as f64);
                }
                Err(e) => tracing::warn!(error = %e, "proving lag unreadable for metrics"),
            }
        }
    }
}
