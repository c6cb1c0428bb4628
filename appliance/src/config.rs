//! The production configuration file (`prividium up --config FILE`).
//!
//! The file says what the chain is and where its pieces live; unknown keys
//! are rejected by name, and semantic checks report every problem at once.

use crate::chain_files::ChainFile;
use sequencer::{MempoolConfig, SequencerConfig};
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

/// Top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Genesis file (geth-style alloc), read when the data directory is created.
    pub genesis: PathBuf,
    /// Chain rules.
    pub chain: ChainSection,
    /// Block production.
    #[serde(default)]
    pub sequencer: SequencerSection,
    /// JSON-RPC front door.
    pub rpc: RpcSection,
    /// Authentication and policies.
    pub access: AccessSection,
    /// Fair share: requests and calls per principal, role and organization
    /// (default: on, see `access_control::rate`).
    #[serde(default)]
    pub rate_limits: access_control::rate::RateLimitConfig,
    /// Encryption at rest (required: say `provider = "off"` to store plaintext).
    pub encryption: crate::keys::at_rest::EncryptionConfig,
    /// Audit trail (default: SQLite in the data directory, kept forever).
    #[serde(default)]
    pub audit: audit::trail::AuditConfig,
    /// Batching and proving (default: off).
    #[serde(default)]
    pub prover: crate::proving::ProverConfig,
    /// Settlement of proven batches (default: off).
    #[serde(default)]
    pub settlement: crate::settling::SettlementConfig,
    /// The Prometheus scrape endpoint (default: on, 127.0.0.1:9464).
    #[serde(default)]
    pub metrics: telemetry::MetricsConfig,
}

/// `[access]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Cedar policy directory (schema.cedarschema, *.cedar, abi/*.json).
    pub policies_dir: PathBuf,
    /// SHA-256 (hex) of a bootstrap admin API key; the key never sits in config.
    #[serde(default)]
    pub admin_key_sha256: Option<String>,
    /// Domain named in wallet-binding (SIWE) challenges.
    pub siwe_domain: String,
    /// Trusted OIDC issuers.
    #[serde(default)]
    pub oidc: Vec<access_control::authn::oidc::OidcIssuerConfig>,
}

/// `[chain]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// `zero` or `eip1559`.
    #[serde(default = "default_fee_mode")]
    pub fee_mode: String,
    /// First base fee (wei), EIP-1559 mode.
    #[serde(default)]
    pub initial_base_fee: u64,
    /// Block gas limit.
    #[serde(default = "default_gas_limit")]
    pub block_gas_limit: u64,
}

fn default_fee_mode() -> String {
    "zero".into()
}
fn default_gas_limit() -> u64 {
    60_000_000
}

/// `[sequencer]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequencerSection {
    /// Block time (ms), 10–2000.
    pub block_time_ms: u64,
    /// Most transactions per block.
    pub max_block_txs: usize,
    /// Produce blocks while idle.
    pub empty_blocks: bool,
    /// Mempool capacity.
    pub mempool_capacity: usize,
    /// Blocks whose state stays readable (and provable) behind the head;
    /// absent: every block's. Older state is dropped in slices of an eighth.
    pub history_keep_blocks: Option<u64>,
    /// Every Nth derived-store commit is durable (fsync'd); the blocks
    /// between are replayed from the block log after a crash. Fewer blocks
    /// per durable commit: shorter replay, but smaller flushes more often,
    /// which write more in total (each rewrites the hot pages again).
    pub durable_every_blocks: u64,
}

impl Default for SequencerSection {
    fn default() -> Self {
        Self {
            block_time_ms: SequencerConfig::DEFAULT_BLOCK_TIME_MS,
            max_block_txs: SequencerConfig::DEFAULT_MAX_BLOCK_TXS,
            empty_blocks: false,
            mempool_capacity: MempoolConfig::DEFAULT_CAPACITY,
            history_keep_blocks: None,
            durable_every_blocks: SequencerConfig::DEFAULT_DURABLE_EVERY,
        }
    }
}

/// `[rpc]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcSection {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub tls_cert: PathBuf,
    /// PEM private key.
    pub tls_key: PathBuf,
    /// Request body limit (bytes).
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Batch size limit.
    #[serde(default = "default_batch")]
    pub max_batch: usize,
    /// Seconds a polled filter lives without a poll.
    #[serde(default = "default_filter_idle")]
    pub filter_idle_secs: u64,
    /// Filters one principal may hold.
    #[serde(default = "default_filters")]
    pub max_filters_per_principal: usize,
    /// WebSocket connections one principal may hold open.
    #[serde(default = "default_ws")]
    pub max_ws_per_principal: usize,
    /// Subscriptions one WebSocket connection may hold.
    #[serde(default = "default_subscriptions")]
    pub max_subscriptions: usize,
    /// Messages queued for one WebSocket before its reader counts as too
    /// slow and is disconnected.
    #[serde(default = "default_ws_queue")]
    pub ws_send_queue: usize,
}

