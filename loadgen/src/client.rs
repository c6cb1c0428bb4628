//! A minimal JSON-RPC client for the benchmark: a node's authenticated TLS
//! endpoint (from its dev.json) or any plain endpoint with a funded key
//! (anvil), so both are driven by the same code.

use crate::{node_rpc::NodeRpc, LoadgenError, Result};
use alloy_primitives::{Address, Bytes, B256};
use serde_json::{json, Value};
use std::{path::PathBuf, time::Duration};

/// dev.json fields the bench needs.
#[derive(Debug, serde::Deserialize)]
struct DevFile {
    rpc_url: String,
    api_key: String,
    ca_cert: PathBuf,
    accounts: Vec<DevAccount>,
}

#[derive(Debug, serde::Deserialize)]
struct DevAccount {
    private_key: String,
}

/// Where the load goes and who pays for the setup.
pub(super) struct Target {
    pub(super) url: String,
    /// `Authorization` header value, if the endpoint wants one.
    pub(super) auth: Option<String>,
    /// PEM root to trust for https (the node's own CA).
    pub(super) ca_cert: Option<PathBuf>,
    /// Private key (hex) of a funded account.
    pub(super) funder_key: String,
}

impl Target {
    /// The node described by a `prividium dev` dev.json.
    pub(super) fn from_dev_file(path: &std::path::Path) -> Result<Self> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| LoadgenError::file(&shown, e))?;
        let dev: DevFile =
            serde_json::from_str(&text).map_err(|e| LoadgenError::file(&shown, e))?;
        let funder_key = dev
            .accounts
            .into_iter()
            .next()
            .ok_or_else(|| LoadgenError::file(&shown, "no accounts"))?
            .private_key;
        Ok(Self {
            url: dev.rpc_url,
            auth: Some(format!("Bearer {}", dev.api_key)),
            ca_cert: Some(dev.ca_cert),
            funder_key,
        })
    }
}

/// A JSON-RPC hex quantity (`"0x1a"`).
fn quantity(v: &Value) -> Result<u128> {
    let bad = || LoadgenError::Node(format!("expected a hex quantity, got {v}"));
    let s = v.as_str().ok_or_else(bad)?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| bad())
}

pub(super) struct Client {
    rpc: NodeRpc,
    pub(super) funder_key: String,
}

impl Client {
    pub(super) fn new(target: Target) -> Result<Self> {
        Ok(Self {
            rpc: NodeRpc::new(&target.url, target.auth, target.ca_cert.as_deref(), 256)?,
            funder_key: target.funder_key,
        })
    }

    async fn post(&self, body: &Value) -> Result<Value> {
        self.rpc.post(body).await
    }

    pub(super) async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.rpc.call(method, params).await
    }

    pub(super) async fn send_raw(&self, raw: &Bytes) -> Result<B256> {
        let v = self.call("eth_sendRawTransaction", json!([raw])).await?;
        serde_json::from_value(v).map_err(LoadgenError::node)
    }

    /// Sends `raws` as one JSON-RPC batch; one result per transaction, in
    /// order (answers are matched by id, whatever order they come in).
    pub(super) async fn send_raw_batch(&self, raws: &[Bytes]) -> Result<Vec<Result<B256>>> {
        let body = Value::Array(
            raws.iter()
                .enumerate()
                .map(|(i, raw)| {
                    json!({"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": [raw]})
                })
                .collect(),
        );
        let resp = self.post(&body).await?;
        let Value::Array(answers) = resp else {
            return Err(LoadgenError::Node(format!("batch answered with {resp}")));
        };
        let mut out: Vec<Result<B256>> = (0..raws.len())
            .map(|_| Err(LoadgenError::node("no answer in the batch")))
            .collect();
        for a in answers {
            let Some(slot) = a["id"].as_u64().and_then(|i| out.get_mut(i as usize)) else {
                continue;
            };
            *slot = match (a.get("result"), a.get("error")) {
                (_, Some(e)) => Err(LoadgenError::Node(format!("eth_sendRawTransaction: {e}"))),
                (Some(r), None) => serde_json::from_value(r.clone()).map_err(LoadgenError::node),
                (None, None) => Err(LoadgenError::node("eth_sendRawTransaction: no result")),
            };
        }
        Ok(out)
    }

    pub(super) async fn chain_id(&self) -> Result<u64> {
        Ok(quantity(&self.call("eth_chainId", json!([])).await?)? as u64)
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

    /// Waits for a receipt; fails on a reverted transaction. Patient: anvil
    /// takes seconds per block once it holds 50,000 funded accounts.
    pub(super) async fn wait_success(&self, hash: B256) -> Result<Value> {
        for _ in 0..30_000 {
            let r = self
                .call("eth_getTransactionReceipt", json!([hash]))
                .await?;
            if !r.is_null() {
                if r["status"] != "0x1" {
                    return Err(LoadgenError::Setup(format!(
                        "setup transaction {hash} reverted"
                    )));
                }
                return Ok(r);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(LoadgenError::Setup(format!(
            "setup transaction {hash} not included in 10 minutes"
        )))
    }
}
