//! What a node is started with: `prividium up` builds it from the config
//! file, `prividium dev` from embedded defaults.

use crate::{access_setup::AccessConfig, keys::at_rest::EncryptionConfig, tls::TlsFiles};
use audit::trail::AuditConfig;
use rpc::RpcLimits;
use sequencer::SequencerConfig;
use std::{net::SocketAddr, path::PathBuf};

/// Everything needed to run a node.
pub struct NodeConfig {
    /// Data directory (block log, derived store, chain files).
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free one).
    pub rpc_addr: SocketAddr,
    /// Certificate and key.
    pub tls: TlsFiles,
    /// Access control.
    pub access: AccessConfig,
    /// Sequencer tuning (chain rules are taken from the data directory).
    pub tune: Box<dyn Fn(&mut SequencerConfig) + Send>,
    /// RPC limits.
    pub limits: RpcLimits,
    /// Encryption at rest.
    pub encryption: EncryptionConfig,
    /// Audit trail.
    pub audit: AuditConfig,
    /// Batching and proving.
    pub prover: crate::proving::ProverConfig,
    /// Settling proven batches.
    pub settlement: crate::settling::SettlementConfig,
    /// The Prometheus scrape endpoint.
    pub metrics: telemetry::MetricsConfig,
}
