//! Builds access control for a node: policies, keys, bindings, issuers, and
//! the background upkeep that keeps them current.

use access_control::{
    authn::{api_keys, oidc::OidcIssuer, oidc::OidcIssuerConfig},
    directory::ContractDirectory,
    policy::PolicyEngine,
    siwe::SiweChallenges,
    spend::SpendTracker,
    store::DocDir,
    wallets::Wallets,
    Authenticator, ACCESS_DIR,
};
use alloy_primitives::Address;
use anyhow::{Context, Result};
use audit::Trail;
use rpc::access::Access;
use rpc::access_events::{record_rate_report, record_reload};
use rpc::request::TrailSink;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use storage::SharedCipher;

/// The default bank policy set, written to a new data directory's
/// `policies/` so operators start from something that works and edit it.
const DEFAULT_POLICIES: [(&str, &str); 4] = [
    (
        "schema.cedarschema",
        include_str!("../../policies/schema.cedarschema"),
    ),
    ("bank.cedar", include_str!("../../policies/bank.cedar")),
    (
        "abi/bank-token.json",
        include_str!("../../policies/abi/bank-token.json"),
    ),
    (
        "abi/forwarder.json",
        include_str!("../../policies/abi/forwarder.json"),
    ),
];

/// Access-control settings of a node.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// Policy directory; seeded with the default set when it does not exist.
    pub policies_dir: PathBuf,
    /// Trusted OIDC issuers.
    pub oidc: Vec<OidcIssuerConfig>,
    /// Domain put into wallet-binding (SIWE) challenges.
    pub siwe_domain: String,
    /// SHA-256 of an admin API key to make sure exists (from the config).
    pub bootstrap_admin_sha256: Option<String>,
    /// Wallets to bind at start: (address, principal, organization).
    pub bind_wallets: Vec<(Address, String, String)>,
    /// Requests and calls per principal, role and organization.
    pub rate_limits: access_control::rate::RateLimitConfig,
}

/// Writes the default policies into `dir` unless it already exists.
pub fn seed_policies(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    for (name, text) in DEFAULT_POLICIES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Makes sure an admin key with this hash exists.
fn bootstrap_admin(docs: &DocDir, sha256: &str) -> Result<()> {
    let sha256 = sha256.trim().to_ascii_lowercase();
    let listed = api_keys::list(docs)?;
    if listed.iter().any(|(k, _)| k.sha256 == sha256) {
        return Ok(());
    }
    let record = api_keys::ApiKeyRecord {
        id: format!("k_{}", &sha256[..12]),
        sha256,
        role: "admin".into(),
        org: String::new(),
        wallets: Vec::new(),
        expires_at: None,
        ip_allow: Vec::new(),
        created_at: access_control::store::unix_now(),
        revoked_at: None,
    };
    api_keys::add_record(docs, record)?;
    Ok(())
}

/// Opens everything; fails with every policy problem or an unreachable IdP.
pub async fn open(
    data_dir: &Path,
    chain_id: u64,
    params: &AccessConfig,
    cipher: Option<SharedCipher>,
    trail: Trail,
) -> Result<Arc<Access>> {
    let access_dir = data_dir.join(ACCESS_DIR);
    std::fs::create_dir_all(&access_dir)?;
    let docs = DocDir::new(&access_dir, cipher);
    if let Some(h) = &params.bootstrap_admin_sha256 {
        bootstrap_admin(&docs, h)?;
    }
    for (address, principal, org) in &params.bind_wallets {
        access_control::wallets::bind(&docs, *address, principal, org, "key")?;
    }
    seed_policies(&params.policies_dir)?;
    let engine = Arc::new(PolicyEngine::load(&params.policies_dir)?);
    engine.set_sink(Box::new(TrailSink::new(trail.clone())));
    tracing::info!(
        dir = %params.policies_dir.display(),
        rules = engine.bundle().origins.len(),
        digest = %engine.bundle().digest,
        "policies loaded"
    );
    let keys = Arc::new(api_keys::ApiKeys::open(&docs)?);
    let wallets = Arc::new(Wallets::open(&docs)?);
    let directory = Arc::new(ContractDirectory::open(&docs, wallets.clone())?);
    let mut issuers = Vec::new();
    for cfg in &params.oidc {
        let issuer =
            OidcIssuer::new(cfg.clone()).with_context(|| format!("OIDC issuer {}", cfg.issuer))?;
        // An IdP that is down must not keep API keys and the rest of the
        // appliance from working: its tokens are refused until it answers,
        // and the upkeep loop keeps trying.
        if let Err(e) = issuer.refresh().await {
            tracing::warn!(issuer = %cfg.issuer, error = %e, "identity provider unreachable at start; its tokens are refused until it answers");
        }
        issuers.push(Arc::new(issuer));
    }
    Ok(Arc::new(Access {
        authn: Authenticator::new(keys, issuers),
        wallets,
        engine,
        directory,
        spend: SpendTracker::open(&docs)?,
        siwe: SiweChallenges::new(params.siwe_domain.clone(), chain_id),
        rate: access_control::rate::RateLimiter::new(params.rate_limits.clone()),
        scan: tokio::sync::Mutex::new(()),
        trail,
        auth_seen: Default::default(),
        callers: Default::default(),
    }))
}

/// Once a second: pick up changed policies, keys and bindings; refresh due
/// JWKS; flush key usage and spend totals. Every report interval: audit the
/// rate refusals not yet reported. On SIGHUP: reload policies now.
pub fn spawn_upkeep(access: Arc<Access>) {
    let a = access.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(a.rate.report_interval());
        loop {
            tick.tick().await;
            for r in a.rate.take_reports() {
                record_rate_report(&a.trail, &r);
            }
        }
    });
    let a = access.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            // A touched file with the same content changed nothing.
            if let Some(r) = a
                .engine
                .reload_if_changed()
                .filter(|r| r.as_ref().map_or(true, |r| r.changed))
            {
                record_reload(&a.trail, None, "file change", &r);
            }
            if let Err(e) = a.authn.keys().reload_if_changed() {
                tracing::error!(error = %e, "API key file unreadable; keeping the previous keys");
            }
            if let Err(e) = a.wallets.reload_if_changed() {
                tracing::error!(error = %e, "wallet bindings unreadable; keeping the previous ones");
            }
            a.authn.refresh_due_keys().await;
            if let Err(e) = a.authn.keys().flush_usage() {
                tracing::warn!(error = %e, "recording API key use failed");
            }
            if let Err(e) = a.spend.flush() {
                tracing::warn!(error = %e, "recording daily totals failed");
            }
        }
    });
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            record_reload(&access.trail, None, "SIGHUP", &access.engine.reload());
        }
    });
}
