//! Runs one appliance: sequencer + TLS JSON-RPC, until a shutdown signal.

use crate::access_setup::{self, AccessParams};
use crate::{
    at_rest::{self, AtRest, EncryptionSettings, UnsealError},
    chain_files::{self, STATE_FILE},
    key_upkeep,
    node_gauges::{NodeGauges, Parts},
    provider_probe::ProviderProbe,
    rekey,
    tls::TlsFiles,
};
use anyhow::{Context, Result};
use audit::trail::{self as audit_trail, AuditSettings};
use audit::{action, AuditEvent, Outcome};
use axum_server::{tls_rustls::RustlsConfig, Handle};
use encryption::EncryptedStore;
use rpc::{gate::Gate, router, RpcLimits, RpcState};
use sequencer::{Sequencer, SequencerConfig};
use serde_json::json;
use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::Duration,
};
use storage::{KvStore, RedbStore, SharedCipher};

/// Process id of the running node, inside the data directory.
pub const PID_FILE: &str = "prividium.pid";

/// Everything needed to run a node.
pub struct NodeParams {
    /// Data directory (block log, derived store, chain files).
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free one).
    pub rpc_addr: SocketAddr,
    /// Certificate and key.
    pub tls: TlsFiles,
    /// Access control.
    pub access: AccessParams,
    /// Sequencer tuning (chain rules are taken from the data directory).
    pub tune: Box<dyn Fn(&mut SequencerConfig) + Send>,
    /// RPC limits.
    pub limits: RpcLimits,
    /// Encryption at rest.
    pub encryption: EncryptionSettings,
    /// Audit trail.
    pub audit: AuditSettings,
    /// Batching and proving.
    pub prover: crate::proving::ProverSettings,
    /// Settling proven batches.
    pub settlement: crate::settling::SettlementSettings,
    /// The Prometheus scrape endpoint.
    pub metrics: telemetry::MetricsSettings,
}

/// Where a started node serves.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// JSON-RPC (HTTPS and WebSocket).
    pub rpc: SocketAddr,
    /// `GET /metrics`, when on.
    pub metrics: Option<SocketAddr>,
}

