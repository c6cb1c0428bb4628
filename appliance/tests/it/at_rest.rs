//! Encryption at rest, end to end: what lands on disk, tampering, rotation,
//! and the sealed state while the key provider is away.

use crate::common::{
    assert_check, bin, cli_ok, doctor_with, hash_of, probe, probe_until, raw, signed, wait_receipt,
    Node,
};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[path = "../../../encryption/tests/support/bao.rs"]
mod bao;

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Data-key versions found in the block log's frames and in every sealed
/// file (`PVDSEAL1`) under `dir`; record layout `1 | version u32 BE | …`.
fn sealed_key_versions(dir: &Path) -> std::collections::BTreeSet<u32> {
    let version = |sealed: &[u8]| u32::from_be_bytes(sealed[1..5].try_into().unwrap());
    let mut out = std::collections::BTreeSet::new();
    let log = std::fs::read(dir.join("blocks.log")).unwrap();
    let mut pos = 8; // magic
    while pos + 8 <= log.len() {
        let len = u32::from_be_bytes(log[pos..pos + 4].try_into().unwrap()) as usize;
        let payload = &log[pos + 8..pos + 8 + len];
        assert_eq!(payload[0], 2, "sealed frame");
        out.insert(version(&payload[9..]));
        pos += 8 + len;
    }
    for path in files_under(dir) {
        let bytes = std::fs::read(&path).unwrap();
        if let Some(sealed) = bytes.strip_prefix(b"PVDSEAL1".as_slice()) {
            out.insert(version(sealed));
        }
    }
    out
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sends a transfer with a fresh recipient, a distinctive amount and
/// distinctive calldata; returns (recipient, amount, calldata, tx hash).
pub(crate) async fn send_recognisable(node: &Node) -> (Address, U256, Vec<u8>, String) {
    let recipient = Address::random();
    let amount = U256::from(0x001f_2e3d_4c5b_6a79_u64);
    let mut calldata = b"PRIVIDIUM-SECRET-CALLDATA:".to_vec();
    calldata.extend_from_slice(&rand::random::<[u8; 24]>());
    let chain_id = node.dev["chain_id"].as_u64().unwrap();
    let tx = signed(
        &node.key(0),
        chain_id,
        0,
        TxKind::Call(recipient),
        amount,
        Bytes::from(calldata.clone()),
        100_000,
    );
    let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
    let hash = format!("{:#x}", hash_of(&sent));
    let receipt = wait_receipt(node, &hash).await;
    assert_eq!(receipt["status"], "0x1");
    (recipient, amount, calldata, hash)
}

#[tokio::test]
async fn nothing_a_transaction_carries_is_readable_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    // The prover's queue and checkpoint hold every balance: scanned too.
    let prove = [
        "--prove",
        "--prover-backend",
        "native",
        "--batch-blocks",
        "1",
        "--batch-wait-ms",
        "50",
    ];
    let node = Node::start_with(dir.path(), &prove).await;
    let (recipient, amount, calldata, hash) = send_recognisable(&node).await;
    let checkpoint = dir.path().join("prover-checkpoint.bin");
    for _ in 0..200 {
        if checkpoint.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Funded in the genesis allocations.
    let funded = node.key(1).address();
    let sender = node.key(0).address();
    node.stop();

    let amount_be = amount.to_be_bytes_trimmed_vec();
    let hash_bytes = alloy_primitives::hex::decode(&hash).unwrap();
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("recipient", recipient.to_vec()),
        (
            "recipient hex",
            alloy_primitives::hex::encode(recipient).into_bytes(),
        ),
        (
            "recipient checksummed",
            recipient.to_checksum(None).as_bytes()[2..].to_vec(),
        ),
        ("amount", amount_be.clone()),
        (
            "amount hex",
            alloy_primitives::hex::encode(&amount_be).into_bytes(),
        ),
        ("amount decimal", amount.to_string().into_bytes()),
        ("calldata", calldata.clone()),
        (
            "calldata hex",
            alloy_primitives::hex::encode(&calldata).into_bytes(),
        ),
        ("tx hash", hash_bytes.clone()),
        ("tx hash hex", hash.as_bytes()[2..].to_vec()),
    ];
    let files = files_under(dir.path());
    assert!(files.iter().any(|f| f.ends_with("blocks.log")));
    assert!(files.iter().any(|f| f.ends_with("state.redb")));
    assert!(files.iter().any(|f| f.ends_with("prover.redb")));
    assert!(
        std::fs::read(&checkpoint).unwrap().starts_with(b"PVDSEAL1"),
        "the prover checkpoint is a sealed file"
    );
    let mut hits = Vec::new();
    // The audit trail included: it names the transaction and the sender,
    // sealed, with keyed hashes for lookups.
    assert!(files.iter().any(|f| f.ends_with("audit.db")));
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (what, needle) in &needles {
            if contains(&bytes, needle) {
                hits.push(format!("{what} in {}", file.display()));
            }
        }
    }
    assert!(hits.is_empty(), "plaintext found on disk: {hits:#?}");
    // Nor are the genesis allocations or the sender, outside the dev files
    // that hand the funded keys to the developer.
    let funded_hex = alloy_primitives::hex::encode(funded);
    let sender_hex = alloy_primitives::hex::encode(sender);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        if name.starts_with("dev") {
            continue;
        }
        let bytes = std::fs::read(file).unwrap().to_ascii_lowercase();
        assert!(
            !contains(&bytes, funded_hex.as_bytes()),
            "genesis account in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, sender_hex.as_bytes()),
            "sender in {}",
            file.display()
        );
    }

    // And it all reads back after a restart.
    let node = Node::start(dir.path()).await;
    let balance = node
        .rpc("eth_getBalance", json!([recipient, "latest"]))
        .await;
    assert_eq!(balance["result"], format!("{amount:#x}"));
    let tx = node.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(
        tx["result"]["input"],
        format!("0x{}", alloy_primitives::hex::encode(&calldata))
    );
    // The sealed audit trail still answers a compliance query by
    // transaction, and names the sender.
    let found = cli_ok(
        &["audit", "query", "--resource", &format!("tx:{hash}")],
        dir.path(),
    );
    let lines: Vec<Value> = found
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{found}");
    assert_eq!(lines[0]["action"], "tx.submitted");
    assert!(lines[0]["details"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains(&sender_hex));
    node.stop();
}

