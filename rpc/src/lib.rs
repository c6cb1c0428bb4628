//! The RPC front door: Ethereum JSON-RPC over HTTPS and WebSocket (the
//! binary owns the TLS listener and hands it [`router`]).
//!
//! Request flow: body read under a size limit → JSON-RPC parse → bearer
//! authentication (a tiny public set needs none) → method dispatch against
//! the sequencer. Every failure is a JSON-RPC error body with a fitting HTTP
//! status; nothing a client sends can panic the server.

pub mod access;
pub mod access_events;
mod access_list;
mod admin_keys;
mod admin_status;
mod asker;
mod audit_api;
mod auth_seen;
mod batches;
mod block_reads;
mod call;
mod call_metrics;
mod chain_reads;
mod console;
mod convert;
mod disclose;
mod eth;
pub mod filters;
pub mod gate;
mod health;
mod jsonrpc;
mod methods;
mod params;
mod private;
mod probes;
mod proof;
pub mod request;
mod state_reads;
mod trace;
mod wallet;
pub mod ws;

use access::{Access, RequestCaller};
use audit::{action, ActorKind, AuditEvent, Outcome};
use axum::{
    body::{to_bytes, Body},
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
pub use call_metrics::CallMetrics;
pub use health::StageReport;
use jsonrpc::{code, parse_body, Body as RpcBody, Call, RpcError};
use methods::method_action;
pub use probes::ReadinessCheck;
use request::{RequestContext, REQUEST};
use sequencer::Sequencer;
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc};

/// Size limits of the front door.
#[derive(Debug, Clone)]
pub struct RpcLimits {
    /// Largest request body (bytes).
    pub max_body_bytes: usize,
    /// Most calls in one batch.
    pub max_batch: usize,
    /// Widest eth_getLogs block range.
    pub max_log_range: u64,
    /// Most logs one eth_getLogs returns.
    pub max_logs: usize,
    /// A filter nobody polled for this long is removed.
    pub filter_idle: std::time::Duration,
    /// Most filters one principal may have installed.
    pub max_filters_per_principal: usize,
    /// Most WebSocket connections one principal may hold open.
    pub max_ws_per_principal: usize,
    /// Most subscriptions one WebSocket connection may hold.
    pub max_subscriptions: usize,
    /// Messages waiting to be written to one WebSocket; a consumer that
    /// lets more pile up is disconnected.
    pub ws_send_queue: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 5 * 1024 * 1024,
            max_batch: 1_000,
            max_log_range: 10_000,
            max_logs: 10_000,
            filter_idle: std::time::Duration::from_secs(300),
            max_filters_per_principal: 64,
            max_ws_per_principal: 16,
            max_subscriptions: 64,
            ws_send_queue: 1_024,
        }
    }
}

/// What handlers share.
pub struct RpcState {
    /// The chain.
    pub sequencer: Arc<Sequencer>,
    /// Authentication and policies.
    pub access: Arc<Access>,
    /// Limits.
    pub limits: RpcLimits,
    /// The settlement bridge's progress, when settling.
    pub settlement: Option<Arc<dyn StageReport>>,
    /// How far proving is behind, when the node proves.
    pub proving: Option<Arc<dyn StageReport>>,
    /// What else `/readyz` asks (the key provider).
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    /// Installed polled filters.
    pub filters: filters::Filters,
    /// Open WebSocket connections.
    pub sockets: ws::Sockets,
    /// Where exported proofs are (`<data dir>/proofs`), when the node proves.
    pub proofs_dir: Option<std::path::PathBuf>,
    /// The data keys' versions and re-encryption progress, when encrypted.
    pub key_status: Option<Arc<dyn StageReport>>,
    /// Request counters and durations, registered once each.
    pub call_metrics: CallMetrics,
}

/// Methods anyone may call without a token.
const PUBLIC_METHODS: [&str; 4] = [
    "eth_chainId",
    "net_version",
    "web3_clientVersion",
    "eth_blockNumber",
];

/// The HTTP routes: `POST /` for JSON-RPC, `GET /` upgraded to a
/// WebSocket for JSON-RPC with subscriptions, `GET /health` for probes, the
/// compliance API under `/audit/`, exported proofs under `/proofs/` and the
/// web console under `/console/`.
pub fn router(state: Arc<RpcState>) -> Router {
    Router::new()
        .route("/", post(handle_rpc).get(ws::upgrade))
        .route("/health", get(health::health))
        .route("/livez", get(probes::livez))
        .route("/readyz", get(probes::readyz))
        .merge(audit_api::routes())
        .merge(batches::routes())
        .merge(console::routes())
        .with_state(state)
}