/// Starts the node; calls `on_ready` with the bound address once serving;
/// returns after a clean shutdown on Ctrl-C or SIGTERM.
///
/// The HTTPS listener comes up first: while the key provider is unreachable
/// the appliance stays sealed (503 everywhere, `/health` says so) and keeps
/// retrying; nothing is opened before the keys are.
pub async fn run(params: NodeParams, on_ready: impl FnOnce(Ready) -> Result<()>) -> Result<()> {
    let chain_file = chain_files::load_chain(&params.data_dir)?;
    at_rest::prepare(&params.data_dir, &params.encryption)?;
    // Up before the keys, like the RPC listener: a sealed node shows as
    // sealed to its monitoring rather than as gone.
    let gauges = Arc::new(NodeGauges::default());
    let metrics = telemetry::serve(
        telemetry::Metrics::install()?,
        &params.metrics,
        vec![gauges.clone() as Arc<dyn telemetry::Sampler>],
    )
    .await?;
    let tls = RustlsConfig::from_pem_file(&params.tls.cert, &params.tls.key)
        .await
        .with_context(|| format!("loading TLS certificate {}", params.tls.cert.display()))?;
    let listener = std::net::TcpListener::bind(params.rpc_addr)
        .with_context(|| format!("binding {}", params.rpc_addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let gate = Gate::new();
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle.clone())
        .serve(
            gate.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        );
    let server = tokio::spawn(server);
    tracing::info!(%addr, "HTTPS listening");
    let mut shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown_signal());

    let at_rest = if params.encryption.is_on() {
        match unseal_until_ready(&params.data_dir, &params.encryption, &gate, &mut shutdown).await?
        {
            Some(a) => Some(a),
            None => {
                handle.graceful_shutdown(Some(Duration::from_secs(1)));
                server.await??;
                return Ok(());
            }
        }
    } else {
        None
    };
    let cipher: Option<SharedCipher> = at_rest.as_ref().map(|a| a.cipher.clone() as SharedCipher);

    let genesis = chain_files::load_genesis(&params.data_dir, cipher.as_ref())?;
    let chain_spec = chain_file.spec()?;
    let genesis_state = genesis.state();
    let mut config = SequencerConfig::new(chain_spec.clone());
    (params.tune)(&mut config);
    config.log_cipher = cipher.clone();
    let dir = params.data_dir.clone();
    let store_cipher = cipher.clone();
    let (sequencer, raw_store) =
        tokio::task::spawn_blocking(move || -> Result<(Sequencer, Arc<dyn KvStore>)> {
            let (raw, store) = open_store(&dir, store_cipher)?;
            Ok((Sequencer::start(&dir, store, &genesis, config)?, raw))
        })
        .await??;
    let sequencer = Arc::new(sequencer);
    tracing::info!(head = sequencer.head().number, "chain open");
    let trail = audit_trail::open(
        &params.data_dir,
        &params.audit,
        cipher.clone(),
        rpc::request::RequestContext::stamp_current,
    )
    .await?;
    if let Some(a) = &at_rest {
        let details = json!({ "provider": a.provider.id() });
        trail
            .record(
                AuditEvent::system(action::KEYS_UNSEALED, Outcome::Allow)
                    .resource("data-keys")
                    .details(details),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    audit_trail::spawn_upkeep(trail.clone(), params.audit.retention_days);
    let mut stores: Vec<(&'static str, Arc<dyn KvStore>)> = vec![("chain", raw_store)];
    let mut prover_queue = None;
    let mut prover_jobs = None;
    let prover = if params.prover.enabled {
        let (dir, settings, seq, cipher, trail) = (
            params.data_dir.clone(),
            params.prover.clone(),
            sequencer.clone(),
            cipher.clone(),
            trail.clone(),
        );
        let started = tokio::task::spawn_blocking(move || {
            crate::proving::start(
                &dir,
                &settings,
                seq,
                chain_spec,
                genesis_state,
                cipher,
                trail,
            )
        })
        .await??;
        stores.push(("prover", started.raw));
        prover_queue = started.queue;
        prover_jobs = Some(started.jobs);
        Some(started.service)
    } else {
        None
    };
    let bridge = if params.settlement.enabled {
        Some(crate::settling::start(
            &params.data_dir,
            &params.settlement,
            sequencer.chain().chain_id,
            cipher.clone(),
            trail.clone(),
        )?)
    } else {
        None
    };
    let settlement = bridge.as_ref().map(|b| b.status_handle());
    let proving = prover_jobs.map(|jobs| {
        crate::proving_status::ProvingLag::new(jobs, sequencer.clone(), settlement.clone())
    });
    let lag_log = proving
        .clone()
        .map(|lag| lag.spawn_log(Duration::from_secs(60)));
    gauges.open(Parts {
        sequencer: sequencer.clone(),
        trail: trail.clone(),
        proving: proving.clone(),
        cipher: at_rest.as_ref().map(|a| a.cipher.clone()),
        settlement: settlement.clone(),
        data_dir: params.data_dir.clone(),
    });
    let provider_probe = at_rest.clone().map(ProviderProbe::spawn);
    let access = access_setup::open(
        &params.data_dir,
        sequencer.chain().chain_id,
        &params.access,
        cipher.clone(),
        trail.clone(),
    )
    .await?;
    access_setup::spawn_upkeep(access.clone());
    let backup_lock = Arc::new(tokio::sync::Mutex::new(()));
    let backup_socket = crate::backup_plan::serve(
        crate::backup_plan::Sources {
            data_dir: params.data_dir.clone(),
            stores: stores.clone(),
            audit_url: Some(params.audit.database_url(&params.data_dir)),
            provider: at_rest.as_ref().map(|a| a.provider.clone()),
        },
        backup_lock.clone(),
        trail.clone(),
    );
    let holdings = rekey::Holdings {
        data_dir: params.data_dir.clone(),
        stores,
        sequencer: sequencer.clone(),
        audit: trail.db().clone(),
        prover_queue,
        backup_lock,
    };
    let keys_task = at_rest
        .clone()
        .map(|a| key_upkeep::spawn(a, holdings, trail.clone()));
    // For `prividium policies reload` (SIGHUP).
    std::fs::write(
        params.data_dir.join(PID_FILE),
        std::process::id().to_string(),
    )?;
    let proofs_dir = proving
        .is_some()
        .then(|| params.data_dir.join(crate::proving::PROOFS_DIR));
    let key_status = at_rest.is_some().then(|| {
        Arc::new(crate::key_status::KeyStatusReport(params.data_dir.clone()))
            as Arc<dyn rpc::StageReport>
    });
    let state = Arc::new(RpcState {
        proofs_dir,
        key_status,
        sequencer: sequencer.clone(),
        access: access.clone(),
        filters: rpc::filters::Filters::new(&params.limits),
        sockets: Default::default(),
        limits: params.limits,
        settlement: settlement
            .map(|s| Arc::new(crate::settling::SettlementReport(s)) as Arc<dyn rpc::StageReport>),
        proving: proving.map(|p| Arc::new(p) as Arc<dyn rpc::StageReport>),
        checks: provider_probe
            .into_iter()
            .map(|p| p as Arc<dyn rpc::ReadinessCheck>)
            .collect(),
    });
    gate.open(router(state));
    tracing::info!(%addr, "JSON-RPC serving (https)");
    on_ready(Ready {
        rpc: addr,
        metrics: metrics.as_ref().map(|(a, _)| *a),
    })?;

    shutdown.await;
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    server.await??;
    if let Some(t) = backup_socket {
        t.abort();
        let _ = std::fs::remove_file(params.data_dir.join(backup::socket::SOCKET_FILE));
    }
    if let Some(k) = keys_task {
        k.stop().await;
    }
    if let Some(b) = bridge {
        b.stop().await;
    }
    if let Some(t) = lag_log {
        t.abort();
    }
    if let Some((_, t)) = metrics {
        t.abort();
    }
    if let Some(p) = prover {
        tokio::task::spawn_blocking(move || p.stop(Duration::from_secs(5))).await?;
    }
    let seq = sequencer.clone();
    tokio::task::spawn_blocking(move || seq.shutdown()).await??;
    let _ = access.authn.keys().flush_usage();
    let _ = access.spend.flush();
    if let Err(e) = trail.log().flush().await {
        tracing::error!(error = %e, "audit events still queued at shutdown");
    }
    let _ = std::fs::remove_file(params.data_dir.join(PID_FILE));
    tracing::info!(head = sequencer.head().number, "stopped cleanly");
    Ok(())
}

/// Opens the derived store: the raw redb file, wrapped by the cipher when
/// encryption is on. Returns (raw, what the chain uses).
pub fn open_store(
    dir: &Path,
    cipher: Option<SharedCipher>,
) -> Result<(Arc<dyn KvStore>, Arc<dyn KvStore>)> {
    let raw: Arc<dyn KvStore> = Arc::new(RedbStore::open(&dir.join(STATE_FILE))?);
    Ok((raw.clone(), seal_store(raw, cipher)))
}

/// What the chain reads and writes: `raw` itself, or `raw` sealed by `cipher`.
pub fn seal_store(raw: Arc<dyn KvStore>, cipher: Option<SharedCipher>) -> Arc<dyn KvStore> {
    match cipher {
        Some(c) => Arc::new(EncryptedStore::new(raw, c)),
        None => raw,
    }
}

/// Tries to unseal until it works, a fatal error, or shutdown (None).
async fn unseal_until_ready(
    dir: &Path,
    settings: &EncryptionSettings,
    gate: &Gate,
    shutdown: &mut Pin<Box<dyn Future<Output = ()> + Send>>,
) -> Result<Option<AtRest>> {
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            r = at_rest::unseal(dir, settings) => match r {
                Ok(a) => return Ok(Some(a)),
                Err(UnsealError::Fatal(e)) => return Err(e.context("cannot unseal")),
                Err(UnsealError::Retry(reason)) => {
                    tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, "sealed: key provider not ready");
                    gate.set_reason("key provider unavailable; retrying");
                }
            }
        }
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