/// Runs `prividium dev` expecting it to refuse to start; returns stderr.
fn start_refused(dir: &Path) -> String {
    let out = Command::new(bin())
        .args(["dev", "--data-dir"])
        .arg(dir)
        .args(["--rpc-addr", "127.0.0.1:0"])
        .env("PRIVIDIUM_LOG", "error")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "node started on damaged data");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn tampered_block_log_or_wrong_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    send_recognisable(&node).await;
    node.stop();

    // Flip one ciphertext byte of the first block and fix up its CRC, as
    // someone editing the file would.
    let log = dir.path().join("blocks.log");
    let good = std::fs::read(&log).unwrap();
    let mut bad = good.clone();
    let len = u32::from_be_bytes(bad[8..12].try_into().unwrap()) as usize;
    bad[16 + len / 2] ^= 0x40;
    let crc = crc32fast::hash(&bad[16..16 + len]);
    bad[12..16].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(&log, &bad).unwrap();
    let err = start_refused(dir.path());
    assert!(
        err.contains("block 1") && err.contains("authentication failed"),
        "{err}"
    );
    std::fs::write(&log, &good).unwrap();

    // The wrong passphrase for the key file.
    let pass = dir.path().join("keys/dev-passphrase");
    let real = std::fs::read(&pass).unwrap();
    std::fs::write(&pass, "somebody else's passphrase").unwrap();
    let err = start_refused(dir.path());
    assert!(err.contains("wrong passphrase"), "{err}");
    std::fs::write(&pass, real).unwrap();

    // The sealed genesis, edited.
    let genesis = dir.path().join("genesis.json");
    let sealed = std::fs::read(&genesis).unwrap();
    let mut edited = sealed.clone();
    let last = edited.len() - 1;
    edited[last] ^= 1;
    std::fs::write(&genesis, &edited).unwrap();
    let err = start_refused(dir.path());
    assert!(err.contains("genesis.json cannot be opened"), "{err}");
    std::fs::write(&genesis, &sealed).unwrap();

    // Restored, it starts and serves again.
    Node::start(dir.path()).await.stop();
}