/// Runs `serve` with a fresh request context (ids, client address) and
/// returns its response tagged with `x-request-id`.
pub(crate) async fn in_request<F>(peer: SocketAddr, headers: &HeaderMap, serve: F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let ctx = RequestContext::new(peer.ip(), traceparent);
    let id = HeaderValue::from_str(&ctx.request_id).ok();
    let mut resp = in_context(ctx, serve).await;
    if let Some(id) = id {
        resp.headers_mut().insert("x-request-id", id);
    }
    resp
}

/// Runs `work` as the request `ctx` (its decisions carry its ids), then
/// records the summaries of its item reads and folded decisions into the
/// places their first decisions reserved.
pub(crate) async fn in_context<F: std::future::Future>(ctx: RequestContext, work: F) -> F::Output {
    let reads = ctx.reads.clone();
    let fold = ctx.fold.clone();
    REQUEST
        .scope(ctx, async move {
            let out = work.await;
            reads.flush();
            fold.flush();
            out
        })
        .await
}

/// Authenticates the bearer header, takes the principal's share for a
/// request of `calls` calls, and records the attempt. `Err` is the response
/// to send: 401 for a bad credential, 429 over the principal's rate, 503
/// when the attempt cannot be audited.
pub(crate) async fn authenticate(
    state: &RpcState,
    header: Option<&str>,
    peer: SocketAddr,
    calls: u64,
) -> Result<Arc<access_control::Principal>, AuthFailure> {
    let trail = &state.access.trail;
    match state
        .access
        .authn
        .authenticate(header, Some(peer.ip()))
        .await
    {
        Ok(p) => {
            // Over its rate, a request costs nothing more: no audit event
            // each (one summary per principal per interval), no work.
            if let Err((refusal, report)) = state.access.rate.admit(&p, calls) {
                if let Some(r) = report {
                    crate::access_events::record_rate_report(trail, &r);
                }
                metrics::counter!("prividium_auth_total", "outcome" => "rate_limited").increment(1);
                return Err(AuthFailure::Limited(refusal));
            }
            metrics::counter!("prividium_auth_total", "outcome" => "ok").increment(1);
            audit_backpressure(trail, &p, calls).await;
            // Once per principal, address and minute (see auth_seen).
            let now = audit::time::now_us() / 1_000_000;
            if !state
                .access
                .auth_seen
                .first_in_window(&p.key(), peer.ip(), now)
            {
                return Ok(p);
            }
            let method = match p.kind {
                access_control::PrincipalKind::User => "oidc",
                access_control::PrincipalKind::ApiKey => "api_key",
            };
            let event = request::by(&p, action::AUTH_SUCCEEDED, Outcome::Allow)
                .details(json!({ "method": method }));
            match trail.record(event) {
                Ok(()) => Ok(p),
                Err(e) => Err(AuthFailure::Unaudited(e.to_string())),
            }
        }
        Err(why) => {
            let event = AuditEvent::new(
                ActorKind::Anonymous,
                "anonymous",
                action::AUTH_FAILED,
                Outcome::Deny,
            )
            .details(json!({ "reason": why.to_string() }));
            let _ = trail.record(event);
            metrics::counter!("prividium_auth_total", "outcome" => "refused").increment(1);
            Err(AuthFailure::Refused(why.to_string()))
        }
    }
}

/// Lets a request of `calls` calls wait, a bounded time, for its
/// principal's share of the audit queue to drain, so a load the audit
/// database cannot keep up with slows its sender down instead of being
/// refused. Counted: how often a request waited, and how often in vain.
/// True when it waited (the caller may have been revoked meanwhile).
pub(crate) async fn audit_backpressure(
    trail: &audit::Trail,
    p: &access_control::Principal,
    calls: u64,
) -> bool {
    // A call records up to two events (its decision, and a read's tally or
    // a submission's), a request at most one more (the first sign-in of the
    // minute): counting high makes a big batch wait rather than be refused
    // halfway.
    let events = usize::try_from(calls.saturating_mul(2).saturating_add(1)).unwrap_or(usize::MAX);
    match trail.wait_for_room(&p.key(), events).await {
        audit::Room::Free => false,
        audit::Room::AfterWait(waited) => {
            metrics::counter!("prividium_audit_backpressure_total", "outcome" => "room")
                .increment(1);
            metrics::histogram!("prividium_audit_backpressure_seconds")
                .record(waited.as_secs_f64());
            true
        }
        audit::Room::None => {
            metrics::counter!("prividium_audit_backpressure_total", "outcome" => "timeout")
                .increment(1);
            true
        }
    }
}

