//! A minimal authenticated JSON-RPC client for the benchmark.

use alloy_primitives::{Address, Bytes, B256};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::{path::Path, time::Duration};

/// dev.json fields the bench needs.
#[derive(Debug, serde::Deserialize)]
pub(super) struct DevFile {
    pub(super) rpc_url: String,
    pub(super) api_key: String,
    pub(super) ca_cert: std::path::PathBuf,
    pub(super) chain_id: u64,
    pub(super) accounts: Vec<DevAccount>,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct DevAccount {
    pub(super) private_key: String,
}

/// A JSON-RPC hex quantity (`"0x1a"`).
fn quantity(v: &Value) -> Result<u128> {
    let s = v
        .as_str()
        .ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    Ok(u128::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

pub(super) struct Client {
    http: reqwest::Client,
    url: String,
    auth: String,
    pub(super) dev: DevFile,
}

impl Client {
    pub(super) fn from_dev_file(path: &Path) -> Result<Self> {
        let dev: DevFile = serde_json::from_str(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?;
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&dev.ca_cert)?)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            url: dev.rpc_url.clone(),
            auth: format!("Bearer {}", dev.api_key),
            dev,
        })
    }

    pub(super) async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .http
            .post(&self.url)
            .header("Authorization", &self.auth)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        if let Some(e) = resp.get("error") {
            bail!("{method}: {e}");
        }
        resp.get("result")
            .cloned()
            .ok_or_else(|| anyhow!("{method}: no result"))
    }

    pub(super) async fn send_raw(&self, raw: &Bytes) -> Result<B256> {
        let v = self.call("eth_sendRawTransaction", json!([raw])).await?;
        Ok(serde_json::from_value(v)?)
    }

    pub(super) async fn block_number(&self) -> Result<u64> {
        Ok(quantity(&self.call("eth_blockNumber", json!([])).await?)? as u64)
    }

    pub(super) async fn gas_price(&self) -> Result<u128> {
        quantity(&self.call("eth_gasPrice", json!([])).await?)
    }

    pub(super) async fn nonce(&self, address: &Address) -> Result<u64> {
        let v = self
            .call("eth_getTransactionCount", json!([address, "pending"]))
            .await?;
        Ok(quantity(&v)? as u64)
    }

    pub(super) async fn block_tx_hashes(&self, number: u64) -> Result<Vec<B256>> {
        let v = self
            .call(
                "eth_getBlockByNumber",
                json!([format!("0x{number:x}"), false]),
            )
            .await?;
        Ok(serde_json::from_value(v["transactions"].clone()).unwrap_or_default())
    }

    /// Waits for a receipt; fails on a reverted transaction.
    pub(super) async fn wait_success(&self, hash: B256) -> Result<Value> {
        for _ in 0..3_000 {
            let r = self
                .call("eth_getTransactionReceipt", json!([hash]))
                .await?;
            if !r.is_null() {
                if r["status"] != "0x1" {
                    bail!("setup transaction {hash} reverted");
                }
                return Ok(r);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("setup transaction {hash} not included in 60 s")
    }
}
