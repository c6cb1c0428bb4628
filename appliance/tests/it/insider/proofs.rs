//! EIP-1186 proofs and access lists with unmodified web3.py, each proof
//! checked by an independent verifier (py-trie) against the block's
//! stateRoot, under the rights of the caller: see
//! appliance/tests/py/e2e_proofs.py for each step.

use super::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_verify_independently_and_follow_the_callers_rights() {
    let peers = super::live::peers_dir();
    let python = peers.join("venv/bin/python");
    assert!(
        python.is_file(),
        "test peers missing in {}: run deploy/dev/install-peers.sh",
        peers.display()
    );
    let t = Insider::start(&[]).await;
    let trader = t.key("trader", "dev", 5).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/e2e_proofs.py");
    let out = Command::new(python)
        .arg(script)
        .arg(t.dir.path().join("dev.json"))
        .env("TRADER_TOKEN", &trader.token)
        .env(
            "TRADER_PRIVATE_KEY",
            format!("{:#x}", trader.wallet.to_bytes()),
        )
        .output()
        .unwrap();
    script_passed("e2e-proofs", &out);
}
