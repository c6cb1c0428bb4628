//! A JSON-RPC client of a node: its TLS endpoint with the node's own CA and
//! a bearer credential, or any plain endpoint. The load generator and the
//! operator commands that ask a running node (`prividium disclose`) share
//! it.

use crate::{LoadgenError, Result};
use serde_json::{json, Value};
use std::{path::Path, time::Duration};

/// One node endpoint.
pub struct NodeRpc {
    http: reqwest::Client,
    url: String,
    auth: Option<String>,
}

impl std::fmt::Debug for NodeRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential stays out of logs.
        f.debug_struct("NodeRpc")
            .field("url", &self.url)
            .field("auth", &self.auth.as_ref().map(|_| "…"))
            .finish()
    }
}

impl NodeRpc {
    /// A client of `url`; `auth` is the `Authorization` header value,
    /// `ca_cert` the PEM root to trust instead of the system's (the node's
    /// own CA), `pool` how many idle connections to keep.
    pub fn new(
        url: &str,
        auth: Option<String>,
        ca_cert: Option<&Path>,
        pool: usize,
    ) -> Result<Self> {
        let mut http = reqwest::Client::builder()
            .use_rustls_tls()
            .pool_max_idle_per_host(pool)
            .timeout(Duration::from_secs(30));
        if let Some(ca) = ca_cert {
            let shown = ca.display();
            let pem = std::fs::read(ca).map_err(|e| LoadgenError::file(&shown, e))?;
            let root =
                reqwest::Certificate::from_pem(&pem).map_err(|source| LoadgenError::Transport {
                    what: format!("{shown} is not a PEM certificate"),
                    source,
                })?;
            http = http
                .tls_built_in_root_certs(false)
                .add_root_certificate(root);
        }
        Ok(Self {
            http: http.build().map_err(|source| LoadgenError::Transport {
                what: "building the HTTP client".into(),
                source,
            })?,
            url: url.to_string(),
            auth,
        })
    }

    /// Posts one JSON-RPC body (a call or a batch) and returns the answer.
    pub async fn post(&self, body: &Value) -> Result<Value> {
        let mut req = self.http.post(&self.url).json(body);
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        let resp = req.send().await.map_err(|source| LoadgenError::Transport {
            what: format!("no answer from {}", self.url),
            source,
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|source| LoadgenError::Transport {
                what: format!("{} answered HTTP {status}, unreadably", self.url),
                source,
            })?;
        serde_json::from_str(&text).map_err(|_| {
            LoadgenError::Node(format!(
                "{} answered HTTP {status}: {}",
                self.url,
                text.chars().take(200).collect::<String>()
            ))
        })
    }

    /// Calls `method`; the node's error (code and message) becomes this
    /// error.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self.post(&body).await?;
        if let Some(e) = resp.get("error") {
            return Err(LoadgenError::Node(format!(
                "{method}: {} (code {})",
                e["message"].as_str().unwrap_or("no message"),
                e["code"]
            )));
        }
        resp.get("result")
            .cloned()
            .ok_or_else(|| LoadgenError::Node(format!("{method}: no result")))
    }
}
