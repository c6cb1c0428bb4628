//! The compliance API over HTTPS: query, export, prove and the signed head.
//! Same bearer authentication as JSON-RPC; each route is decided as the
//! `audit_read` action (auditor and compliance roles in the bank policies),
//! and every read is itself recorded before it is answered.

use super::{
    asker::{refuse, Asker},
    http_error, RpcState,
};
use crate::request;
use audit::{
    action, export, prove_consistency, prove_inclusion, AuditError, Filter, FilterArgs, Outcome,
};
use axum::{
    body::Body,
    extract::{Path, Query},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

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
    refuse(status, e.to_string())
}

impl Asker {
    /// Authenticates and decides `cedar_action` (`audit_read`, `audit_hold`).
    async fn audit_principal(
        &self,
        cedar_action: &str,
    ) -> Result<Arc<access_control::Principal>, Response> {
        let principal = self.principal().await?;
        let caller = self.state.access.caller(principal.clone());
        let d = self.state.access.engine.decide(
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
            return Err(http_error(
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

    /// Authenticates, decides `audit_read`, and records the read (`what`,
    /// `details`) before anything is answered.
    async fn admit(&self, what: &str, details: Value) -> Result<(), Response> {
        let principal = self.audit_principal("audit_read").await?;
        let event = request::by(&principal, what, Outcome::Allow)
            .resource("audit-log")
            .details(details);
        self.trail()
            .record(event)
            .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
    }

    /// A place in the trail for `principal`'s next event, taken before the
    /// change it records happens: a change the trail cannot name is never
    /// made.
    #[allow(clippy::result_large_err)] // the error is the response, sent at once
    fn reserve(
        &self,
        principal: &access_control::Principal,
    ) -> Result<audit::Reservation, Response> {
        self.trail().reserve(&principal.key()).map_err(|e| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("audit log unavailable, nothing changed: {e}"),
            )
        })
    }

    fn trail(&self) -> &audit::Trail {
        &self.state.access.trail
    }

    fn public_key(&self) -> String {
        hex::encode(self.trail().public_key().as_bytes())
    }
}

async fn events(ask: Asker, Query(args): Query<FilterArgs>) -> Response {
    ask.answer(async {
        let filter = args.to_filter().map_err(audit_error)?;
        ask.admit(action::AUDIT_QUERIED, json!({ "filter": args }))
            .await?;
        let page = ask.trail().db().query(&filter).await.map_err(audit_error)?;
        Ok(Json(json!({
            "events": page.events.iter().map(export::event_json).collect::<Vec<_>>(),
            "next": page.next,
        }))
        .into_response())
    })
    .await
}

async fn export_all(ask: Asker, Query(args): Query<FilterArgs>) -> Response {
    ask.answer(async {
        let format: export::Format = args
            .format
            .as_deref()
            .unwrap_or("json")
            .parse()
            .map_err(|e: String| refuse(StatusCode::BAD_REQUEST, e))?;
        let mut filter = args.to_filter().map_err(audit_error)?;
        let db = ask.trail().db().clone();
        let head = db
            .latest_head()
            .await
            .map_err(audit_error)?
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "the audit log is empty"))?;
        let details = json!({ "filter": args, "tree_size": head.tree_size });
        ask.admit(action::AUDIT_EXPORTED, details).await?;
        // Everything exported lies under this head, so the export and the
        // head it names are consistent by construction.
        filter.below = Some(head.tree_size);
        filter.limit = Some(audit::store::MAX_PAGE);
        filter.after = None;
        let head_doc = export::head_json(&head, &ask.public_key());
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
        Ok(resp)
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

async fn proof(ask: Asker, Path(id): Path<u64>, Query(args): Query<ProofArgs>) -> Response {
    ask.answer(async {
        let details = json!({ "event": id, "tree_size": args.tree_size });
        ask.admit(action::AUDIT_PROVED, details).await?;
        let db = ask.trail().db();
        let proof = prove_inclusion(db, id, args.tree_size)
            .await
            .map_err(audit_error)?;
        match db.event(id).await.map_err(audit_error)? {
            Some(e) => Ok(
                Json(json!({ "event": export::event_json(&e), "proof": proof })).into_response(),
            ),
            None => Err(refuse(StatusCode::GONE, format!("event {id} was pruned"))),
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

async fn consistency(ask: Asker, Query(args): Query<ConsistencyArgs>) -> Response {
    ask.answer(async {
        let details = json!({ "from": args.from, "to": args.to });
        ask.admit(action::AUDIT_PROVED, details).await?;
        let p = prove_consistency(ask.trail().db(), args.from, args.to)
            .await
            .map_err(audit_error)?;
        Ok(Json(p).into_response())
    })
    .await
}

async fn head(ask: Asker) -> Response {
    ask.answer(async {
        ask.admit(action::AUDIT_QUERIED, json!({ "head": true }))
            .await?;
        match ask.trail().db().latest_head().await.map_err(audit_error)? {
            Some(h) => Ok(Json(export::head_json(&h, &ask.public_key())).into_response()),
            None => Err(refuse(StatusCode::NOT_FOUND, "the audit log is empty")),
        }
    })
    .await
}

async fn holds(ask: Asker) -> Response {
    ask.answer(async {
        ask.admit(action::AUDIT_QUERIED, json!({ "holds": true }))
            .await?;
        let list = ask.trail().db().holds().await.map_err(audit_error)?;
        Ok(Json(json!({ "holds": list })).into_response())
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

async fn place_hold(ask: Asker, body: axum::body::Bytes) -> Response {
    ask.answer(async {
        let principal = ask.audit_principal("audit_hold").await?;
        let hold: NewHold = serde_json::from_slice(&body).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("a hold is {{\"from\", \"to\", \"reason\"}}: {e}"),
            )
        })?;
        if hold.reason.len() > MAX_REASON {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("reason is longer than {MAX_REASON} bytes"),
            ));
        }
        let bound =
            |t: &str, name: &str| audit::time::parse_bound(t).map_err(|e| format!("{name}: {e}"));
        let (from_us, to_us) = match (bound(&hold.from, "from"), bound(&hold.to, "to")) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(why), _) | (_, Err(why)) => return Err(refuse(StatusCode::BAD_REQUEST, why)),
        };
        let place = ask.reserve(&principal)?;
        let id = ask
            .trail()
            .db()
            .place_hold(from_us, to_us, &hold.reason, &principal.key())
            .await
            .map_err(audit_error)?;
        let event = request::by(&principal, action::HOLD_PLACED, Outcome::Allow)
            .resource(format!("hold:{id}"))
            .details(json!({ "from_us": from_us, "to_us": to_us, "reason": hold.reason }));
        if let Err(e) = ask.trail().record_reserved(Some(place), event) {
            tracing::error!(error = %e, hold = id, "legal hold placed but its event was lost");
        }
        Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
    })
    .await
}

async fn release_hold(ask: Asker, Path(id): Path<i64>) -> Response {
    ask.answer(async {
        let principal = ask.audit_principal("audit_hold").await?;
        // Released events may be pruned: the release is recorded in a place
        // taken before it happens.
        let place = ask.reserve(&principal)?;
        if !ask
            .trail()
            .db()
            .release_hold(id)
            .await
            .map_err(audit_error)?
        {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no active hold {id}"),
            ));
        }
        let event = request::by(&principal, action::HOLD_RELEASED, Outcome::Allow)
            .resource(format!("hold:{id}"));
        if let Err(e) = ask.trail().record_reserved(Some(place), event) {
            tracing::error!(error = %e, hold = id, "legal hold released but its event was lost");
        }
        Ok(Json(json!({ "released": id })).into_response())
    })
    .await
}
