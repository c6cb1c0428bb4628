//! `prividium dev`: a complete chain with embedded defaults.

use crate::data_dir::{CHAIN_FILE, DEV_ADMIN_HASH_FILE, DEV_FILE, DEV_SECRETS_FILE};
use crate::keys::at_rest::{EncryptionConfig, PassphraseSource};
use crate::proving::ProverConfig;
use crate::{
    access_setup::AccessConfig,
    chain_files::{self, ChainFile},
    node::{self, NodeConfig},
    tls::{ensure_dev_certs, write_private},
};
use access_control::{authn::api_keys, authn::oidc::OidcIssuerConfig};
use alloy_primitives::{Address, U256};
use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, Result};
use audit::trail::AuditConfig;
use rpc::RpcLimits;
use sequencer::SequencerConfig;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Arguments of `prividium dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory (created on first run, reused after).
    #[arg(long, env = "PRIVIDIUM_DATA_DIR", default_value = "./prividium-data")]
    pub data_dir: PathBuf,
    /// Address of the HTTPS JSON-RPC endpoint.
    #[arg(long, env = "PRIVIDIUM_RPC_ADDR", default_value = "127.0.0.1:8545")]
    pub rpc_addr: SocketAddr,
    /// Block time in milliseconds (10–2000).
    #[arg(
        long,
        default_value_t = SequencerConfig::DEFAULT_BLOCK_TIME_MS,
        value_parser = clap::value_parser!(u64).range(SequencerConfig::BLOCK_TIME_MS)
    )]
    pub block_time_ms: u64,
    /// Policy directory (default: `<data-dir>/policies`, seeded with the
    /// bank policy set on first start).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Trust access tokens from this OIDC issuer (exact issuer URL).
    #[arg(long)]
    pub oidc_issuer: Option<String>,
    /// Audience the issuer's tokens must carry.
    #[arg(long, default_value = "https://prividium.test")]
    pub oidc_audience: String,
    /// Claim paths holding roles.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "roles,realm_access.roles"
    )]
    pub oidc_roles_claims: Vec<String>,
    /// Minimum seconds between JWKS refreshes triggered by an unknown key id.
    #[arg(long, default_value_t = 5)]
    pub oidc_min_refresh_secs: u64,
    /// Public client id the web console (`/console/`) signs in with at the
    /// issuer (authorization code with PKCE; register
    /// `https://<rpc-addr>/console/` as its redirect URI).
    #[arg(long, default_value = "prividium-console")]
    pub oidc_console_client: String,
    /// Encryption at rest: `local` (a key file sealed by a generated
    /// passphrase kept in `<data-dir>/keys`), `transit` (Vault/OpenBao, see
    /// the --transit-* flags) or `off` (plaintext; benchmarks only).
    #[arg(long, value_enum, default_value = "local")]
    pub encryption: DevEncryption,
    /// Vault/OpenBao address for `--encryption transit`.
    #[arg(long, default_value = "http://127.0.0.1:8200")]
    pub transit_address: String,
    /// Transit key name (created when missing).
    #[arg(long, default_value = "prividium")]
    pub transit_key: String,
    /// Environment variable holding the Vault/OpenBao token.
    #[arg(long, default_value = "BAO_TOKEN")]
    pub transit_token_env: String,
    /// Audit database (`postgres://…`); default SQLite in the data directory.
    #[arg(long)]
    pub audit_database_url: Option<String>,
    /// Audit queue capacity (events waiting for the database).
    #[arg(long, default_value_t = 65_536)]
    pub audit_queue: usize,
    /// A TOML file with the `[rate_limits]` table of the production config
    /// (without the header); default: the shipped limits.
    #[arg(long)]
    pub rate_limits: Option<PathBuf>,
    /// Blocks whose state stays readable behind the head (default: all).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub history_keep_blocks: Option<u64>,
    /// Every Nth derived-store commit is durable (1–4096; the blocks
    /// between are replayed from the block log after a crash).
    #[arg(
        long,
        default_value_t = SequencerConfig::DEFAULT_DURABLE_EVERY,
        value_parser = clap::value_parser!(u64).range(SequencerConfig::DURABLE_EVERY)
    )]
    pub durable_every_blocks: u64,
    /// Address of the Prometheus scrape endpoint (`GET /metrics`); port 0
    /// picks a free one, written to `dev.json` as `metrics_url`.
    #[arg(long, env = "PRIVIDIUM_METRICS_ADDR", default_value = "127.0.0.1:0")]
    pub metrics_addr: std::net::SocketAddr,
    /// Seconds a polled filter lives without a poll.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub filter_idle_secs: u64,
    /// Messages queued for one WebSocket before its reader is disconnected
    /// as too slow.
    #[arg(long, default_value_t = 1_024, value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_send_queue: u64,
    /// Cut the chain into batches and prove each one in-process.
    #[arg(long)]
    pub prove: bool,
    /// With --prove: `openvm` (real proofs) or `native` (batches cut and
    /// checked by the batch program, no proofs; fast).
    #[arg(long, default_value = "openvm")]
    pub prover_backend: String,
    /// The zkVM guest built by prover/guest/build.sh.
    #[arg(long, default_value = "prover/guest/out/batch-program.elf")]
    pub guest_elf: PathBuf,
    /// With --prove: the proving queue (postgres://…), shared with
    /// `prividium prover worker` processes; default embedded.
    #[arg(long)]
    pub prover_queue: Option<String>,
    /// With --prove: in-process proving workers (0: only worker processes
    /// prove; needs --prover-queue and --program-id).
    #[arg(long, default_value_t = 1)]
    pub prover_workers: usize,
    /// With --prove: the program id proofs must be for (see
    /// prover/guest/PROGRAM_ID).
    #[arg(long)]
    pub program_id: Option<alloy_primitives::B256>,
    /// Most blocks per batch.
    #[arg(long, default_value_t = 100)]
    pub batch_blocks: u64,
    /// Longest a block waits for its batch (ms).
    #[arg(long, default_value_t = 10_000)]
    pub batch_wait_ms: u64,
    /// With --prove: settle proven batches on this settlement chain (JSON-RPC URL).
    #[arg(long, requires = "settle_contract")]
    pub settle_rpc: Option<String>,
    /// The PrividiumSettlement contract on --settle-rpc.
    #[arg(long, requires = "settle_rpc")]
    pub settle_contract: Option<alloy_primitives::Address>,
}

