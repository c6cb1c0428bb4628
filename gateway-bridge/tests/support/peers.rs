//! Settlement peers for tests: a real anvil (npm `@foundry-rs/anvil`) whose
//! chain survives restarts, a proxy recording every byte sent to it, and a
//! search for private data in what was sent. Shared with the appliance's
//! end-to-end tests (`#[path]`).
#![allow(dead_code, unreachable_pub, missing_docs)]

use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// anvil's first two well-known dev keys (public test keys, funded).
pub const OWNER_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const SUBMITTER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

pub fn key(hex: &str) -> PrivateKeySigner {
    hex.parse().unwrap()
}

pub use test_support::free_port;

fn anvil_bin() -> PathBuf {
    let peers = std::env::var("PRIVIDIUM_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/prividium-peers")
        });
    let bin = peers.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        bin.is_file(),
        "{} missing: run deploy/dev/install-peers.sh",
        bin.display()
    );
    bin
}

/// A real anvil whose chain survives restarts (`--state`).
pub struct Anvil {
    pub port: u16,
    state: PathBuf,
    child: Option<Child>,
}

impl Anvil {
    pub fn start(dir: &Path) -> Self {
        let mut a = Self {
            port: free_port(),
            state: dir.join("anvil-state.json"),
            child: None,
        };
        a.restart();
        a
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts on the same port with the saved chain.
    pub fn restart(&mut self) {
        let mut child = Command::new(anvil_bin())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--chain-id", "31337", "--state"])
            .arg(&self.state)
            .args(["--state-interval", "1", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start anvil");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "anvil did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whoever answered must be our anvil, not another listener on the
        // port (ours would have exited, unable to bind).
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "anvil exited at start (port {} taken?)",
            self.port
        );
        self.child = Some(child);
    }

    /// Stops gracefully, so anvil writes its state.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP proxy that keeps every byte sent through it to the upstream.
pub struct Recorder {
    pub port: u16,
    pub sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    pub async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            log.lock().unwrap().extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self { port, sent }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).to_lowercase()
    }
}

/// What a batch of the test chain leaked into, were it leaked: the
/// private addresses, amounts, calldata and transaction hashes.
#[derive(Default)]
pub struct Secrets(pub Vec<(String, String)>);

impl Secrets {
    /// Every form the value could take on the wire (hex, padded, decimal).
    pub fn add_bytes(&mut self, what: &str, bytes: &[u8]) {
        self.0
            .push((what.into(), alloy_primitives::hex::encode(bytes)));
    }
    pub fn add_amount(&mut self, what: &str, wei: U256) {
        self.0.push((format!("{what} (decimal)"), wei.to_string()));
        self.0.push((format!("{what} (hex)"), format!("{wei:x}")));
        self.0.push((
            format!("{what} (word)"),
            alloy_primitives::hex::encode(wei.to_be_bytes::<32>()),
        ));
    }
    pub fn found_in(&self, haystack: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, needle)| haystack.contains(needle.as_str()))
            .map(|(what, needle)| format!("{what}: {needle}"))
            .collect()
    }
}

/// One JSON-RPC call to `url` (anvil), with curl so tests need no client.
pub fn rpc(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let out = Command::new("curl")
        .args(["-s", "-H", "content-type: application/json", "-d"])
        .arg(body.to_string())
        .arg(url)
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON-RPC answer");
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

/// Gives `address` 100 ETH on anvil.
pub fn fund(url: &str, address: alloy_primitives::Address) {
    let wei = U256::from(100u64) * U256::from(10u64).pow(U256::from(18));
    rpc(
        url,
        "anvil_setBalance",
        serde_json::json!([address, format!("{wei:#x}")]),
    );
}

/// The input of every distinct transaction the bridge sent through
/// `recorder` (`eth_sendRawTransaction`), in order; a re-send with higher
/// fees carries the same input and is counted once.
pub fn sent_calls(recorder: &Recorder) -> Vec<Vec<u8>> {
    use alloy_consensus::{Transaction as _, TxEnvelope};
    use alloy_eips::eip2718::Decodable2718;
    let raw = String::from_utf8_lossy(&recorder.sent.lock().unwrap()).into_owned();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for part in raw.split("\r\n\r\n").skip(1) {
        // A body runs until the next request's headers.
        let body = part.split("POST /").next().unwrap_or_default();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            continue;
        };
        let calls = match v {
            serde_json::Value::Array(calls) => calls,
            one => vec![one],
        };
        for call in calls {
            if call["method"] != "eth_sendRawTransaction" {
                continue;
            }
            let hex = call["params"][0].as_str().unwrap();
            let bytes = alloy_primitives::hex::decode(hex).unwrap();
            let tx = TxEnvelope::decode_2718(&mut bytes.as_slice()).unwrap();
            let input = tx.input().to_vec();
            if !inputs.contains(&input) {
                inputs.push(input);
            }
        }
    }
    inputs
}