impl RpcSection {
    /// The front door's limits this section sets.
    pub fn limits(&self) -> rpc::RpcLimits {
        rpc::RpcLimits {
            max_body_bytes: self.max_body_bytes,
            max_batch: self.max_batch,
            filter_idle: std::time::Duration::from_secs(self.filter_idle_secs),
            max_filters_per_principal: self.max_filters_per_principal,
            max_ws_per_principal: self.max_ws_per_principal,
            max_subscriptions: self.max_subscriptions,
            ws_send_queue: self.ws_send_queue,
            ..rpc::RpcLimits::default()
        }
    }
}

fn default_filter_idle() -> u64 {
    300
}
fn default_filters() -> usize {
    64
}
fn default_ws() -> usize {
    16
}
fn default_subscriptions() -> usize {
    64
}
fn default_ws_queue() -> usize {
    1_024
}

fn default_body() -> usize {
    5 * 1024 * 1024
}
fn default_batch() -> usize {
    1_000
}

/// Parse or validation failure; lists every problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {path}:\n  {}", problems.join("\n  "))]
pub struct ConfigError {
    /// File.
    pub path: String,
    /// Each problem, naming the key.
    pub problems: Vec<String>,
}

impl Config {
    /// Parses and validates a TOML document.
    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let config = Self::parse_only(path, text)?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                path: path.into(),
                problems,
            })
        }
    }

    /// Parses a TOML document (unknown keys and bad types are errors)
    /// without the semantic checks, for `doctor`, which reports those
    /// itself and goes on checking what the file names.
    pub fn parse_only(path: &str, text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError {
            path: path.into(),
            problems: vec![e.to_string().trim().replace('\n', "\n  ")],
        })
    }

    /// Every semantic problem, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let config = self;
        let mut problems = Vec::new();
        let s = &config.sequencer;
        if s.history_keep_blocks == Some(0) {
            problems.push(
                "sequencer.history_keep_blocks = 0: keep at least one block (omit it to keep all)"
                    .to_string(),
            );
        }
        let durable = SequencerConfig::DURABLE_EVERY;
        if !durable.contains(&s.durable_every_blocks) {
            problems.push(format!(
                "sequencer.durable_every_blocks = {}: must be within {durable:?}",
                s.durable_every_blocks
            ));
        }
        let block_time = SequencerConfig::BLOCK_TIME_MS;
        if !block_time.contains(&s.block_time_ms) {
            problems.push(format!(
                "sequencer.block_time_ms = {}: must be within {block_time:?}",
                s.block_time_ms
            ));
        }
        if s.max_block_txs == 0 {
            problems.push("sequencer.max_block_txs must be at least 1".into());
        }
        if s.mempool_capacity == 0 {
            problems.push("sequencer.mempool_capacity must be at least 1".into());
        }
        let r = &config.rpc;
        for (key, value) in [
            ("rpc.filter_idle_secs", r.filter_idle_secs as usize),
            ("rpc.max_filters_per_principal", r.max_filters_per_principal),
            ("rpc.max_ws_per_principal", r.max_ws_per_principal),
            ("rpc.max_subscriptions", r.max_subscriptions),
            ("rpc.ws_send_queue", r.ws_send_queue),
        ] {
            if value == 0 {
                problems.push(format!("{key} must be at least 1"));
            }
        }
        if let Err(e) = config.chain_file().spec() {
            problems.push(format!("chain.{e}"));
        }
        if config.chain.block_gas_limit < 21_000 {
            problems.push("chain.block_gas_limit must be at least 21000".into());
        }
        if let Some(h) = &config.access.admin_key_sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(
                    "access.admin_key_sha256 must be 64 hex characters (sha256 of the key)".into(),
                );
            }
        }
        problems.extend(config.rate_limits.problems());
        if let Err(e) = access_control::policy::load_dir(&config.access.policies_dir) {
            problems.extend(
                e.problems
                    .iter()
                    .map(|p| format!("access.policies_dir: {p}")),
            );
        }
        for (i, o) in config.access.oidc.iter().enumerate() {
            if !o.issuer.starts_with("https://") && !o.issuer.starts_with("http://127.0.0.1") {
                problems.push(format!(
                    "access.oidc[{i}].issuer = {}: must be https (plain http only on loopback)",
                    o.issuer
                ));
            }
            if o.audience.is_empty() {
                problems.push(format!("access.oidc[{i}].audience must not be empty"));
            }
        }
        for (key, file) in [
            ("rpc.tls_cert", &config.rpc.tls_cert),
            ("rpc.tls_key", &config.rpc.tls_key),
            ("genesis", &config.genesis),
        ] {
            if !file.is_file() {
                problems.push(format!("{key} = {}: file not found", file.display()));
            }
        }
        if let crate::keys::at_rest::EncryptionConfig::Transit(t) = &config.encryption {
            let loopback = t.address.starts_with("http://127.0.0.1")
                || t.address.starts_with("http://localhost");
            if !t.address.starts_with("https://") && !loopback {
                problems.push(format!(
                    "encryption.address = {}: must be https (plain http only on loopback)",
                    t.address
                ));
            }
            if let Some(ca) = t.ca_cert.as_ref().filter(|c| !c.is_file()) {
                problems.push(format!(
                    "encryption.ca_cert = {}: file not found",
                    ca.display()
                ));
            }
        }
        problems.extend(config.audit.problems());
        problems.extend(config.metrics.problems());
        problems.extend(config.prover.problems());
        problems.extend(config.settlement.problems(config.prover.proves()));
        problems
    }

    /// The chain rules as persisted in the data directory.
    pub fn chain_file(&self) -> ChainFile {
        ChainFile {
            chain_id: self.chain.chain_id,
            fee_mode: self.chain.fee_mode.clone(),
            initial_base_fee: self.chain.initial_base_fee,
            block_gas_limit: self.chain.block_gas_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse(
            "x.toml",
            "data_dir='/d'\ngenesis='/g'\n[chain]\nchain_id=1\nblock_time=5\n[rpc]\nlisten='127.0.0.1:1'\ntls_cert='c'\ntls_key='k'\n[access]\npolicies_dir='p'\nsiwe_domain='x'\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("block_time"), "{err}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let err = Config::parse(
            "x.toml",
            "data_dir='/d'\ngenesis='/nonexistent/g.json'\n[chain]\nchain_id=1\nfee_mode='free'\n[sequencer]\nblock_time_ms=5\ndurable_every_blocks=0\n[rpc]\nlisten='127.0.0.1:1'\ntls_cert='/nonexistent/c'\ntls_key='/nonexistent/k'\n[access]\npolicies_dir='/nonexistent/p'\nsiwe_domain='x'\nadmin_key_sha256='zz'\n[[access.oidc]]\nname='idp'\nissuer='http://idp.example'\naudience=''\n[encryption]\nprovider='transit'\naddress='http://kms.example:8200'\nkey='k'\nauth={token={env='T'}}\n[audit]\ndatabase_url='mysql://x'\nretention_days=0\n",
        )
        .unwrap_err();
        let text = err.to_string();
        for key in [
            "sequencer.block_time_ms",
            "sequencer.durable_every_blocks",
            "chain.fee_mode",
            "access.admin_key_sha256",
            "access.policies_dir",
            "access.oidc[0].issuer",
            "access.oidc[0].audience",
            "rpc.tls_cert",
            "rpc.tls_key",
            "genesis =",
            "encryption.address",
            "audit.database_url",
            "audit.retention_days",
        ] {
            assert!(text.contains(key), "missing {key} in:\n{text}");
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let example = include_str!("../../deploy/prividium.example.toml");
        let pinned = include_str!("../../prover/guest/PROGRAM_ID").trim();
        assert!(
            example.contains(&format!("program_id = \"{pinned}\"")),
            "the example pins the published program id"
        );
        let err = Config::parse("example", example).unwrap_err();
        // Only the referenced files are missing on a build machine.
        assert!(
            err.problems
                .iter()
                .all(|p| p.contains("not found") || p.contains("access.policies_dir")),
            "{err}"
        );
    }

    #[test]
    fn the_kubernetes_config_map_holds_a_valid_config() {
        // The toml block of deploy/kubernetes/configmap.yaml, unindented.
        let yaml = include_str!("../../deploy/kubernetes/configmap.yaml");
        let toml: String = yaml
            .lines()
            .skip_while(|l| l.trim() != "prividium.toml: |")
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
            .collect();
        assert!(toml.contains("[metrics]"), "{toml}");
        let err = Config::parse("configmap", &toml).unwrap_err();
        // Only the mounted files are missing on a build machine.
        assert!(
            err.problems
                .iter()
                .all(|p| p.contains("not found") || p.contains("access.policies_dir")),
            "{err}"
        );
    }
}
