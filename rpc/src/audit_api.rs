//! The compliance API over HTTPS: query, export, prove and the signed head.
//! Same bearer authentication as JSON-RPC; each route is decided as the
//! `audit_read` action (auditor and compliance roles in the bank policies),
//! and every read is itself recorded before it is answered.

use super::{http_error as error, in_request, RpcState};
use crate::request;
use audit::{
    action, export, prove_consistency, prove_inclusion, AuditError, Filter, FilterArgs, Outcome,
};
use axum::{
    body::Body,
    extract::{ConnectInfo, Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc};

pub(super) fn routes() -> Router<Arc<RpcState>> {
    Router::new()
        .route("/audit/events", get(events))
        .route("/audit/events/{id}/proof", get(proof))
        .route("/audit/export", get(export_all))
        .route("/audit/consistency", get(consistency))
        .route("/audit/head", get(head))
        .route("/audit/holds", get(holds).post(place_hold))
        .route("/audit/holds/{id}/release", post(release_hold))
}

fn audit_error(e: AuditError) -> Response {
    let status = match &e {
        AuditError::Invalid(_) => StatusCode::BAD_REQUEST,
        AuditError::NotFound(_) => StatusCode::NOT_FOUND,
        AuditError::Proof(audit::merkle::ProofError::OutOfRange(_)) => StatusCode::BAD_REQUEST,
        AuditError::Proof(_) => StatusCode::GONE,
        AuditError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string(), Value::Null)
}

/// Authenticates and decides `cedar_action` (`audit_read`, `audit_hold`).
/// `Err` is the response to send.
async fn authorize(
    state: &RpcState,
    peer: SocketAddr,
    headers: &HeaderMap,
    cedar_action: &str,
) -> Result<Arc<access_control::Principal>, Response> {
    let principal = super::authenticate_http(state, peer, headers).await?;
    let caller = state.access.caller(principal.clone());
    let d = state.access.engine.decide(
        &caller,
        cedar_action,
        &access_control::policy::Resource::Node,
        &access_control::policy::Circumstances::Rpc,
    );
    if !d.allowed {
        let what = match cedar_action {
            "audit_hold" => "place or release legal holds on",
            _ => "read",
        };
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: {principal} may not {what} the audit log (rule {})",
                d.rule
            ),
            json!({ "rule": d.rule }),
        ));
    }
    Ok(principal)
}

/// A place in the trail for `principal`'s next event; `Err` is the 503.
#[allow(clippy::result_large_err)] // the error is the response, sent at once
fn reserve(
    state: &RpcState,
    principal: &access_control::Principal,
) -> Result<audit::Reservation, Response> {
    state.access.trail.reserve(&principal.key()).map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("audit log unavailable, nothing changed: {e}"),
            Value::Null,
        )
    })
}

/// Authenticates, decides `audit_read`, and records the read (`what`,
/// `details`). `Err` is the response to send.
async fn admit(
    state: &RpcState,
    peer: SocketAddr,
    headers: &HeaderMap,
    what: &str,
    details: Value,
) -> Result<(), Response> {
    let principal = authorize(state, peer, headers, "audit_read").await?;
    let event = request::by(&principal, what, Outcome::Allow)
        .resource("audit-log")
        .details(details);
    state
        .access
        .trail
        .record(event)
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), Value::Null))
}

async fn events(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(args): Query<FilterArgs>,
) -> Response {
    in_request(peer, &headers, async {
        let filter = match args.to_filter() {
            Ok(f) => f,
            Err(e) => return audit_error(e),
        };
        let details = json!({ "filter": args });
        if let Err(r) = admit(&state, peer, &headers, action::AUDIT_QUERIED, details).await {
            return r;
        }
        let db = state.access.trail.db();
        match db.query(&filter).await {
            Ok(page) => Json(json!({
                "events": page.events.iter().map(export::event_json).collect::<Vec<_>>(),
                "next": page.next,
            }))
            .into_response(),
            Err(e) => audit_error(e),
        }
    })
    .await
}