/// Key provider choices of `prividium dev`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DevEncryption {
    /// Local key file, generated passphrase.
    Local,
    /// Vault/OpenBao transit.
    Transit,
    /// No encryption at rest.
    Off,
}

impl Args {
    fn encryption_settings(&self) -> EncryptionConfig {
        match self.encryption {
            DevEncryption::Off => EncryptionConfig::Off,
            DevEncryption::Local => EncryptionConfig::Local {
                key_file: None,
                passphrase: PassphraseSource::Dev,
                kdf: None,
            },
            DevEncryption::Transit => {
                EncryptionConfig::Transit(encryption::provider::TransitConfig {
                    address: self.transit_address.clone(),
                    mount: "transit".into(),
                    key: self.transit_key.clone(),
                    ca_cert: None,
                    namespace: None,
                    auth: encryption::provider::TransitAuth::Token {
                        env: Some(self.transit_token_env.clone()),
                        file: None,
                    },
                    create_key: true,
                    timeout_secs: 5,
                })
            }
        }
    }
}

/// Chain id of dev chains.
pub const DEV_CHAIN_ID: u64 = 7777;
const DEV_ACCOUNTS: usize = 10;

#[derive(Debug, Serialize, Deserialize)]
struct DevAccount {
    address: Address,
    private_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct DevFile {
    rpc_url: String,
    /// The Prometheus scrape endpoint (plain HTTP on loopback in dev).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metrics_url: Option<String>,
    /// The web console (sign in with `api_key`, or at the IdP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    console_url: Option<String>,
    chain_id: u64,
    api_key: String,
    ca_cert: PathBuf,
    accounts: Vec<DevAccount>,
}

/// Creates the data directory on first use: funded accounts, genesis, key.
fn init(dir: &std::path::Path) -> Result<DevFile> {
    let secrets = dir.join(DEV_SECRETS_FILE);
    if dir.join(CHAIN_FILE).exists() {
        return serde_json::from_str(&std::fs::read_to_string(&secrets).with_context(|| {
            format!(
                "reading {} (data directory not created by `prividium dev`?)",
                secrets.display()
            )
        })?)
        .with_context(|| format!("parsing {}", secrets.display()));
    }
    let accounts: Vec<DevAccount> = (0..DEV_ACCOUNTS)
        .map(|_| {
            let signer = PrivateKeySigner::random();
            DevAccount {
                address: signer.address(),
                private_key: format!("0x{}", alloy_primitives::hex::encode(signer.to_bytes())),
            }
        })
        .collect();
    let alloc: serde_json::Map<String, serde_json::Value> = accounts
        .iter()
        .map(|a| {
            let balance = U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(18u64));
            (
                a.address.to_string(),
                json!({ "balance": balance.to_string() }),
            )
        })
        .collect();
    let chain = ChainFile {
        chain_id: DEV_CHAIN_ID,
        fee_mode: "zero".into(),
        initial_base_fee: 0,
        block_gas_limit: 60_000_000,
    };
    let genesis = json!({
        "config": { "chainId": DEV_CHAIN_ID },
        "gasLimit": format!("0x{:x}", chain.block_gas_limit),
        "timestamp": "0x0",
        "alloc": alloc,
    });
    let (api_key, record) = api_keys::issue(&api_keys::NewKey {
        role: "admin".into(),
        org: "dev".into(),
        ..api_keys::NewKey::default()
    })
    .map_err(anyhow::Error::msg)?;
    std::fs::write(dir.join(DEV_ADMIN_HASH_FILE), &record.sha256)?;
    let dev = DevFile {
        rpc_url: String::new(),
        metrics_url: None,
        console_url: None,
        chain_id: DEV_CHAIN_ID,
        api_key,
        ca_cert: PathBuf::new(),
        accounts,
    };
    write_private(&secrets, serde_json::to_string_pretty(&dev)?.as_bytes())?;
    // Last: its presence marks the directory as initialised.
    chain_files::store(dir, &chain, &serde_json::to_string_pretty(&genesis)?)?;
    Ok(dev)
}

