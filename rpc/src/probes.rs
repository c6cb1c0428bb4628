//! `GET /livez` and `GET /readyz`: what an orchestrator (systemd, a
//! Kubernetes kubelet, a load balancer) asks. Public like `/health`, so
//! they name components and reasons, never addresses or principals.
//!
//! Live means the process is not wedged: its block producer still goes
//! round (restart it otherwise). Ready means it can serve a request end to
//! end now: unsealed, producing, its audit trail committing, and every
//! [`ReadinessCheck`] the binary adds (the key provider) passing.

use crate::RpcState;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};
use std::{sync::Arc, time::Duration};

/// The producer goes round every few milliseconds; this long without it
/// means it is stuck (a hung disk, a deadlock).
const PRODUCER_STUCK: Duration = Duration::from_secs(10);
/// A commit waiting this long means the audit database is not taking
/// events: requests will soon be refused.
const AUDIT_STUCK_MS: u64 = 5_000;

/// A part of the node that readiness depends on and the front door cannot
/// see by itself.
pub trait ReadinessCheck: Send + Sync {
    /// The component's name on `/readyz` (`key-provider`, …).
    fn component(&self) -> &'static str;
    /// Why it cannot serve now, if it cannot. Must not block.
    fn check(&self) -> Result<(), String>;
}

/// Why block production is not healthy, if it is not.
fn producer_problem(state: &RpcState) -> Option<String> {
    if !state.sequencer.is_running() {
        return Some("block production stopped (see the log)".into());
    }
    let age = state.sequencer.producer_heartbeat_age();
    (age > PRODUCER_STUCK).then(|| format!("block producer stuck for {} s", age.as_secs()))
}

pub(crate) async fn livez(State(state): State<Arc<RpcState>>) -> Response {
    match producer_problem(&state) {
        None => (StatusCode::OK, Json(json!({ "status": "live" }))).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "wedged",
                "failing": [{ "component": "block-production", "reason": reason }],
            })),
        )
            .into_response(),
    }
}

pub(crate) async fn readyz(State(state): State<Arc<RpcState>>) -> Response {
    let mut failing: Vec<Value> = Vec::new();
    if let Some(reason) = producer_problem(&state) {
        failing.push(json!({ "component": "block-production", "reason": reason }));
    }
    let audit = state.access.trail.log().stats();
    if audit.failing {
        failing.push(json!({ "component": "audit", "reason": "audit database unreachable; requests are refused" }));
    } else if audit.commit_waiting_ms > AUDIT_STUCK_MS {
        failing.push(json!({
            "component": "audit",
            "reason": format!("audit database has not committed for {} s", audit.commit_waiting_ms / 1_000),
        }));
    }
    for c in &state.checks {
        if let Err(reason) = c.check() {
            failing.push(json!({ "component": c.component(), "reason": reason }));
        }
    }
    if failing.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response()
    } else {
        for f in &failing {
            tracing::debug!(component = %f["component"], reason = %f["reason"], "not ready");
        }
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not-ready", "failing": failing })),
        )
            .into_response()
    }
}
