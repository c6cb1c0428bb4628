//! Wires the gateway bridge into the node: `[settlement]` settings, the
//! sealed settlement key, and the audit record of every settled batch.

use crate::audit_trail::record_batch;
use crate::data_dir::DataDir;
use alloy_primitives::Address;
use anyhow::{Context, Result};
use audit::action;
use audit::Trail;
use gateway_bridge::{
    Bridge, BridgeConfig, EvmSettlement, Mined, ProofCheck, ProofsDir, ProvenBatch, SendPolicy,
    SettlementObserver,
};
use serde::Deserialize;
use serde_json::json;
use std::{sync::Arc, time::Duration};
use storage::SharedCipher;

/// `[settlement]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    /// Settle proven batches.
    #[serde(default)]
    pub enabled: bool,
    /// JSON-RPC URL of the settlement chain (the ZKsync Gateway, or any EVM chain).
    #[serde(default)]
    pub rpc_url: String,
    /// The PrividiumSettlement contract.
    #[serde(default)]
    pub contract: Option<Address>,
    /// How often to look for newly proven batches (ms).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Longest wait for one RPC answer (s).
    #[serde(default = "default_rpc_timeout")]
    pub rpc_timeout_secs: u64,
    /// How long a transaction may stay unmined before it is re-sent with
    /// higher fees (s).
    #[serde(default = "default_mine_timeout")]
    pub mine_timeout_secs: u64,
    /// Re-verify each proof before settling it (recommended: `proofs/` is
    /// plain files).
    #[serde(default = "default_true")]
    pub verify_proofs: bool,
}

fn default_poll_ms() -> u64 {
    2_000
}
fn default_rpc_timeout() -> u64 {
    15
}
fn default_mine_timeout() -> u64 {
    120
}
fn default_true() -> bool {
    true
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            rpc_url: String::new(),
            contract: None,
            poll_ms: default_poll_ms(),
            rpc_timeout_secs: default_rpc_timeout(),
            mine_timeout_secs: default_mine_timeout(),
            verify_proofs: true,
        }
    }
}

impl SettlementConfig {
    /// Every problem with these settings (`proving`: whether proofs are made).
    pub fn problems(&self, proving: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.enabled {
            return problems;
        }
        if !proving {
            problems.push("settlement needs proofs: enable [prover] with a proving backend".into());
        }
        if !(self.rpc_url.starts_with("http://") || self.rpc_url.starts_with("https://")) {
            problems.push(format!(
                "settlement.rpc_url = {:?}: an http(s) URL is required",
                self.rpc_url
            ));
        }
        if self.contract.is_none() {
            problems.push("settlement.contract is required".into());
        }
        problems
    }

    /// How the bridge sends.
    pub fn send_policy(&self) -> SendPolicy {
        SendPolicy {
            rpc_timeout: Duration::from_secs(self.rpc_timeout_secs.max(1)),
            mine_timeout: Duration::from_secs(self.mine_timeout_secs.max(1)),
            ..SendPolicy::default()
        }
    }
}

/// Records each settled batch: its number, roots and the settlement
/// transaction (public data only, like what was sent).
struct AuditObserver(Trail);

impl SettlementObserver for AuditObserver {
    fn settled(&self, batch: &ProvenBatch, mined: &Mined) {
        let extra = json!({
            "settlement_tx": mined.tx_hash,
            "settlement_block": mined.block_number,
        });
        record_batch(&self.0, action::SETTLEMENT_SUBMITTED, &batch.outputs, extra);
    }
}

/// Starts settling the batches the prover writes under `dir`.
pub fn start(
    dir: &DataDir,
    settings: &SettlementConfig,
    chain_id: u64,
    cipher: Option<SharedCipher>,
    trail: Trail,
) -> Result<Bridge> {
    let signer = gateway_bridge::signer::load_or_create(dir.root(), cipher.as_deref())?;
    let contract = settings
        .contract
        .context("settlement.contract is required")?;
    tracing::info!(
        submitter = %signer.address(),
        %contract,
        rpc = %settings.rpc_url,
        "settlement bridge started"
    );
    let client = EvmSettlement::new(
        &settings.rpc_url,
        contract,
        Some(signer),
        settings.send_policy(),
    )?;
    let check = if settings.verify_proofs {
        ProofCheck::Verify
    } else {
        ProofCheck::Consistency
    };
    Ok(Bridge::spawn(
        client,
        Arc::new(ProofsDir::new(dir.proofs(), check)),
        Arc::new(AuditObserver(trail)),
        BridgeConfig {
            chain_id,
            poll: Duration::from_millis(settings.poll_ms.max(50)),
            max_backoff: Duration::from_secs(60),
        },
    ))
}

/// The bridge's progress as `/health` shows it: public, so no endpoint and
/// no error text (those are in the log).
pub struct SettlementReport(pub Arc<std::sync::Mutex<gateway_bridge::BridgeStatus>>);

impl rpc::StageReport for SettlementReport {
    fn report(&self) -> Result<serde_json::Value, String> {
        let s = self
            .0
            .lock()
            .map_err(|_| "settlement status poisoned".to_owned())?;
        Ok(json!({
            "settled_batch": s.settled_batch,
            "reachable": s.reachable,
            "failing": s.last_error.is_some(),
        }))
    }
}