/// Runs `prividium dev`.
pub async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let dir = std::fs::canonicalize(&args.data_dir)?;
    let mut dev = init(&dir)?;
    let tls = ensure_dev_certs(&dir)?;
    dev.ca_cert = tls.ca.clone().expect("dev CA");
    let admin_sha256 = std::fs::read_to_string(dir.join(DEV_ADMIN_HASH_FILE))?
        .trim()
        .to_owned();
    if admin_sha256.len() != 64 || !admin_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "{} is not a SHA-256 hex digest",
            dir.join(DEV_ADMIN_HASH_FILE).display()
        );
    }
    // The dev API key is an admin key and the dev accounts are its wallets,
    // so a new user can transact with them at once.
    let admin_principal = format!("ApiKey:k_{}", &admin_sha256[..12]);
    let bind_wallets = dev
        .accounts
        .iter()
        .map(|a| (a.address, admin_principal.clone(), "dev".to_string()))
        .collect();
    let oidc = args
        .oidc_issuer
        .iter()
        .map(|issuer| OidcIssuerConfig {
            name: "idp".into(),
            issuer: issuer.clone(),
            audience: args.oidc_audience.clone(),
            roles_claims: args.oidc_roles_claims.clone(),
            org_claim: "org".into(),
            role_map: Default::default(),
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            ca_cert: None,
            jwks_refresh_secs: 300,
            jwks_min_refresh_secs: args.oidc_min_refresh_secs,
            leeway_secs: 30,
            console_client_id: Some(args.oidc_console_client.clone()),
        })
        .collect();
    let block_time = Duration::from_millis(args.block_time_ms);
    let history_keep = args.history_keep_blocks;
    let durable_every = args.durable_every_blocks;
    let params = NodeConfig {
        data_dir: dir.clone(),
        rpc_addr: args.rpc_addr,
        tls,
        access: AccessConfig {
            policies_dir: args
                .policies
                .clone()
                .unwrap_or_else(|| dir.join("policies")),
            oidc,
            siwe_domain: args.rpc_addr.to_string(),
            bootstrap_admin_sha256: Some(admin_sha256),
            bind_wallets,
            rate_limits: match &args.rate_limits {
                None => Default::default(),
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let settings: access_control::rate::RateLimitConfig = toml::from_str(&text)
                        .with_context(|| format!("parsing {}", path.display()))?;
                    let problems = settings.problems();
                    if !problems.is_empty() {
                        anyhow::bail!("{}: {}", path.display(), problems.join("; "));
                    }
                    settings
                }
            },
        },
        tune: Box::new(move |c| {
            c.block_time = block_time;
            c.history_keep = history_keep;
            c.durable_every = durable_every;
        }),
        limits: RpcLimits {
            filter_idle: Duration::from_secs(args.filter_idle_secs),
            ws_send_queue: args.ws_send_queue as usize,
            ..RpcLimits::default()
        },
        encryption: args.encryption_settings(),
        audit: AuditConfig {
            database_url: args.audit_database_url.clone(),
            queue_capacity: args.audit_queue,
            ..AuditConfig::default()
        },
        prover: ProverConfig {
            enabled: args.prove,
            backend: args.prover_backend.clone(),
            guest_elf: args.guest_elf.clone(),
            max_blocks: args.batch_blocks,
            max_wait_ms: args.batch_wait_ms,
            queue: args.prover_queue.clone(),
            workers: args.prover_workers,
            program_id: args.program_id,
            ..ProverConfig::default()
        },
        settlement: crate::settling::SettlementConfig {
            enabled: args.settle_rpc.is_some(),
            rpc_url: args.settle_rpc.clone().unwrap_or_default(),
            contract: args.settle_contract,
            poll_ms: 500,
            ..Default::default()
        },
        metrics: telemetry::MetricsConfig {
            addr: args.metrics_addr,
            ..Default::default()
        },
    };
    let mut problems = params.prover.problems();
    problems.extend(params.settlement.problems(params.prover.proves()));
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("; "));
    }
    node::run(params, move |ready| {
        dev.rpc_url = format!("https://{}", ready.rpc);
        dev.metrics_url = ready.metrics.map(|a| format!("http://{a}/metrics"));
        dev.console_url = Some(format!("{}/console/", dev.rpc_url));
        // Written only once serving, so tools can poll for the file.
        let tmp = dir.join("dev.json.tmp");
        write_private(&tmp, serde_json::to_string_pretty(&dev)?.as_bytes())?;
        std::fs::rename(&tmp, dir.join(DEV_FILE))?;
        tracing::info!(rpc_url = %dev.rpc_url, dev_file = %dir.join(DEV_FILE).display(), "dev chain ready");
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args as _, Command};

    /// clap enforces the ranges from `SequencerConfig` but does not print
    /// them: the help text is where an operator reads them, so it must name
    /// the same bounds the parser enforces.
    #[test]
    fn help_names_the_ranges_the_flags_enforce() {
        let cmd = Args::augment_args(Command::new("dev"));
        let help = |id: &str| {
            cmd.get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default()
        };
        for (id, range) in [
            ("block_time_ms", SequencerConfig::BLOCK_TIME_MS),
            ("durable_every_blocks", SequencerConfig::DURABLE_EVERY),
        ] {
            let text = format!("{}–{}", range.start(), range.end());
            assert!(help(id).contains(&text), "--{id} help lacks {text}");
        }
        let parse = |flag: &str, v: u64| {
            Args::augment_args(Command::new("dev"))
                .try_get_matches_from(["dev", flag, &v.to_string()])
                .is_ok()
        };
        let block = SequencerConfig::BLOCK_TIME_MS;
        assert!(parse("--block-time-ms", *block.end()));
        assert!(!parse("--block-time-ms", block.end() + 1));
        assert!(!parse("--block-time-ms", block.start() - 1));
    }
}