async fn export_all(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(args): Query<FilterArgs>,
) -> Response {
    in_request(peer, &headers, async {
        let format: export::Format = match args.format.as_deref().unwrap_or("json").parse() {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, e, Value::Null),
        };
        let mut filter = match args.to_filter() {
            Ok(f) => f,
            Err(e) => return audit_error(e),
        };
        let db = state.access.trail.db().clone();
        let head = match db.latest_head().await {
            Ok(Some(h)) => h,
            Ok(None) => return error(StatusCode::NOT_FOUND, "the audit log is empty", Value::Null),
            Err(e) => return audit_error(e),
        };
        let details = json!({ "filter": args, "tree_size": head.tree_size });
        if let Err(r) = admit(&state, peer, &headers, action::AUDIT_EXPORTED, details).await {
            return r;
        }
        // Everything exported lies under this head, so the export and the
        // head it names are consistent by construction.
        filter.below = Some(head.tree_size);
        filter.limit = Some(audit::store::MAX_PAGE);
        filter.after = None;
        let public = hex::encode(state.access.trail.public_key().as_bytes());
        let head_doc = export::head_json(&head, &public);
        let stream = export_stream(db, filter, format, head_doc.clone());
        let (ctype, ext) = match format {
            export::Format::Csv => ("text/csv; charset=utf-8", "csv"),
            export::Format::JsonLines => ("application/x-ndjson", "jsonl"),
        };
        let mut resp = Body::from_stream(stream).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"audit-{}.{ext}\"",
            head.tree_size
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&head_doc.to_string()) {
            h.insert("x-audit-tree-head", v);
        }
        resp
    })
    .await
}

