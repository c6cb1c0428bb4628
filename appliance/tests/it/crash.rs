use crate::common::{bin, hash_of, raw, transfer, Node};
use alloy_primitives::{Address, B256};
use serde_json::{json, Value};
use std::{collections::HashMap, process::Command, time::Duration};

/// kill -9 mid-stream: every receipt returned before the kill is still there,
/// in the same block, and the state root equals a clean replay's.
#[tokio::test]
async fn kill_9_loses_nothing_that_was_reported_included() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let key = node.key(0);
    let chain_id = node.dev["chain_id"].as_u64().unwrap();
    let mut included: HashMap<B256, (Value, Value)> = HashMap::new();
    let mut sent = Vec::new();
    let mut nonce = 0;
    // Stream transfers, collecting receipts as they appear, then kill while
    // more are still in flight.
    while included.len() < 40 {
        for _ in 0..5 {
            let tx = transfer(&key, chain_id, nonce, recipient(nonce), 1 + nonce);
            nonce += 1;
            let v = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
            sent.push(hash_of(&v));
        }
        for h in &sent {
            if included.contains_key(h) {
                continue;
            }
            let r = node.rpc("eth_getTransactionReceipt", json!([h])).await;
            if !r["result"].is_null() {
                included.insert(
                    *h,
                    (
                        r["result"]["blockNumber"].clone(),
                        r["result"]["blockHash"].clone(),
                    ),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut node = node;
    node.child.kill().unwrap(); // SIGKILL
    node.child.wait().unwrap();
    drop(node);

    let node = Node::start(dir.path()).await;
    for (h, (number, hash)) in &included {
        let r = node.rpc("eth_getTransactionReceipt", json!([h])).await;
        assert_eq!(&r["result"]["blockNumber"], number, "tx {h} moved blocks");
        assert_eq!(&r["result"]["blockHash"], hash, "tx {h} block hash changed");
        assert_eq!(r["result"]["status"], "0x1");
    }
    // The node accepts the stream again from where the log ended.
    let pending = node
        .rpc("eth_getTransactionCount", json!([key.address(), "pending"]))
        .await;
    let next = u64::from_str_radix(
        pending["result"].as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert!(next >= included.len() as u64);
    let tx = transfer(&key, chain_id, next, recipient(9), 1);
    let h = hash_of(&node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await);
    let mut ok = false;
    for _ in 0..200 {
        let r = node.rpc("eth_getTransactionReceipt", json!([h])).await;
        if !r["result"].is_null() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ok, "post-restart transaction included");
    let health = node.health().await;
    let root = health["state_root"].as_str().unwrap().to_string();
    let height = health["block"].as_u64().unwrap();
    node.stop();

    let out = Command::new(bin())
        .args(["replay", "--data-dir"])
        .arg(dir.path())
        .env("PRIVIDIUM_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("replayed blocks: {height}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("state root: {root}")),
        "replay root differs from the node's {root}:\n{stdout}"
    );

    // Replay is idempotent: a second run prints the same root.
    let again = Command::new(bin())
        .args(["replay", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains(&format!("state root: {root}")));
}

/// Ordinary accounts (low addresses are precompiles and may reject value).
fn recipient(n: u64) -> Address {
    let mut bytes = [0x42u8; 20];
    bytes[19] = (n % 200) as u8;
    Address::from(bytes)
}
