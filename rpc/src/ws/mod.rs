//! JSON-RPC over WebSocket on the RPC port and path, with `eth_subscribe`.
//!
//! The socket is authenticated at the upgrade by the same bearer token or
//! API key as HTTP (`Authorization` header), or, for browsers that cannot
//! set headers, by a first `prividium_auth` call carrying the token. Every
//! other call goes through the same method policy, rate limit and audit as
//! over HTTP. The credential is checked again every second: a revoked key
//! or an expired token closes the socket (1008).
//!
//! Nothing a client does grows the node's memory without bound: messages
//! are limited to the HTTP body limit (larger ones close the socket, 1009),
//! connections and subscriptions are capped, and what waits to be written
//! is a bounded queue (`ws_send_queue` messages). Answers and notifications
//! wait for room in it, so a burst reaches a reader that keeps up; a reader
//! that leaves it full for seconds is disconnected (1008), never buffered
//! for.

mod conn;
mod subs;

use super::{authenticate, jsonrpc::code, AuthFailure, RpcState};
use axum::{
    extract::{
        ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade},
        ConnectInfo, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use parking_lot::Mutex;
use serde_json::json;
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

/// Open sockets over all principals, authenticated or not: a bound on what
/// unauthenticated clients can hold open (each for at most
/// [`conn::AUTH_WINDOW`]).
const MAX_CONNECTIONS: usize = 4_096;

/// Open WebSocket connections, counted per principal.
#[derive(Default)]
pub struct Sockets {
    total: AtomicUsize,
    per_principal: Mutex<HashMap<String, usize>>,
}

/// A connection's place in [`Sockets`]; freed on drop.
struct Slot {
    state: Arc<RpcState>,
    principal: Option<String>,
}

impl Sockets {
    /// Takes a place for a new connection, if the node has one.
    fn open(state: &Arc<RpcState>) -> Option<Slot> {
        let total = &state.sockets.total;
        if total.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot {
            state: state.clone(),
            principal: None,
        })
    }

    /// Open connections (all principals).
    pub(crate) fn len(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Slot {
    /// Counts the connection against `principal`; false over its cap.
    fn claim(&mut self, principal: &str) -> bool {
        if self.principal.is_some() {
            return true;
        }
        let cap = self.state.limits.max_ws_per_principal;
        let mut map = self.state.sockets.per_principal.lock();
        let n = map.entry(principal.to_owned()).or_default();
        if *n >= cap {
            return false;
        }
        *n += 1;
        self.principal = Some(principal.to_owned());
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let sockets = &self.state.sockets;
        sockets.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(p) = &self.principal {
            let mut map = sockets.per_principal.lock();
            if let Some(n) = map.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    map.remove(p);
                }
            }
        }
    }
}

/// `GET /` with an upgrade: authenticates what the headers carry, then
/// hands the socket to [`conn::run`]. Refusals before the upgrade are plain
/// HTTP: 401 (bad credential), 429 (rate or connection cap), 503 (audit).
pub(super) async fn upgrade(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(not_ws) => return not_ws.into_response(),
    };
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(mut slot) = Sockets::open(&state) else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open WebSocket connections",
        );
    };
    let principal = match &auth_header {
        None => None,
        Some(h) => match authenticate(&state, Some(h), peer, 1).await {
            Ok(p) => {
                if !slot.claim(&p.key()) {
                    return refuse(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!(
                            "at most {} WebSocket connections per principal",
                            state.limits.max_ws_per_principal
                        ),
                    );
                }
                Some(p)
            }
            Err(AuthFailure::Refused(why)) => {
                return refuse(StatusCode::UNAUTHORIZED, &format!("unauthorized: {why}"))
            }
            Err(AuthFailure::Unaudited(why)) => {
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("audit log unavailable, request refused: {why}"),
                )
            }
            Err(AuthFailure::Limited(r)) => {
                return super::rate_limited(serde_json::Value::Null, &r)
            }
        },
    };
    let limit = state.limits.max_body_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| conn::run(state, peer, socket, slot, principal, auth_header))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let rpc_code = match status {
        StatusCode::UNAUTHORIZED => code::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS => code::LIMIT,
        _ => code::SERVER,
    };
    (
        status,
        axum::Json(json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": rpc_code, "message": message },
        })),
    )
        .into_response()
}