/// Pages of the export as body chunks; a database failure mid-way ends the
/// body with an error (the client sees a truncated transfer, never a
/// silently short export that looks complete).
fn export_stream(
    db: audit::AuditDb,
    filter: Filter,
    format: export::Format,
    head_doc: Value,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    enum Step {
        Header,
        Page(Filter),
        Trailer,
        Done,
    }
    futures_util::stream::unfold(Step::Header, move |step| {
        let db = db.clone();
        let head_doc = head_doc.clone();
        let filter0 = filter.clone();
        async move {
            match step {
                Step::Header => {
                    let first = format
                        .header()
                        .map(|h| format!("{h}\n"))
                        .unwrap_or_default();
                    Some((Ok(first), Step::Page(filter0)))
                }
                Step::Page(f) => match db.query(&f).await {
                    Ok(page) => {
                        let mut chunk = String::new();
                        for e in &page.events {
                            chunk.push_str(&format.line(e));
                            chunk.push('\n');
                        }
                        let next = match page.next {
                            Some(n) => Step::Page(Filter {
                                after: Some(n),
                                ..f
                            }),
                            None => Step::Trailer,
                        };
                        Some((Ok(chunk), next))
                    }
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), Step::Done)),
                },
                Step::Trailer => {
                    let last = match format {
                        export::Format::Csv => String::new(),
                        export::Format::JsonLines => format!("{head_doc}\n"),
                    };
                    Some((Ok(last), Step::Done))
                }
                Step::Done => None,
            }
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofArgs {
    tree_size: Option<u64>,
}

async fn proof(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(args): Query<ProofArgs>,
) -> Response {
    in_request(peer, &headers, async {
        let details = json!({ "event": id, "tree_size": args.tree_size });
        if let Err(r) = admit(&state, peer, &headers, action::AUDIT_PROVED, details).await {
            return r;
        }
        let db = state.access.trail.db();
        let proof = match prove_inclusion(db, id, args.tree_size).await {
            Ok(p) => p,
            Err(e) => return audit_error(e),
        };
        match db.event(id).await {
            Ok(Some(e)) => {
                Json(json!({ "event": export::event_json(&e), "proof": proof })).into_response()
            }
            Ok(None) => error(
                StatusCode::GONE,
                format!("event {id} was pruned"),
                Value::Null,
            ),
            Err(e) => audit_error(e),
        }
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyArgs {
    from: u64,
    to: Option<u64>,
}

async fn consistency(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(args): Query<ConsistencyArgs>,
) -> Response {
    in_request(peer, &headers, async {
        let details = json!({ "from": args.from, "to": args.to });
        if let Err(r) = admit(&state, peer, &headers, action::AUDIT_PROVED, details).await {
            return r;
        }
        match prove_consistency(state.access.trail.db(), args.from, args.to).await {
            Ok(p) => Json(p).into_response(),
            Err(e) => audit_error(e),
        }
    })
    .await
}

async fn head(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    in_request(peer, &headers, async {
        if let Err(r) = admit(
            &state,
            peer,
            &headers,
            action::AUDIT_QUERIED,
            json!({ "head": true }),
        )
        .await
        {
            return r;
        }
        let public = hex::encode(state.access.trail.public_key().as_bytes());
        match state.access.trail.db().latest_head().await {
            Ok(Some(h)) => Json(export::head_json(&h, &public)).into_response(),
            Ok(None) => error(StatusCode::NOT_FOUND, "the audit log is empty", Value::Null),
            Err(e) => audit_error(e),
        }
    })
    .await
}

async fn holds(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    in_request(peer, &headers, async {
        let details = json!({ "holds": true });
        if let Err(r) = admit(&state, peer, &headers, action::AUDIT_QUERIED, details).await {
            return r;
        }
        match state.access.trail.db().holds().await {
            Ok(list) => Json(json!({ "holds": list })).into_response(),
            Err(e) => audit_error(e),
        }
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewHold {
    /// RFC 3339 time or date, inclusive.
    from: String,
    /// RFC 3339 time or date, exclusive.
    to: String,
    /// Case reference.
    reason: String,
}

/// Longest hold reason kept.
const MAX_REASON: usize = 1_000;

async fn place_hold(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    in_request(peer, &headers, async {
        let principal = match authorize(&state, peer, &headers, "audit_hold").await {
            Ok(p) => p,
            Err(r) => return r,
        };
        let hold: NewHold = match serde_json::from_slice(&body) {
            Ok(h) => h,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("a hold is {{\"from\", \"to\", \"reason\"}}: {e}"),
                    Value::Null,
                )
            }
        };
        if hold.reason.len() > MAX_REASON {
            return error(
                StatusCode::BAD_REQUEST,
                format!("reason is longer than {MAX_REASON} bytes"),
                Value::Null,
            );
        }
        let bound =
            |t: &str, name: &str| audit::time::parse_bound(t).map_err(|e| format!("{name}: {e}"));
        let (from_us, to_us) = match (bound(&hold.from, "from"), bound(&hold.to, "to")) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(why), _) | (_, Err(why)) => {
                return error(StatusCode::BAD_REQUEST, why, Value::Null)
            }
        };
        // The event's place is taken before the hold exists: a hold the
        // trail cannot name is never placed.
        let place = match reserve(&state, &principal) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let db = state.access.trail.db();
        let id = match db
            .place_hold(from_us, to_us, &hold.reason, &principal.key())
            .await
        {
            Ok(id) => id,
            Err(e) => return audit_error(e),
        };
        let event = request::by(&principal, action::HOLD_PLACED, Outcome::Allow)
            .resource(format!("hold:{id}"))
            .details(json!({ "from_us": from_us, "to_us": to_us, "reason": hold.reason }));
        if let Err(e) = state.access.trail.record_reserved(Some(place), event) {
            tracing::error!(error = %e, hold = id, "legal hold placed but its event was lost");
        }
        (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
    })
    .await
}

async fn release_hold(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    in_request(peer, &headers, async {
        let principal = match authorize(&state, peer, &headers, "audit_hold").await {
            Ok(p) => p,
            Err(r) => return r,
        };
        // Released events may be pruned: the release is recorded in a place
        // taken before it happens.
        let place = match reserve(&state, &principal) {
            Ok(p) => p,
            Err(r) => return r,
        };
        match state.access.trail.db().release_hold(id).await {
            Ok(true) => {}
            Ok(false) => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no active hold {id}"),
                    Value::Null,
                )
            }
            Err(e) => return audit_error(e),
        }
        let event = request::by(&principal, action::HOLD_RELEASED, Outcome::Allow)
            .resource(format!("hold:{id}"));
        if let Err(e) = state.access.trail.record_reserved(Some(place), event) {
            tracing::error!(error = %e, hold = id, "legal hold released but its event was lost");
        }
        Json(json!({ "released": id })).into_response()
    })
    .await
}
