//! `prividium up --config FILE`: the production entry point.

use crate::access_setup::AccessConfig;
use crate::{
    chain_files,
    config::Config,
    node::{self, NodeConfig},
    tls::TlsFiles,
};
use anyhow::{bail, Context, Result};
use std::{path::PathBuf, time::Duration};

/// Arguments of `prividium up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// TOML configuration file (see deploy/prividium.example.toml).
    #[arg(long, env = "PRIVIDIUM_CONFIG")]
    pub config: PathBuf,
}

/// Validates the config, creates the data directory on first start, runs.
pub async fn run(args: Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config = Config::parse(&args.config.display().to_string(), &text)?;
    let dir = &config.data_dir;
    let chain = config.chain_file();
    if dir.join(crate::data_dir::CHAIN_FILE).exists() {
        let existing = chain_files::load_chain(dir)?;
        if existing != chain {
            bail!(
                "[chain] in {} differs from the chain in {}: {existing:?}",
                args.config.display(),
                dir.display()
            );
        }
    } else {
        let genesis_json = std::fs::read_to_string(&config.genesis)?;
        let genesis = sequencer::Genesis::from_json(&genesis_json)?;
        if let Some(id) = genesis.config.chain_id {
            if id != chain.chain_id {
                bail!(
                    "genesis chainId {id} differs from chain.chain_id {}",
                    chain.chain_id
                );
            }
        }
        chain_files::store(dir, &chain, &genesis_json)?;
    }
    let s = config.sequencer;
    let params = NodeConfig {
        data_dir: dir.clone(),
        rpc_addr: config.rpc.listen,
        tls: TlsFiles {
            cert: config.rpc.tls_cert.clone(),
            key: config.rpc.tls_key.clone(),
            ca: None,
        },
        access: AccessConfig {
            policies_dir: config.access.policies_dir.clone(),
            oidc: config.access.oidc.clone(),
            siwe_domain: config.access.siwe_domain.clone(),
            bootstrap_admin_sha256: config.access.admin_key_sha256.clone(),
            bind_wallets: Vec::new(),
            rate_limits: config.rate_limits.clone(),
        },
        tune: Box::new(move |c| {
            c.block_time = Duration::from_millis(s.block_time_ms);
            c.max_block_txs = s.max_block_txs;
            c.empty_blocks = s.empty_blocks;
            c.mempool.capacity = s.mempool_capacity;
            c.history_keep = s.history_keep_blocks;
            c.durable_every = s.durable_every_blocks;
        }),
        limits: config.rpc.limits(),
        encryption: config.encryption.clone(),
        audit: config.audit.clone(),
        prover: config.prover.clone(),
        settlement: config.settlement.clone(),
        metrics: config.metrics.clone(),
    };
    node::run(params, |_| Ok(())).await
}
