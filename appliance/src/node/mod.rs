//! Runs one appliance until a shutdown signal, in five steps:
//!
//! 1. **prepare**: read the chain's public rules, check the at-rest
//!    settings, bring up the metrics endpoint and the HTTPS listener. The
//!    listener answers 503 behind its gate until step 4, so a sealed node
//!    shows as sealed to its monitoring rather than as gone.
//! 2. **unseal**: ask the key provider for the data keys, retrying while it
//!    is unreachable; nothing sealed is opened before.
//! 3. **wire**: start every stage in data-flow order ([`wiring`]).
//! 4. **serve**: open the gate onto the JSON-RPC router.
//! 5. **shutdown** (Ctrl-C, SIGTERM): drain the listener, then stop the
//!    stages in reverse order. A start that fails midway stops what it had
//!    started the same way.

mod config;
pub mod gauges;
mod wiring;

pub use config::NodeConfig;

use crate::{
    chain_files,
    data_dir::DataDir,
    keys::at_rest::{self, AtRest, EncryptionConfig, UnsealError},
};
use anyhow::{Context, Result};
use axum_server::{tls_rustls::RustlsConfig, Handle};
use gauges::NodeGauges;
use rpc::{gate::Gate, router};
use std::{future::Future, net::SocketAddr, path::Path, pin::Pin, sync::Arc, time::Duration};
use wiring::Stages;

/// Where a started node serves.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// JSON-RPC (HTTPS and WebSocket).
    pub rpc: SocketAddr,
    /// `GET /metrics`, when on.
    pub metrics: Option<SocketAddr>,
}

type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts the node; calls `on_ready` with the bound address once serving;
/// returns after a clean shutdown on Ctrl-C or SIGTERM.
pub async fn run(params: NodeConfig, on_ready: impl FnOnce(Ready) -> Result<()>) -> Result<()> {
    // 1. prepare
    let dir = DataDir::new(params.data_dir.clone());
    let chain_file = chain_files::load_chain(dir.root())?;
    at_rest::prepare(dir.root(), &params.encryption)?;
    let mut stages = Stages::default();
    let gauges = Arc::new(NodeGauges::default());
    let metrics = telemetry::serve(
        telemetry::Metrics::install()?,
        &params.metrics,
        vec![gauges.clone() as Arc<dyn telemetry::Sampler>],
    )
    .await?;
    let metrics_addr = metrics.as_ref().map(|(a, _)| *a);
    if let Some((_, task)) = metrics {
        stages.task("metrics", task);
    }
    // Removed as late as possible: while it names this process, `prividium
    // backup` and `policies reload` treat the directory as a running node's.
    // The file itself is written once the node handles SIGHUP (wiring).
    // Only this process's own: a start refused because another node holds
    // the directory must leave that node's file alone.
    let pid_file = dir.pid_file();
    stages.started("pid-file", move || async move {
        let ours = std::process::id().to_string();
        if std::fs::read_to_string(&pid_file).is_ok_and(|pid| pid.trim() == ours) {
            let _ = std::fs::remove_file(&pid_file);
        }
        Ok(())
    });
    let front = FrontDoor::bind(&params).await?;
    let mut shutdown: Shutdown = Box::pin(shutdown_signal());

    // 2. unseal
    let at_rest = if params.encryption.is_on() {
        let unsealed =
            unseal_until_ready(dir.root(), &params.encryption, &front.gate, &mut shutdown);
        match unsealed.await {
            Ok(Some(a)) => Some(a),
            outcome => {
                let _ = front.stop(Duration::from_secs(1)).await;
                let _ = stages.stop().await;
                return outcome.map(|_| ());
            }
        }
    } else {
        None
    };

    // 3. wire
    let wired = wiring::start(
        &params,
        &dir,
        chain_file,
        at_rest.as_ref(),
        &gauges,
        &mut stages,
    )
    .await;
    let state = match wired {
        Ok(state) => state,
        Err(e) => return Err(stop_after_failed_start(front, stages, e).await),
    };

    // 4. serve
    let head = state.sequencer.clone();
    front.gate.open(router(state));
    tracing::info!(addr = %front.addr, "JSON-RPC serving (https)");
    let ready = Ready {
        rpc: front.addr,
        metrics: metrics_addr,
    };
    if let Err(e) = on_ready(ready) {
        return Err(stop_after_failed_start(front, stages, e).await);
    }

    // 5. shutdown
    shutdown.await;
    tracing::info!("shutting down");
    let drained = front.stop(Duration::from_secs(5)).await;
    stages.stop().await?;
    drained?;
    tracing::info!(head = head.head().number, "stopped cleanly");
    Ok(())
}

/// Stops what a start that failed at `error` had started; returns `error`.
async fn stop_after_failed_start(
    front: FrontDoor,
    stages: Stages,
    error: anyhow::Error,
) -> anyhow::Error {
    tracing::error!(error = %format!("{error:#}"), "start failed; stopping what started");
    let _ = front.stop(Duration::from_secs(1)).await;
    let _ = stages.stop().await;
    error
}

/// The HTTPS listener, up before the keys behind a gate that answers 503
/// until the router is opened.
struct FrontDoor {
    addr: SocketAddr,
    gate: Arc<Gate>,
    handle: Handle<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl FrontDoor {
    async fn bind(params: &NodeConfig) -> Result<Self> {
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
        Ok(Self {
            addr,
            gate,
            handle,
            server,
        })
    }

    /// Lets requests in flight finish (`grace` at most), then closes.
    async fn stop(self, grace: Duration) -> Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        Ok(self.server.await??)
    }
}

/// Tries to unseal until it works, a fatal error, or shutdown (None).
async fn unseal_until_ready(
    dir: &Path,
    settings: &EncryptionConfig,
    gate: &Gate,
    shutdown: &mut Shutdown,
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

/// Resolves on Ctrl-C or SIGTERM.
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
