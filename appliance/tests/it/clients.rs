//! Unmodified ethers (npm) and web3.py (PyPI) against the real node.
//! The peers are installed by `deploy/dev/install-peers.sh` (the test script
//! runs it); without them this test fails and says how to install them.

use crate::common::Node;
use std::{path::PathBuf, process::Command};

fn peers_dir() -> PathBuf {
    std::env::var_os("PRIVIDIUM_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/prividium-peers")
        })
}

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("..")
}

#[tokio::test]
async fn ethers_and_web3py_deploy_transfer_and_query_an_erc20() {
    let peers = peers_dir();
    assert!(
        peers.join("node_modules/ethers").is_dir() && peers.join("venv/bin/python").is_file(),
        "test peers missing in {}: run deploy/dev/install-peers.sh",
        peers.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let dev_file = dir.path().join("dev.json");
    let ca = node.dev["ca_cert"].as_str().unwrap().to_string();

    let ethers = Command::new("node")
        .arg(repo().join("appliance/tests/js/e2e-ethers.mjs"))
        .arg(&dev_file)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .env("PRIVIDIUM_PEERS", &peers)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&ethers.stdout);
    assert!(
        ethers.status.success() && out.contains("0 failed"),
        "ethers e2e failed:\n{out}\n{}",
        String::from_utf8_lossy(&ethers.stderr)
    );

    let web3 = Command::new(peers.join("venv/bin/python"))
        .arg(repo().join("appliance/tests/py/e2e_web3.py"))
        .arg(&dev_file)
        .env("PRIVIDIUM_PEERS", &peers)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&web3.stdout);
    assert!(
        web3.status.success() && out.contains("0 failed"),
        "web3.py e2e failed:\n{out}\n{}",
        String::from_utf8_lossy(&web3.stderr)
    );
    node.stop();
}
