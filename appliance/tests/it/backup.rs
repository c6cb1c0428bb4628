//! Online backup and restore, end to end: a backup taken while the node
//! serves a load, restored into a fresh directory that replays to the
//! original node's state root, starts, continues the chain and passes
//! `audit verify`; and a damaged or incomplete backup refused by name.

use crate::at_rest::{contains, files_under, send_recognisable};
use crate::common::{block_of, cli, cli_ok, raw, transfer, wait_receipt, Node};
use alloy_primitives::Address;
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

const PROVE: [&str; 7] = [
    "--prove",
    "--prover-backend",
    "native",
    "--batch-blocks",
    "2",
    "--batch-wait-ms",
    "50",
];

/// Sends transfers from dev account 2 until `stop`; counts those accepted.
fn start_load(
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let key = node.key(2);
        let chain_id = node.dev["chain_id"].as_u64().unwrap();
        let mut nonce = node.pending_nonce(key.address()).await;
        while !stop.load(Ordering::Relaxed) {
            let tx = transfer(&key, chain_id, nonce, Address::repeat_byte(0x42), 1);
            let r = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
            if r["result"].is_string() {
                nonce += 1;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

async fn block_number(node: &Node) -> u64 {
    let v = node.rpc("eth_blockNumber", json!([])).await;
    u64::from_str_radix(v["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

async fn block(node: &Node, n: u64) -> Value {
    node.rpc("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))
        .await["result"]
        .clone()
}

/// `prividium ARGS --data-dir DIR` off the test's runtime (the node under
/// load keeps being served meanwhile): (success, stdout, stderr).
async fn cli_async(args: Vec<String>, dir: PathBuf) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&args, &dir);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// A copy of the backup `from` at `to`, for damaging.
fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let dest = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}

/// `restore` of a bad backup: refused (exit 1) with `expected` in its
/// error, and nothing at the target.
fn refused_restore(backup: &Path, target: &Path, expected: &str) {
    let out = std::process::Command::new(crate::common::bin())
        .args(["restore", "--from"])
        .arg(backup)
        .arg("--data-dir")
        .arg(target)
        .env("PRIVIDIUM_LOG", "error")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    assert!(!target.exists(), "nothing restored from a bad backup");
}

fn line_value<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_into_a_node_that_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start_with(dir.path(), &PROVE).await);
    let (recipient, _, calldata, secret_tx) = send_recognisable(&node).await;

    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let load = start_load(node.clone(), stop.clone(), sent.clone());
    while sent.load(Ordering::Relaxed) < 50 || block_number(&node).await < 5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backup = out.path().join("backup");
    let to = backup.display().to_string();
    let (ok, stdout, stderr) = cli_async(
        vec!["backup".into(), "--to".into(), to.clone()],
        dir.path().into(),
    )
    .await;
    assert!(ok, "backup under load: {stderr}");
    let before = sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sent.load(Ordering::Relaxed) > before,
        "the node kept serving during the backup"
    );
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(stdout.contains("encrypted at rest: yes"), "{stdout}");
    assert!(
        stdout.contains("audit database: audit/audit.db (copied)"),
        "{stdout}"
    );

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("MANIFEST.json")).unwrap()).unwrap();
    let head = manifest["head"]["number"].as_u64().unwrap();
    assert!(head >= 5, "{manifest}");
    let original = block(&node, head).await;
    assert_eq!(original["hash"], manifest["head"]["block_hash"]);
    let paths: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for expected in [
        "blocks.log",
        "state.redb",
        "prover.redb",
        "genesis.json",
        "audit/audit.db",
        "audit/head.json",
        "audit/signing.key",
        "keys/keyring.json",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    // Nothing a transaction carried is readable in the backup.
    let needles = [
        recipient.to_vec(),
        alloy_primitives::hex::encode(recipient).into_bytes(),
        calldata.clone(),
        alloy_primitives::hex::encode(&calldata).into_bytes(),
        secret_tx.as_bytes()[2..].to_vec(),
    ];
    for file in files_under(&backup) {
        let bytes = std::fs::read(&file).unwrap().to_ascii_lowercase();
        for needle in &needles {
            assert!(
                !contains(&bytes, &needle.to_ascii_lowercase()),
                "plaintext in {}",
                file.display()
            );
        }
    }
    // The audit trail of the live node records the backup.
    let mut taken = String::new();
    for _ in 0..50 {
        taken = cli_ok(
            &["audit", "query", "--action", "admin.backup.taken"],
            dir.path(),
        );
        if !taken.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(taken.lines().count(), 1, "{taken}");
    assert!(taken.contains("\"allow\""), "{taken}");

    // A damaged or incomplete backup is refused by name.
    let flipped = out.path().join("flipped");
    copy_tree(&backup, &flipped);
    let log = flipped.join("blocks.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&log, bytes).unwrap();
    refused_restore(
        &flipped,
        &out.path().join("r1"),
        "backup is damaged: blocks.log does not match its recorded SHA-256",
    );
    let missing = out.path().join("missing");
    copy_tree(&backup, &missing);
    std::fs::remove_file(missing.join("audit/signing.key")).unwrap();
    refused_restore(
        &missing,
        &out.path().join("r2"),
        "backup is incomplete: audit/signing.key is missing",
    );

    // Restored, the block log replays to the root the original node
    // reported for the backup's head.
    let restored = out.path().join("restored");
    let said = cli_ok(&["restore", "--from", &to], &restored);
    assert!(said.contains(&format!("head block: {head} ")), "{said}");
    assert!(said.contains("is now current"), "a fresh data key: {said}");
    let replay = cli_ok(&["replay"], &restored);
    assert_eq!(line_value(&replay, "replayed blocks:"), head.to_string());
    assert_eq!(
        line_value(&replay, "state root:"),
        original["stateRoot"].as_str().unwrap()
    );
    Arc::try_unwrap(node).ok().expect("load stopped").stop();

    // The restored node starts at the backup's head, still opens what was
    // sealed before, and continues the chain.
    let node = Node::start_with(&restored, &PROVE).await;
    assert!(block_number(&node).await >= head);
    assert_eq!(
        block(&node, head).await["hash"],
        manifest["head"]["block_hash"]
    );
    let tx = node
        .rpc("eth_getTransactionByHash", json!([secret_tx]))
        .await;
    assert_eq!(
        tx["result"]["input"],
        format!("0x{}", alloy_primitives::hex::encode(&calldata))
    );
    let key = node.key(3);
    let chain_id = node.dev["chain_id"].as_u64().unwrap();
    let nonce = node.pending_nonce(key.address()).await;
    let tx = transfer(&key, chain_id, nonce, Address::repeat_byte(0x43), 7);
    let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
    let receipt = wait_receipt(&node, sent["result"].as_str().unwrap()).await;
    assert_eq!(receipt["status"], "0x1");
    let mined = block_of(&receipt);
    assert!(mined > head);
    node.stop();

    // Its audit trail verifies, and records the restore.
    cli_ok(&["audit", "verify"], &restored);
    let restores = cli_ok(
        &["audit", "query", "--action", "admin.backup.restored"],
        &restored,
    );
    assert_eq!(restores.lines().count(), 1, "{restores}");

    // A stopped node is backed up from its files; a backup never overwrites.
    let again = out.path().join("again");
    let said = cli_ok(&["backup", "--to", &again.display().to_string()], &restored);
    assert!(
        line_value(&said, "head block:")
            .split(' ')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= mined
    );
    let twice = cli(&["backup", "--to", &again.display().to_string()], &restored);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));
    // Nor is a backup kept inside the directory it copies.
    let inside = restored.join("proofs/backup").display().to_string();
    let refused = cli(&["backup", "--to", &inside], &restored);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("inside the data directory"));
    // The copies are the owner's alone, like the data directory.
    use std::os::unix::fs::PermissionsExt;
    for file in files_under(&again) {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
        let mut dir = file.parent().unwrap();
        while dir.starts_with(&again) {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
            dir = dir.parent().unwrap();
        }
    }
}
