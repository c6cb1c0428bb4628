//! `GET /health`: what a load balancer and an operator need to see, public
//! (no token), so counts and progress only, never names or addresses.

use crate::RpcState;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// A stage behind the chain (proving, settlement) that reports its public
/// progress on `/health`. The wiring implements it; the front door only
/// shows it.
pub trait StageReport: Send + Sync {
    /// The progress as JSON. May block (it is read off the async workers);
    /// an error is logged and shown as `{"unreadable": true}`.
    fn report(&self) -> Result<Value, String>;
}

/// Reads `stage` off the async workers.
pub(crate) async fn read(stage: Option<Arc<dyn StageReport>>, what: &'static str) -> Value {
    let Some(stage) = stage else {
        return Value::Null;
    };
    match tokio::task::spawn_blocking(move || stage.report()).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, stage = what, "stage progress unreadable");
            json!({ "unreadable": true })
        }
        Err(_) => json!({ "unreadable": true }),
    }
}

pub(crate) async fn health(State(state): State<Arc<RpcState>>) -> Response {
    let head = state.sequencer.head();
    let running = state.sequencer.is_running();
    let audit = state.access.trail.log().stats();
    let issuers = state.access.authn.issuers();
    let proving = read(state.proving.clone(), "proving").await;
    let settlement = read(state.settlement.clone(), "settlement").await;
    let status = if running && !audit.failing {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if !running { "stopped" } else if audit.failing { "audit-unavailable" } else { "ok" },
        "block": head.number,
        "state_root": head.state_root,
        "pool": state.sequencer.pool_size(),
        // The first block whose state reads and proofs can still ask for.
        "history_from": state
            .sequencer
            .view()
            .ok()
            .and_then(|v| v.history_from().ok().flatten()),
        "filters": state.filters.len(),
        "websockets": state.sockets.len(),
        "audit": audit,
        // Counts only: issuer addresses are internal. Fewer ready than
        // configured means an IdP has not answered since start.
        "oidc": {
            "issuers": issuers.len(),
            "ready": issuers.iter().filter(|i| i.ready()).count(),
        },
        // Public endpoint: progress only; the reason of a failure (it may
        // name the settlement endpoint) is in the log.
        "settlement": settlement,
        // Blocks produced, cut, proven, exported and settled, and how long
        // the oldest unproven block has waited: the proving lag.
        "proving": proving,
    });
    (status, Json(body)).into_response()
}
