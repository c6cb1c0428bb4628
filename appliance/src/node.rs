//! Runs one appliance: sequencer + TLS JSON-RPC, until a shutdown signal.

use crate::access_setup::{self, AccessParams};
use crate::{
    chain_files::{self, STATE_FILE},
    rpc::{router, RpcLimits, RpcState},
    tls::TlsFiles,
};
use anyhow::{Context, Result};
use axum_server::{tls_rustls::RustlsConfig, Handle};
use sequencer::{Sequencer, SequencerConfig};
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use storage::RedbStore;

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
}

/// Starts the node; calls `on_ready` with the bound address once serving;
/// returns after a clean shutdown on Ctrl-C or SIGTERM.
pub async fn run(
    params: NodeParams,
    on_ready: impl FnOnce(SocketAddr) -> Result<()>,
) -> Result<()> {
    let (chain_file, genesis) = chain_files::load(&params.data_dir)?;
    let mut config = SequencerConfig::new(chain_file.spec()?);
    (params.tune)(&mut config);
    let dir = params.data_dir.clone();
    let sequencer = tokio::task::spawn_blocking(move || -> Result<Sequencer> {
        let store = Arc::new(RedbStore::open(&dir.join(STATE_FILE))?);
        Ok(Sequencer::start(&dir, store, &genesis, config)?)
    })
    .await??;
    let sequencer = Arc::new(sequencer);
    tracing::info!(head = sequencer.head().number, "chain open");
    let access =
        access_setup::open(&params.data_dir, sequencer.chain().chain_id, &params.access).await?;
    access_setup::spawn_upkeep(access.clone());
    // For `prividium policies reload` (SIGHUP).
    std::fs::write(
        params.data_dir.join(PID_FILE),
        std::process::id().to_string(),
    )?;

    let tls = RustlsConfig::from_pem_file(&params.tls.cert, &params.tls.key)
        .await
        .with_context(|| format!("loading TLS certificate {}", params.tls.cert.display()))?;
    let listener = std::net::TcpListener::bind(params.rpc_addr)
        .with_context(|| format!("binding {}", params.rpc_addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = Arc::new(RpcState {
        sequencer: sequencer.clone(),
        access: access.clone(),
        limits: params.limits,
    });
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)?
        .handle(handle.clone())
        .serve(router(state).into_make_service_with_connect_info::<SocketAddr>());
    let server = tokio::spawn(server);
    tracing::info!(%addr, "JSON-RPC listening (https)");
    on_ready(addr)?;

    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    server.await??;
    let seq = sequencer.clone();
    tokio::task::spawn_blocking(move || seq.shutdown()).await??;
    let _ = access.authn.keys().flush_usage();
    let _ = access.spend.flush();
    let _ = std::fs::remove_file(params.data_dir.join(PID_FILE));
    tracing::info!(head = sequencer.head().number, "stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
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
