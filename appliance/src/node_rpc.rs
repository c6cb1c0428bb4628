//! A JSON-RPC client of a node: its TLS endpoint with the node's own CA and
//! a bearer credential, or any plain endpoint. The load generator and the
//! operator commands that ask a running node (`prividium disclose`) share
//! it.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::{path::Path, time::Duration};

/// One node endpoint.
pub struct NodeRpc {
    http: reqwest::Client,
    url: String,
    auth: Option<String>,
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
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            http = http
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Self {
            http: http.build()?,
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
        let resp = req
            .send()
            .await
            .with_context(|| format!("no answer from {}", self.url))?;
        let status = resp.status();
        let text = resp.text().await?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} answered HTTP {status}: {}",
                self.url,
                text.chars().take(200).collect::<String>()
            )
        })
    }

    /// Calls `method`; the node's error (code and message) becomes this
    /// error.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self.post(&body).await?;
        if let Some(e) = resp.get("error") {
            bail!(
                "{method}: {} (code {})",
                e["message"].as_str().unwrap_or("no message"),
                e["code"]
            );
        }
        resp.get("result")
            .cloned()
            .ok_or_else(|| anyhow!("{method}: no result"))
    }
}
