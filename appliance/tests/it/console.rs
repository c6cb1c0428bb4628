//! The web console in a real browser (console/tests/console.mjs: Debian's
//! Chromium driven by playwright-core) against this binary and the real
//! test IdP: who signs in how, and what each of them sees.

use crate::common::{raw, transfer, wait_receipt, Node};
use crate::idp::{free_port, Idp};
use serde_json::json;
use std::{path::Path, process::Command};

/// Markup an admin writes into the trail (a principal's name); the auditor
/// must see it as text.
const XSS_TEXT: &str = "User:idp:<script>alert(1)</script><img src=x onerror=alert(2)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let console = format!("https://127.0.0.1:{port}/console/");
    let idp = Idp::start_for_console(free_port(), &tmp.path().join("idp-keys.json"), &console);
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    let addr = format!("127.0.0.1:{port}");
    let node = Node::start_with(
        &dir,
        &[
            "--rpc-addr",
            &addr,
            "--oidc-issuer",
            &idp.issuer,
            "--oidc-min-refresh-secs",
            "0",
        ],
    )
    .await;
    let chain_id = node.dev["chain_id"].as_u64().unwrap();

    // Alice (a trader at the IdP) gets dev account 3 as her wallet and sends
    // a transfer from it; account 4 stays the admin's and sends another.
    let alice_key = node.key(3);
    let wallet = alice_key.address();
    let r = node
        .rpc("prividium_adminUnbindWallet", json!([wallet]))
        .await;
    assert_eq!(r["result"], json!(true), "{r}");
    let r = node
        .rpc(
            "prividium_adminBindWallet",
            json!(["User:idp:alice", wallet, "bank-a"]),
        )
        .await;
    assert_eq!(r["result"], json!(true), "{r}");
    let alice = idp.user_token("alice").await;
    let to = node.key(5).address();
    let sent = node
        .rpc_as(
            Some(&alice),
            "eth_sendRawTransaction",
            json!([raw(&transfer(&alice_key, chain_id, 0, to, 1_000))]),
        )
        .await;
    let alice_tx = sent["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{sent}"))
        .to_owned();
    let other = node
        .rpc(
            "eth_sendRawTransaction",
            json!([raw(&transfer(&node.key(4), chain_id, 0, to, 2_000))]),
        )
        .await;
    let other_tx = other["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{other}"))
        .to_owned();
    wait_receipt(&node, &alice_tx).await;
    wait_receipt(&node, &other_tx).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/tests/console.mjs");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/screenshots");
    let out = Command::new("node")
        .arg(&script)
        .env("CONSOLE_URL", &console)
        .env("ADMIN_KEY", node.dev["api_key"].as_str().unwrap())
        .env("ALICE_TX", &alice_tx)
        .env("OTHER_TX", &other_tx)
        .env("XSS_TEXT", XSS_TEXT)
        .env("SHOTS", &shots)
        .output()
        .expect("node is installed (deploy/dev/install-peers.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    node.stop();
    idp.stop();
}
