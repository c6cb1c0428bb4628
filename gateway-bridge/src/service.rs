//! The bridge service: settles proven batches in order, one transaction
//! each, and resumes from what the contract holds after any restart.

use crate::{
    client::{Mined, SettlementClient},
    egress::Commitment,
    source::{ProvenBatch, ProvenBatches},
    BridgeError,
};
use alloy_primitives::U256;
use serde::Serialize;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::watch;

/// Told about every settled batch (the appliance records it in the audit log).
pub trait SettlementObserver: Send + Sync {
    /// Batch `batch` was committed by `mined`.
    fn settled(&self, batch: &ProvenBatch, mined: &Mined);
}

impl SettlementObserver for () {
    fn settled(&self, _: &ProvenBatch, _: &Mined) {}
}

/// Bridge settings.
#[derive(Debug, Clone, Copy)]
pub struct BridgeConfig {
    /// The private chain's id.
    pub chain_id: u64,
    /// How often to look for newly proven batches.
    pub poll: Duration,
    /// Longest pause after consecutive failures.
    pub max_backoff: Duration,
}

/// What the bridge last saw, for `/health` and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BridgeStatus {
    /// Last batch the contract holds for this chain.
    pub settled_batch: Option<u64>,
    /// Whether the last attempt to reach the settlement node worked.
    pub reachable: bool,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// What the submitting key holds (wei), read at most every
    /// [`BALANCE_EVERY`]: an operator tops it up before commits stall.
    pub signer_balance_wei: Option<U256>,
}

/// How often the bridge reads its signer's balance.
pub(crate) const BALANCE_EVERY: Duration = Duration::from_secs(30);

