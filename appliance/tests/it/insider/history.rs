//! Reads at older blocks: a balance, a nonce, a storage slot, code and an
//! eth_call answer as of the block asked, after later blocks changed them,
//! from the state history the derive stage keeps; `prividium replay`
//! rebuilds it and the same questions get the same answers. The same
//! rights apply as at the head.

use super::*;
use crate::common::bin;
use std::process::Command;

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(
        v["result"]
            .as_str()
            .unwrap_or_else(|| panic!("no result: {v}"))
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

fn block_of(receipt: &Value) -> u64 {
    u64::from_str_radix(
        receipt["blockNumber"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap()
}

/// What the test asks at each block, and what it must hear.
struct Asked {
    x: Address,
    probe: Address,
    storer: Address,
    admin: Address,
    other: Address,
    funded: u64,
    topped_up: u64,
    deployed: u64,
    stored_again: u64,
}

async fn check(node: &Node, token: &str, a: &Asked) {
    let rpc = |method: &'static str, params: Value| node.rpc_as(Some(token), method, params);
    let at = |n: u64| format!("{n:#x}");
    // Balances: none before, 1,000 after the first transfer, 3,000 after the second.
    for (block, want) in [
        (at(a.funded - 1), 0u64),
        (at(a.funded), 1_000),
        (at(a.topped_up - 1), 1_000),
        (at(a.topped_up), 3_000),
        ("latest".into(), 3_000),
    ] {
        let got = rpc("eth_getBalance", json!([a.x, block])).await;
        assert_eq!(word(&got), U256::from(want), "balance at {block}: {got}");
        // The same through the EVM: an eth_call at that block.
        let call = rpc(
            "eth_call",
            json!([{"from": a.admin, "to": a.probe, "data": a.x.into_word()}, block]),
        )
        .await;
        assert_eq!(word(&call), U256::from(want), "eth_call at {block}: {call}");
    }
    // A slot overwritten later: the old value at the old block.
    let first = rpc(
        "eth_getStorageAt",
        json!([a.storer, "0x0", at(a.stored_again - 1)]),
    )
    .await;
    assert_eq!(
        word(&first),
        U256::from_be_slice(a.admin.as_slice()),
        "{first}"
    );
    let now = rpc("eth_getStorageAt", json!([a.storer, "0x0", "latest"])).await;
    assert_eq!(word(&now), U256::from_be_slice(a.other.as_slice()), "{now}");
    // No code before the deployment, the runtime after.
    let before = rpc("eth_getCode", json!([a.probe, at(a.deployed - 1)])).await;
    assert_eq!(before["result"], json!("0x"), "{before}");
    let after = rpc("eth_getCode", json!([a.probe, at(a.deployed)])).await;
    assert_eq!(
        after["result"],
        json!(Bytes::from(BALANCE_OF_ARGUMENT.to_vec())),
        "{after}"
    );
    // The admin's nonce grows with each of its transactions.
    let then = hex_u64(&rpc("eth_getTransactionCount", json!([a.admin, at(a.funded)])).await);
    let later = hex_u64(&rpc("eth_getTransactionCount", json!([a.admin, "latest"])).await);
    assert!(then < later, "nonce {then} then, {later} now");
    // A proof at the old block shows the old balance.
    let proof = rpc("eth_getProof", json!([a.x, [], at(a.funded)])).await;
    assert_eq!(proof["result"]["balance"], json!("0x3e8"), "{proof}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_older_blocks_answer_as_of_that_block_and_replay_keeps_them() {
    let t = Insider::start(&[]).await;
    let admin = Key {
        token: t.admin(),
        wallet: t.node.key(0),
    };
    let other = Key {
        token: t.admin(),
        wallet: t.node.key(1),
    };
    let created = t
        .receipt(
            &t.send(
                &admin.token,
                &admin.wallet,
                TxKind::Create,
                U256::ZERO,
                deploy_code(&BALANCE_OF_ARGUMENT).into(),
            )
            .await,
        )
        .await;
    let probe: Address = created["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deployed = block_of(&created);
    let storer = t.deploy(&admin, deploy_code(&FALLBACK_STORES_CALLER)).await;
    t.receipt(
        &t.send(
            &admin.token,
            &admin.wallet,
            TxKind::Call(storer),
            U256::ZERO,
            Bytes::new(),
        )
        .await,
    )
    .await;
    let x = Address::repeat_byte(0x5a);
    let funded = block_of(
        &t.receipt(
            &t.send(
                &admin.token,
                &admin.wallet,
                TxKind::Call(x),
                U256::from(1_000),
                Bytes::new(),
            )
            .await,
        )
        .await,
    );
    let stored_again = block_of(
        &t.receipt(
            &t.send(
                &other.token,
                &other.wallet,
                TxKind::Call(storer),
                U256::ZERO,
                Bytes::new(),
            )
            .await,
        )
        .await,
    );
    let topped_up = block_of(
        &t.receipt(
            &t.send(
                &admin.token,
                &admin.wallet,
                TxKind::Call(x),
                U256::from(2_000),
                Bytes::new(),
            )
            .await,
        )
        .await,
    );
    assert!(deployed < funded && funded < stored_again && stored_again < topped_up);
    let asked = Asked {
        x,
        probe,
        storer,
        admin: admin.wallet.address(),
        other: other.wallet.address(),
        funded,
        topped_up,
        deployed,
        stored_again,
    };
    check(&t.node, &admin.token, &asked).await;

    // A trader asking about someone else's wallet at an old block is
    // refused as at the head.
    let trader = t.key("trader", "dev", 0).await;
    let refused = t
        .call(
            &trader.token,
            "eth_getBalance",
            json!([x, format!("{funded:#x}")]),
        )
        .await;
    assert_eq!(refused["error"]["code"], json!(-32003), "{refused}");

    // Rebuilt from the block log: the same answers.
    let Insider { node, dir, .. } = t;
    let token = admin.token.clone();
    node.stop();
    let out = Command::new(bin())
        .args(["replay", "--data-dir"])
        .arg(dir.path())
        .env("PRIVIDIUM_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = Node::start(dir.path()).await;
    let token = node.dev["api_key"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or(token);
    check(&node, &token, &asked).await;
    node.stop();
}

/// With `--history-keep-blocks`, a block older than the kept window is
/// refused by name (and /health says where the history starts), while the
/// window still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_history_refuses_older_blocks_by_name() {
    let t = Insider::start(&["--history-keep-blocks", "4"]).await;
    let admin = Key {
        token: t.admin(),
        wallet: t.node.key(0),
    };
    let x = Address::repeat_byte(0x77);
    let mut blocks = Vec::new();
    for _ in 0..12 {
        let sent = t
            .send(
                &admin.token,
                &admin.wallet,
                TxKind::Call(x),
                U256::from(5),
                Bytes::new(),
            )
            .await;
        blocks.push(block_of(&t.receipt(&sent).await));
    }
    let head = *blocks.last().unwrap();
    // Pruning runs after a block is written, so it may still be moving the
    // start when the last receipt shows; no block follows, so it settles.
    let mut health = t.node.health().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = t.node.health().await;
        if again["history_from"] == health["history_from"] || Instant::now() > deadline {
            break;
        }
        health = again;
    }
    // Pruning runs in slices: the start is at most a slice behind the window.
    let from = health["history_from"]
        .as_u64()
        .unwrap_or_else(|| panic!("{health}"));
    assert!(
        from > blocks[0] && from + 4 <= head,
        "history from {from}, head {head}"
    );
    let old = t
        .call(
            &admin.token,
            "eth_getBalance",
            json!([x, format!("{:#x}", blocks[0])]),
        )
        .await;
    assert_eq!(old["error"]["code"], json!(-32000), "{old}");
    assert!(
        old["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("history starts at block {from}")),
        "{old}"
    );
    let recent = t
        .call(
            &admin.token,
            "eth_getBalance",
            json!([x, format!("{:#x}", head - 2)]),
        )
        .await;
    let want = 5 * blocks.iter().filter(|b| **b <= head - 2).count() as u64;
    assert_eq!(word(&recent), U256::from(want), "{recent}");
}
