//! The door in front of the RPC router: while the appliance is sealed (its
//! key provider has not released the data keys) it answers every request
//! with 503 and `/health` says why; once unsealed it hands requests to the
//! real router.

use axum::{
    extract::{Request, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use parking_lot::RwLock;
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

/// JSON-RPC error code for "sealed, try later".
pub const SEALED: i64 = -32010;

/// Sealed until [`Gate::open`].
#[derive(Default)]
pub struct Gate {
    inner: arc_swap::ArcSwapOption<Router>,
    reason: RwLock<String>,
}

impl Gate {
    /// A sealed gate.
    pub fn new() -> Arc<Self> {
        let g = Self::default();
        *g.reason.write() = "unlocking keys".into();
        Arc::new(g)
    }

    /// Why it is still sealed (shown on `/health`).
    pub fn set_reason(&self, reason: &str) {
        *self.reason.write() = reason.to_string();
    }

    /// Unseals: from now on requests go to `router`.
    pub fn open(&self, router: Router) {
        self.inner.store(Some(Arc::new(router)));
    }

    /// The router to serve.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(dispatch).with_state(self.clone())
    }
}

async fn dispatch(State(gate): State<Arc<Gate>>, req: Request) -> Response {
    if let Some(router) = gate.inner.load_full() {
        return match (*router).clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
    }
    let reason = gate.reason.read().clone();
    if req.method() == Method::GET {
        match req.uri().path() {
            "/health" => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "status": "sealed", "reason": reason })),
                )
                    .into_response()
            }
            // Waiting for keys is not wedged: restarting would not help.
            "/livez" => {
                return (
                    StatusCode::OK,
                    Json(json!({ "status": "live", "sealed": true })),
                )
                    .into_response()
            }
            "/readyz" => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({
                        "status": "not-ready",
                        "failing": [{ "component": "keys", "reason": format!("sealed: {reason}") }],
                    })),
                )
                    .into_response()
            }
            _ => {}
        }
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": SEALED, "message": "appliance is sealed: waiting for its key provider" }
        })),
    )
        .into_response()
}
