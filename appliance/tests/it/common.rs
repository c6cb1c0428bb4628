use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use serde_json::{json, Value};
use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) dev: Value,
    pub(crate) http: reqwest::Client,
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_prividium")
}

/// Runs `prividium ARGS --data-dir DIR`.
pub(crate) fn cli(args: &[&str], dir: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PRIVIDIUM_LOG", "error")
        .output()
        .unwrap()
}

/// `prividium doctor --data-dir DIR`: whether every check passed, and the
/// report (one line per check).
pub(crate) fn doctor(dir: &Path) -> (bool, String) {
    doctor_with(dir, &[])
}

/// [`doctor`] with extra environment (a provider's token).
pub(crate) fn doctor_with(dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(bin())
        .args(["doctor", "--data-dir"])
        .arg(dir)
        .env("PRIVIDIUM_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

/// Asserts that `doctor`'s line for check `name` starts with `verdict`
/// (`ok`, `FAIL` or `skip`).
pub(crate) fn assert_check(report: &str, name: &str, verdict: &str) {
    assert!(
        doctor_line(report, name).starts_with(verdict),
        "{name}: {verdict} expected in:\n{report}"
    );
}

/// The report line of check `name`.
pub(crate) fn doctor_line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} line in:\n{report}"))
}

/// `GET {base}/{path}`: (HTTP status, JSON body).
pub(crate) async fn probe(http: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/{path}")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Polls `/readyz` until it answers `status` (30 s at most); its body.
pub(crate) async fn probe_until(http: &reqwest::Client, base: &str, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, body) = probe(http, base, "readyz").await;
        if s == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {s}: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// [`cli`] that must succeed; returns its stdout.
pub(crate) fn cli_ok(args: &[&str], dir: &Path) -> String {
    let out = cli(args, dir);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The 401 an HTTP client gets calling `method` with `token`: the message
/// of its JSON-RPC error (checked to be -32001).
pub(crate) async fn token_refusal(node: &Node, token: &str, method: &str) -> String {
    let (status, body) = node
        .post_as(
            Some(token),
            json!({"jsonrpc":"2.0","id":1,"method":method}).to_string(),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], json!(-32001), "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

impl Node {
    /// Starts `prividium dev` on `dir` and waits until it serves.
    pub(crate) async fn start(dir: &Path) -> Node {
        Self::start_with(dir, &[]).await
    }

    /// Starts `prividium dev` with extra arguments.
    pub(crate) async fn start_with(dir: &Path, extra: &[&str]) -> Node {
        let _ = std::fs::remove_file(dir.join("dev.json"));
        let mut child = Command::new(bin())
            .args(["dev", "--data-dir"])
            .arg(dir)
            .args(["--block-time-ms", "50"])
            .args(if extra.contains(&"--rpc-addr") {
                &[][..]
            } else {
                &["--rpc-addr", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env("PRIVIDIUM_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn prividium");
        let dev_path = dir.join("dev.json");
        // With --prove the zkVM's keys are generated before serving.
        let wait = if extra.contains(&"--prove") { 900 } else { 60 };
        let deadline = Instant::now() + Duration::from_secs(wait);
        while !dev_path.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("prividium exited early: {status}");
            }
            assert!(Instant::now() < deadline, "node did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dev: Value =
            serde_json::from_str(&std::fs::read_to_string(&dev_path).unwrap()).unwrap();
        let ca = reqwest::Certificate::from_pem(
            &std::fs::read(dev["ca_cert"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .unwrap();
        Node { child, dev, http }
    }

    pub(crate) fn url(&self) -> String {
        self.dev["rpc_url"].as_str().unwrap().to_string()
    }

    pub(crate) fn key(&self, i: usize) -> PrivateKeySigner {
        self.dev["accounts"][i]["private_key"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Posts a raw body with the admin key; returns (HTTP status, JSON body).
    pub(crate) async fn post_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let key = self.dev["api_key"].as_str().unwrap().to_owned();
        self.post_as(Some(&key), body).await
    }

    /// Posts a raw body with `token` as bearer (or none).
    pub(crate) async fn post_as(
        &self,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self.http.post(self.url());
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request completes (connection not dropped)");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// One JSON-RPC call as `token`.
    pub(crate) async fn rpc_as(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.post_as(token, body.to_string()).await.1
    }

    pub(crate) async fn rpc(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.post_raw(body.to_string()).await.1
    }

    /// The pending nonce of `a`, read with the admin key.
    pub(crate) async fn pending_nonce(&self, a: Address) -> u64 {
        let v = self
            .rpc("eth_getTransactionCount", json!([a, "pending"]))
            .await;
        u64::from_str_radix(v["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    pub(crate) async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGTERM and wait: a clean shutdown.
    pub(crate) fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean shutdown exits 0, got {status}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn transfer(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: u64,
) -> TxEnvelope {
    signed(
        key,
        chain_id,
        nonce,
        TxKind::Call(to),
        U256::from(value),
        Bytes::new(),
        21_000,
    )
}

/// A signed zero-fee EIP-1559 transaction.
pub(crate) fn signed(
    key: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
        to,
        value,
        input,
        access_list: Default::default(),
    };
    let sig = key.sign_hash_sync(&tx.signature_hash()).unwrap();
    TxEnvelope::Eip1559(tx.into_signed(sig))
}

pub(crate) fn raw(tx: &TxEnvelope) -> String {
    format!("0x{}", alloy_primitives::hex::encode(tx.encoded_2718()))
}

pub(crate) fn hash_of(v: &Value) -> B256 {
    v["result"].as_str().expect("hash result").parse().unwrap()
}

/// Polls for the receipt of `hash` (20 s at most).
pub(crate) async fn wait_receipt(node: &Node, hash: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = node.rpc("eth_getTransactionReceipt", json!([hash])).await;
        if !r["result"].is_null() {
            return r["result"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "transaction {hash} not included: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The block a receipt's transaction is in.
pub(crate) fn block_of(receipt: &Value) -> u64 {
    let hex = receipt["blockNumber"].as_str().expect("a mined receipt");
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).expect("a hex block number")
}

/// Waits until the node accepts a key just created with `prividium keys
/// create` (it picks new keys up within a second).
pub(crate) async fn wait_key_accepted(node: &Node, key: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while node.rpc_as(Some(key), "prividium_whoami", json!([])).await["error"]["code"] == -32001 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key was never accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