/// A running bridge.
#[derive(Debug)]
pub struct Bridge {
    status: Arc<Mutex<BridgeStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Bridge {
    /// Starts settling `source`'s batches through `client`.
    pub fn spawn<C: SettlementClient + 'static>(
        client: C,
        source: Arc<dyn ProvenBatches>,
        observer: Arc<dyn SettlementObserver>,
        config: BridgeConfig,
    ) -> Self {
        let status = Arc::new(Mutex::new(BridgeStatus::default()));
        let (stop, mut stopped) = watch::channel(false);
        let shared = status.clone();
        let task = tokio::spawn(async move {
            // Settling (1) or waiting for the next proof (0): with the
            // prover's stages on the same scrape, where a batch waits.
            let busy = metrics::gauge!("prividium_stage_busy", "stage" => "settlement");
            let mut failures = 0u32;
            let mut agreed = None;
            let mut balance_read: Option<std::time::Instant> = None;
            loop {
                if balance_read.is_none_or(|t| t.elapsed() >= BALANCE_EVERY) {
                    balance_read = Some(std::time::Instant::now());
                    match client.signer_balance().await {
                        Ok(b) => set(&shared, |s| s.signer_balance_wei = b),
                        Err(e) => {
                            tracing::warn!(error = %e, "settlement signer balance unreadable")
                        }
                    }
                }
                let step = settle_next(
                    &client,
                    source.as_ref(),
                    observer.as_ref(),
                    &config,
                    &mut agreed,
                );
                busy.set(1.0);
                let stepped = step.await;
                busy.set(0.0);
                let pause = match stepped {
                    Ok(step) => {
                        failures = 0;
                        let (settled, pause) = match step {
                            // More may be waiting: look again at once.
                            Step::Settled(n) => (n, Duration::ZERO),
                            Step::Idle(n) => (n, config.poll),
                        };
                        set(&shared, |s| {
                            s.settled_batch = Some(settled);
                            s.reachable = true;
                            s.last_error = None;
                        });
                        pause
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if e.is_retryable() {
                            tracing::warn!(error = %e, failures, "settlement failed; will retry");
                        } else {
                            tracing::error!(
                                error = %e,
                                failures,
                                "settlement stopped on something an operator must fix; \
                                 checking again after the backoff"
                            );
                        }
                        set(&shared, |s| {
                            s.reachable = !matches!(e, BridgeError::Rpc(_));
                            s.last_error = Some(e.to_string());
                        });
                        backoff(failures, config.poll, config.max_backoff)
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Self { status, stop, task }
    }

    /// The latest status.
    pub fn status(&self) -> BridgeStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A handle for reading the status after the bridge has been moved.
    pub fn status_handle(&self) -> Arc<Mutex<BridgeStatus>> {
        self.status.clone()
    }

    /// Stops after the current step (a transaction being sent is finished
    /// or abandoned; either way the next start resumes from the contract).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn set(status: &Mutex<BridgeStatus>, f: impl FnOnce(&mut BridgeStatus)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

/// Doubling from the poll interval up to `max`.
fn backoff(failures: u32, poll: Duration, max: Duration) -> Duration {
    let factor = 1u32 << failures.min(16).saturating_sub(1);
    poll.saturating_mul(factor).min(max)
}

enum Step {
    Settled(u64),
    Idle(u64),
}

/// One step: read where the contract is, settle the next batch if proven.
async fn settle_next<C: SettlementClient>(
    client: &C,
    source: &dyn ProvenBatches,
    observer: &dyn SettlementObserver,
    config: &BridgeConfig,
    agreed: &mut Option<u64>,
) -> Result<Step, BridgeError> {
    let chain = client
        .chain(config.chain_id)
        .await?
        .ok_or(BridgeError::UnknownChain(config.chain_id))?;
    if chain.last_batch > 0 && *agreed != Some(chain.last_batch) {
        check_tip(client, source, config.chain_id, chain.last_batch).await?;
        *agreed = Some(chain.last_batch);
    }
    let next = chain.last_batch + 1;
    let Some(batch) = source.get(next)? else {
        return Ok(Step::Idle(chain.last_batch));
    };
    let diverged = |reason: String| BridgeError::Diverged {
        batch: next,
        reason,
    };
    let o = &batch.outputs;
    if o.chain_id != config.chain_id {
        return Err(diverged(format!("outputs are for chain {}", o.chain_id)));
    }
    // The commitment binds the previous state root and block hash, so this
    // one check keeps batches contiguous in state and in blocks.
    let prev = o.settled().prev_commitment;
    if prev != chain.last_commitment {
        return Err(diverged(format!(
            "starts from state commitment {prev} (root {}), the contract holds {}",
            o.prev_state_root, chain.last_commitment
        )));
    }
    if batch.program_id != chain.program_id {
        return Err(diverged(format!(
            "proven with program {}, the chain is registered with {} (update it with setProgram)",
            batch.program_id, chain.program_id
        )));
    }
    let commitment = Commitment::new(&batch.outputs, &batch.proof);
    let mined = client.commit(&commitment).await?;
    // Settled by us: no need to check it against our own files next step.
    *agreed = Some(next);
    tracing::info!(
        batch = next,
        blocks = %format!("{}..={}", o.first_block, o.last_block),
        new_state_root = %o.new_state_root,
        settlement_tx = %mined.tx_hash,
        settlement_block = mined.block_number,
        "batch settled"
    );
    observer.settled(&batch, &mined);
    Ok(Step::Settled(next))
}

/// Refuses to build on a settled tip that is not this appliance's own
/// batch (a restored or re-initialised data directory, a second appliance
/// with the same chain id).
async fn check_tip<C: SettlementClient>(
    client: &C,
    source: &dyn ProvenBatches,
    chain_id: u64,
    n: u64,
) -> Result<(), BridgeError> {
    let settled = client.batch(chain_id, n).await?.ok_or_else(|| {
        BridgeError::Rpc(format!("the contract lists batch {n} but returns none"))
    })?;
    let diverged = |reason: String| BridgeError::Diverged { batch: n, reason };
    match source.get(n)? {
        Some(local) if local.outputs.digest() == settled.outputs_digest => Ok(()),
        Some(local) => Err(diverged(format!(
            "settled outputs {} differ from this appliance's {}",
            settled.outputs_digest,
            local.outputs.digest()
        ))),
        None => Err(diverged(
            "settled on the contract but not proven here (restored data directory?)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_poll_interval_to_the_cap() {
        let poll = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        assert_eq!(backoff(1, poll, max), poll);
        assert_eq!(backoff(2, poll, max), poll * 2);
        assert_eq!(backoff(4, poll, max), poll * 8);
        assert_eq!(backoff(40, poll, max), max);
    }
}