fn keys_cmd(args: &[&str], dir: &Path) -> String {
    let out = Command::new(bin())
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PRIVIDIUM_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn data_key_rotation_while_running_keeps_everything_readable() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let (first, amount, _, _) = send_recognisable(&node).await;

    assert!(keys_cmd(&["rotate-dek"], dir.path()).contains("data key v2 is now current"));
    let status = keys_cmd(&["status"], dir.path());
    assert!(status.contains("current data key: v2"), "{status}");
    // The node switches to v2 by itself; a transfer after the switch works.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let chain_id = node.dev["chain_id"].as_u64().unwrap();
    let second = Address::random();
    let tx = crate::common::transfer(&node.key(1), chain_id, 0, second, 5);
    let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
    wait_receipt(&node, &format!("{:#x}", hash_of(&sent))).await;
    // API keys still work (the access documents are sealed too), and the
    // KEK can be rotated underneath without touching records.
    keys_cmd(&["rotate-kek"], dir.path());
    assert!(keys_cmd(&["list"], dir.path()).contains("admin"));
    // The running node still reaches its keys after the KEK rotation: a
    // second DEK rotation is picked up and used.
    assert!(keys_cmd(&["rotate-dek"], dir.path()).contains("data key v3 is now current"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let third = Address::random();
    let tx = crate::common::transfer(&node.key(2), chain_id, 0, third, 7);
    let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
    wait_receipt(&node, &format!("{:#x}", hash_of(&sent))).await;

    // The node moves every record onto v3 and retires v1 and v2.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = keys_cmd(&["status"], dir.path());
        let retired = status.lines().filter(|l| l.contains("retired")).count();
        if retired == 2 && status.contains("re-encryption: none pending") {
            break;
        }
        assert!(Instant::now() < deadline, "old keys not retired: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    node.stop();
    assert_eq!(
        sealed_key_versions(dir.path()),
        std::collections::BTreeSet::from([3]),
        "block log frames and sealed files all under v3"
    );

    // Only v3 is unwrapped now; the chain, its genesis, the access
    // documents and the audit signing key all open with it.
    let node = Node::start(dir.path()).await;
    for (who, want) in [
        (first, format!("{amount:#x}")),
        (second, "0x5".to_string()),
        (third, "0x7".to_string()),
    ] {
        let b = node.rpc("eth_getBalance", json!([who, "latest"])).await;
        assert_eq!(b["result"], want);
    }
    node.stop();
    let status = keys_cmd(&["status"], dir.path());
    assert!(status.contains("current data key: v3"), "{status}");
    assert!(status.contains("re-encryption: none pending"), "{status}");
    let retired = crate::common::cli_ok(
        &[
            "audit",
            "query",
            "--action",
            "key.dek.retired",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert!(
        retired.lines().count() >= 2,
        "header and an event: {retired}"
    );
    // Every audit row was moved too: the whole log opens and verifies
    // with v3 alone.
    let verified = crate::common::cli(&["audit", "verify"], dir.path());
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// `eth_chainId` without a token (public): (HTTP status, body).
async fn chain_id(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = http
        .post(base)
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn stays_sealed_until_the_key_provider_answers() {
    if bao::bao_bin().is_none() {
        eprintln!("skipped: bao not installed (run deploy/dev/install-peers.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bao_port = bao::free_port();
    let rpc_port = bao::free_port();
    let mut child = Command::new(bin())
        .args(["dev", "--data-dir"])
        .arg(dir.path())
        .args(["--rpc-addr", &format!("127.0.0.1:{rpc_port}")])
        .args(["--encryption", "transit", "--transit-address"])
        .arg(format!("http://127.0.0.1:{bao_port}"))
        .env("BAO_TOKEN", "root")
        .env("PRIVIDIUM_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{rpc_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            break (r.status().as_u16(), r.json::<Value>().await.unwrap());
        }
        assert!(Instant::now() < deadline, "listener never came up");
        assert!(
            child.try_wait().unwrap().is_none(),
            "node exited while sealed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.0, 503);
    assert_eq!(health.1["status"], "sealed");
    // Waiting for keys is alive (no restart) but not ready, and says why.
    let (live, _) = probe(&http, &base, "livez").await;
    assert_eq!(live, 200);
    let (ready, body) = probe(&http, &base, "readyz").await;
    assert_eq!(ready, 503, "{body}");
    assert_eq!(body["failing"][0]["component"], "keys", "{body}");
    let (status, body) = chain_id(&http, &base).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], -32010);
    assert!(
        !dir.path().join("state.redb").exists(),
        "nothing opened while sealed"
    );

    // The KMS comes up: the node unseals by itself and serves.
    let kms = bao::Bao::dev_on(bao_port);
    let deadline = Instant::now() + Duration::from_secs(40);
    while !dir.path().join("dev.json").exists() {
        assert!(Instant::now() < deadline, "node did not unseal");
        assert!(child.try_wait().unwrap().is_none(), "node exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(probe(&http, &base, "readyz").await.0, 200);

    // The KMS hangs: the node keeps serving on the keys in memory, but is
    // no longer ready and names the key provider; it recovers by itself.
    kms.freeze(true);
    let body = probe_until(&http, &base, 503).await;
    assert_eq!(body["failing"][0]["component"], "key-provider", "{body}");
    assert!(
        !body.to_string().contains(&bao_port.to_string()),
        "the public probe names no address: {body}"
    );
    assert_eq!(chain_id(&http, &base).await.0, 200);
    kms.freeze(false);
    probe_until(&http, &base, 200).await;
    let keyring: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("keys/keyring.json")).unwrap())
            .unwrap();
    assert!(keyring["deks"][0]["wrapped"]
        .as_str()
        .unwrap()
        .starts_with("vault:v1:"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());

    // The doctor unseals with the same provider: fine while OpenBao runs,
    // and names the key provider once it is gone.
    let doctor = || doctor_with(dir.path(), &[("BAO_TOKEN", "root")]);
    let (ok, said) = doctor();
    assert!(ok, "{said}");
    assert_check(&said, "key provider", "ok");
    drop(kms);
    let (ok, said) = doctor();
    assert!(!ok, "{said}");
    assert_check(&said, "key provider", "FAIL");
    assert_check(&said, "audit database", "ok");
}
