//! The web console (`console/` at the top of the repository), served under
//! `/console/` on the RPC port from files compiled into the binary: the
//! appliance has no internet and no second server to install.
//!
//! The console is static HTML, CSS and JavaScript; everything it shows
//! comes from the same authenticated, policy-checked and audited endpoints
//! every other client uses (JSON-RPC, `/audit/…`, `/proofs/…`). Serving it
//! needs no token; `config.json` says only which IdPs it may sign in with.
//!
//! Every response carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, no inline script, network only to this
//! origin and the configured IdPs) and `Referrer-Policy: no-referrer`, so
//! the authorization code in the sign-in redirect never leaves the page.

use super::RpcState;
use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Json, Router,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// The console's files: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/app.js"),
    ),
    (
        "views.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/views.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/admin.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/audit.js"),
    ),
    (
        "merkle.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/merkle.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../console/app.css"),
    ),
];

pub(super) fn routes() -> Router<Arc<RpcState>> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(index))
        .route("/console/config.json", get(config))
        .route("/console/{asset}", get(asset))
}

/// Origins (scheme, host, port) of the IdPs the console signs in with.
fn idp_origins(state: &RpcState) -> Vec<String> {
    state
        .access
        .authn
        .issuers()
        .iter()
        .filter(|i| i.config().console_client_id.is_some())
        .filter_map(|i| origin(&i.config().issuer))
        .collect()
}

/// `scheme://host[:port]` of `url`, when it is an http(s) URL whose
/// authority is plain enough to place in a header.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    plain.then(|| format!("{scheme}://{authority}"))
}

/// The security headers every console response carries.
fn harden(state: &RpcState, mut resp: Response) -> Response {
    let connect = std::iter::once("'self'".to_owned())
        .chain(idp_origins(state))
        .collect::<Vec<_>>()
        .join(" ");
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    let h: &mut HeaderMap = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

fn serve(state: &RpcState, name: &str) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => harden(
            state,
            ([(header::CONTENT_TYPE, *ctype)], *body).into_response(),
        ),
        None => harden(
            state,
            (StatusCode::NOT_FOUND, "no such console file").into_response(),
        ),
    }
}

async fn index(State(state): State<Arc<RpcState>>) -> Response {
    serve(&state, "index.html")
}

async fn asset(State(state): State<Arc<RpcState>>, Path(name): Path<String>) -> Response {
    serve(&state, &name)
}

/// What the console needs before anyone signs in: the IdPs it may send
/// people to (issuer, public client id, the audience the node requires).
async fn config(State(state): State<Arc<RpcState>>) -> Response {
    let issuers: Vec<Value> = state
        .access
        .authn
        .issuers()
        .iter()
        .filter_map(|i| {
            let c = i.config();
            let client = c.console_client_id.as_ref()?;
            Some(json!({
                "name": c.name,
                "issuer": c.issuer,
                "clientId": client,
                "audience": c.audience,
            }))
        })
        .collect();
    harden(&state, Json(json!({ "issuers": issuers })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_scheme_host_and_port_only() {
        assert_eq!(
            origin("https://idp.bank.example/realms/chain").as_deref(),
            Some("https://idp.bank.example")
        );
        assert_eq!(
            origin("http://127.0.0.1:4444").as_deref(),
            Some("http://127.0.0.1:4444")
        );
        // Nothing that could end the header value or add a CSP source.
        assert_eq!(origin("https://a.example; script-src *"), None);
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(origin("https:///x"), None);
    }

    #[test]
    fn every_asset_has_a_type_and_the_page_loads_no_inline_script() {
        let index = ASSETS.iter().find(|a| a.0 == "index.html").unwrap().2;
        assert!(!index.contains("<script>"), "inline script in index.html");
        assert!(!index.contains(" on"), "inline event handler in index.html");
        for (name, ctype, body) in ASSETS {
            assert!(!body.is_empty(), "{name}");
            assert!(ctype.contains("charset=utf-8"), "{name}");
        }
    }
}