/// A JSON error for the plain HTTPS routes (compliance API, proof files):
/// `{"error": message}` plus the fields of `extra` when it is an object.
pub(crate) fn http_error(status: StatusCode, message: impl Into<String>, extra: Value) -> Response {
    let mut body = json!({ "error": message.into() });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    (status, Json(body)).into_response()
}

/// Authenticates a plain HTTPS request (the compliance API, proof files)
/// as [`authenticate`] does a JSON-RPC one. `Err` is the JSON response to
/// send: 401 with `WWW-Authenticate`, 429 with the wait, or 503.
pub(crate) async fn authenticate_http(
    state: &RpcState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Arc<access_control::Principal>, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authenticate(state, bearer, peer, 1).await {
        Ok(p) => Ok(p),
        Err(AuthFailure::Refused(why)) => {
            let mut r = http_error(
                StatusCode::UNAUTHORIZED,
                format!("unauthorized: {why}"),
                Value::Null,
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"prividium\", error=\"invalid_token\""),
            );
            Err(r)
        }
        Err(AuthFailure::Unaudited(why)) => Err(http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("audit log unavailable: {why}"),
            Value::Null,
        )),
        Err(AuthFailure::Limited(r)) => Err(rate_limited(Value::Null, &r)),
    }
}

/// Counts a call by method and outcome and times it. The label is the
/// method's policy action: a known method's own name, a family's name for
/// the rest of it (`debug_*`), `other` for unknown names, so a client cannot
/// mint label values, and no label is allocated per call.
fn record_call_metrics(
    metrics: &CallMetrics,
    action: Option<&'static str>,
    result: &Result<Value, RpcError>,
    started: std::time::Instant,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => match e.code {
            code::FORBIDDEN => "denied",
            code::LIMIT => "limited",
            code::AUDIT_UNAVAILABLE => "unaudited",
            code::PARSE | code::INVALID_REQUEST | code::METHOD_NOT_FOUND | code::INVALID_PARAMS => {
                "invalid"
            }
            code::EXECUTION_REVERTED => "reverted",
            _ => "error",
        },
    };
    metrics.record(
        action.unwrap_or("other"),
        outcome,
        started.elapsed().as_secs_f64(),
    );
}

/// Why a request got no principal.
pub(crate) enum AuthFailure {
    /// Bad or missing credential.
    Refused(String),
    /// The audit trail refused the event.
    Unaudited(String),
    /// Over the principal's (or its organization's) rate.
    Limited(access_control::rate::Refusal),
}

/// The JSON-RPC error for a rate refusal (`-32005`, the wait in
/// `data.retry_after_ms`), and the wait.
pub(crate) fn rate_error(
    refusal: &access_control::rate::Refusal,
) -> (RpcError, Option<std::time::Duration>) {
    use access_control::rate::Refusal;
    let (message, wait) = match refusal {
        Refusal::Later(wait) => (
            format!(
                "rate limit exceeded: retry in {} ms",
                wait.as_millis().max(1)
            ),
            Some(*wait),
        ),
        Refusal::TooLarge { calls, burst } => (
            format!("rate limit exceeded: {calls} calls in one request, at most {burst} allowed"),
            None,
        ),
    };
    let mut err = RpcError::new(code::LIMIT, message);
    err.data = wait.map(|w| json!({ "retry_after_ms": w.as_millis().max(1) as u64 }));
    (err, wait)
}

/// The 429 for a rate refusal: JSON-RPC `-32005` with the wait in
/// `data.retry_after_ms` and a `Retry-After` header (whole seconds, rounded
/// up), so both JSON-RPC clients and HTTP middleware can back off.
pub(crate) fn rate_limited(id: Value, refusal: &access_control::rate::Refusal) -> Response {
    let (err, wait) = rate_error(refusal);
    let mut resp = rpc_response(StatusCode::TOO_MANY_REQUESTS, jsonrpc::failure(id, &err));
    if let Some(w) = wait {
        let secs = w.as_secs() + u64::from(w.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn rpc_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// The id to answer a request-level error with: a single call's own id.
fn request_id(parsed: &RpcBody) -> Value {
    match parsed {
        RpcBody::Single(Ok(c)) => c.id.clone().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn unauthorized(parsed: &RpcBody, why: &str) -> Response {
    let id = request_id(parsed);
    let err = RpcError::new(code::UNAUTHORIZED, format!("unauthorized: {why}"));
    let mut resp = rpc_response(StatusCode::UNAUTHORIZED, jsonrpc::failure(id, &err));
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"prividium\", error=\"invalid_token\""),
    );
    resp
}

fn unaudited(parsed: &RpcBody, why: &str) -> Response {
    let id = request_id(parsed);
    let err = RpcError::new(
        code::AUDIT_UNAVAILABLE,
        format!("audit log unavailable, request refused: {why}"),
    );
    rpc_response(StatusCode::SERVICE_UNAVAILABLE, jsonrpc::failure(id, &err))
}

async fn handle_rpc(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    in_request(peer, &headers, serve_rpc(state, peer, &headers, body)).await
}

async fn serve_rpc(
    state: Arc<RpcState>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let bytes = match to_bytes(body, state.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let err = RpcError::new(
                code::LIMIT,
                format!("request body exceeds {} bytes", state.limits.max_body_bytes),
            );
            return rpc_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                jsonrpc::failure(Value::Null, &err),
            );
        }
    };
    let parsed = match parse_body(&bytes, state.limits.max_batch) {
        Ok(p) => p,
        Err(e) => return rpc_response(StatusCode::OK, jsonrpc::failure(Value::Null, &e)),
    };
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // No token: only the public methods. A token that fails is refused
    // outright, even for public methods, so a client learns its token is bad.
    let all_public = || {
        let calls: Vec<&Result<Call, _>> = match &parsed {
            RpcBody::Single(c) => vec![c],
            RpcBody::Batch(cs) => cs.iter().collect(),
        };
        calls.iter().all(|c| match c {
            Ok(call) => PUBLIC_METHODS.contains(&call.method.as_str()),
            Err(_) => true,
        })
    };
    let calls = match &parsed {
        RpcBody::Single(_) => 1,
        RpcBody::Batch(cs) => cs.len() as u64,
    };
    let caller = if auth_header.is_none() && all_public() {
        if let Err((refusal, _)) = state.access.rate.admit_anonymous(peer.ip(), calls) {
            return rate_limited(request_id(&parsed), &refusal);
        }
        None
    } else {
        match authenticate(&state, auth_header, peer, calls).await {
            Ok(p) => Some(RequestCaller::new(state.access.caller(p))),
            Err(AuthFailure::Refused(why)) => return unauthorized(&parsed, &why),
            Err(AuthFailure::Unaudited(why)) => return unaudited(&parsed, &why),
            Err(AuthFailure::Limited(r)) => return rate_limited(request_id(&parsed), &r),
        }
    };
    let caller = caller.as_ref();
    let state = &state;
    match parsed {
        RpcBody::Single(call) => match answer(state, caller, call).await {
            // Refused for want of an audit trail: the service is unavailable.
            Some(v) if v["error"]["code"] == code::AUDIT_UNAVAILABLE => {
                rpc_response(StatusCode::SERVICE_UNAVAILABLE, v)
            }
            Some(v) => rpc_response(StatusCode::OK, v),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        RpcBody::Batch(calls) => {
            let mut out = Vec::with_capacity(calls.len());
            for call in calls {
                if let Some(v) = answer(state, caller, call).await {
                    out.push(v);
                }
            }
            if out.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                rpc_response(StatusCode::OK, Value::Array(out))
            }
        }
    }
}

async fn answer(
    state: &Arc<RpcState>,
    caller: Option<&RequestCaller>,
    call: Result<Call, jsonrpc::Invalid>,
) -> Option<Value> {
    match call {
        Err(bad) => {
            let (id, e) = *bad;
            Some(jsonrpc::failure(id, &e))
        }
        Ok(call) => {
            let started = std::time::Instant::now();
            // A submission's allowed decisions go into its own event.
            let fold = REQUEST
                .try_with(|ctx| {
                    ctx.reads.method(&call.method);
                    (call.method == "eth_sendRawTransaction").then(|| ctx.fold.clone())
                })
                .ok()
                .flatten();
            if let Some(f) = &fold {
                f.begin();
            }
            let action = method_action(&call.method);
            let allowed = match (caller, action) {
                (Some(rc), Some(action)) => state.access.check_method(rc, action),
                _ => Ok(()),
            };
            let result = match allowed {
                Ok(()) => eth::dispatch(state, caller, &call.method, call.params).await,
                Err(e) => Err(e),
            };
            if let Some(f) = &fold {
                f.flush();
            }
            record_call_metrics(&state.call_metrics, action, &result, started);
            let id = call.id?;
            Some(match result {
                Ok(v) => jsonrpc::success(id, v),
                Err(e) => jsonrpc::failure(id, &e),
            })
        }
    }
}
