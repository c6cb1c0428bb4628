//! Live updates: polled filters over HTTP and subscriptions over
//! WebSocket show each principal what its reads would show it, nothing
//! more, and no client can grow the node's memory through them.

use super::*;
use std::process::Command;

fn id(v: &Value) -> String {
    v["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no filter id: {v}"))
        .to_owned()
}

fn list(v: &Value) -> Vec<Value> {
    v["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no list: {v}"))
        .clone()
}

/// A trader polls its own filters and sees only its own log and pending
/// transaction; the admin's filter sees both logs; nobody else can read,
/// or remove, a principal's filter; an unpolled filter expires; the cap
/// per principal holds. Bad ids get clear errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_filters_belong_to_their_principal_expire_and_show_only_what_it_may_see() {
    let t = Insider::start(&["--filter-idle-secs", "8"]).await;
    let admin = Key {
        token: t.admin(),
        wallet: t.node.key(0),
    };
    let emitter = t.deploy(&admin, deploy_code(&emits_for_caller())).await;
    let trader = t.key("trader", "dev", 5).await;
    let logs_filter = json!([{"address": emitter, "fromBlock": "0x0"}]);
    let tf = id(&t
        .call(&trader.token, "eth_newFilter", logs_filter.clone())
        .await);
    let af = id(&t
        .call(&admin.token, "eth_newFilter", logs_filter.clone())
        .await);
    let tb = id(&t.call(&trader.token, "eth_newBlockFilter", json!([])).await);
    let tp = id(&t
        .call(&trader.token, "eth_newPendingTransactionFilter", json!([]))
        .await);

    let data = transfer_call(Address::repeat_byte(3), 1);
    let sent_by_admin = t
        .send(
            &admin.token,
            &admin.wallet,
            TxKind::Call(emitter),
            U256::ZERO,
            data.clone(),
        )
        .await;
    t.receipt(&sent_by_admin).await;
    let sent_by_trader = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(emitter),
            U256::ZERO,
            data,
        )
        .await;
    let mine = t.receipt(&sent_by_trader).await;

    let changes = |token: &str, id: &str| {
        let token = token.to_owned();
        let id = id.to_owned();
        let t = &t;
        async move { t.call(&token, "eth_getFilterChanges", json!([id])).await }
    };
    let seen = list(&changes(&trader.token, &tf).await);
    assert_eq!(seen.len(), 1, "the trader saw {seen:?}");
    let wallet_topic = format!("{:#x}", trader.wallet.address().into_word());
    assert_eq!(seen[0]["topics"][1], json!(wallet_topic), "{seen:?}");
    assert_eq!(list(&changes(&admin.token, &af).await).len(), 2);
    // Polled again: nothing new.
    assert!(list(&changes(&trader.token, &tf).await).is_empty());
    let blocks = list(&changes(&trader.token, &tb).await);
    assert!(
        blocks.contains(&mine["blockHash"]),
        "{blocks:?} lacks {mine}"
    );
    let pending = list(&changes(&trader.token, &tp).await);
    assert!(pending.contains(&sent_by_trader["result"]), "{pending:?}");
    assert!(
        !pending.contains(&sent_by_admin["result"]),
        "the admin's pending transaction reached the trader: {pending:?}"
    );
    // The whole range of a log filter, as eth_getLogs shows it to the trader.
    let all = t
        .call(&trader.token, "eth_getFilterLogs", json!([tf]))
        .await;
    let direct = t.call(&trader.token, "eth_getLogs", logs_filter).await;
    assert_eq!(all["result"], direct["result"]);
    assert_eq!(list(&all).len(), 1);

    // Another principal's filter does not exist for the admin either.
    let other = changes(&admin.token, &tf).await;
    assert_eq!(other["error"]["code"], json!(-32000), "{other}");
    assert_eq!(other["error"]["message"], json!("filter not found"));
    let removed = t
        .call(&admin.token, "eth_uninstallFilter", json!([tf]))
        .await;
    assert_eq!(removed["result"], json!(false), "{removed}");
    assert!(changes(&trader.token, &tf).await["result"].is_array());

    // Bad ids and the wrong kind of filter.
    assert_eq!(
        changes(&trader.token, "0x1234").await["error"]["code"],
        json!(-32000)
    );
    assert_eq!(
        changes(&trader.token, "zz").await["error"]["code"],
        json!(-32602)
    );
    let wrong = t
        .call(&trader.token, "eth_getFilterLogs", json!([tb]))
        .await;
    assert_eq!(wrong["error"]["code"], json!(-32602), "{wrong}");

    // The cap: 64 per principal (the trader holds 3 already).
    let mut made = 0;
    let refusal = loop {
        let r = t.call(&trader.token, "eth_newBlockFilter", json!([])).await;
        if r["error"].is_object() {
            break r;
        }
        made += 1;
        assert!(made <= 64, "no cap on filters");
    };
    assert_eq!(made, 61, "{refusal}");
    assert_eq!(refusal["error"]["code"], json!(-32005), "{refusal}");
    // The admin is not held back by the trader's filters.
    assert!(t.call(&admin.token, "eth_newBlockFilter", json!([])).await["result"].is_string());
    let freed = t
        .call(&trader.token, "eth_uninstallFilter", json!([tb]))
        .await;
    assert_eq!(freed["result"], json!(true));
    assert!(t.call(&trader.token, "eth_newBlockFilter", json!([])).await["result"].is_string());

    // Unpolled for longer than --filter-idle-secs: gone.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let expired = changes(&trader.token, &tp).await;
    assert_eq!(
        expired["error"]["message"],
        json!("filter not found"),
        "{expired}"
    );
}

pub(super) fn peers_dir() -> std::path::PathBuf {
    std::env::var_os("PRIVIDIUM_PEERS")
        .map(Into::into)
        .unwrap_or_else(|| {
            Path::new(&std::env::var("HOME").unwrap()).join(".cache/prividium-peers")
        })
}

/// viem (http and webSocket transports), ethers' WebSocketProvider and raw
/// WebSocket clients against the real node: see appliance/tests/js/
/// e2e-subscriptions.mjs for each step (a trader's subscription gets only
/// events naming its wallets, a slow subscriber is disconnected with the
/// node's memory flat, a revoked key's socket is closed, bad input is
/// answered or closed with a clear code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_reach_viem_ethers_and_websockets_filtered_by_rights() {
    let peers = peers_dir();
    assert!(
        peers.join("node_modules/viem").is_dir() && peers.join("node_modules/ethers").is_dir(),
        "test peers missing in {}: run deploy/dev/install-peers.sh",
        peers.display()
    );
    let t = Insider::start(&["--ws-send-queue", "16"]).await;
    let trader = t.key("trader", "dev", 5).await;
    let wallet = trader.wallet.address();
    let keys = cli_ok(&["keys", "list"], t.dir.path());
    let key_id = keys
        .lines()
        .find(|l| l.to_lowercase().contains(&format!("{wallet:#x}")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the trader's key is not listed:\n{keys}"))
        .to_owned();
    let revoke = format!(
        "'{}' keys revoke {key_id} --data-dir '{}'",
        crate::common::bin(),
        t.dir.path().display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/e2e-subscriptions.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(t.dir.path().join("dev.json"))
        .env(
            "NODE_EXTRA_CA_CERTS",
            t.node.dev["ca_cert"].as_str().unwrap(),
        )
        .env("PRIVIDIUM_PEERS", &peers)
        .env("TRADER_TOKEN", &trader.token)
        .env("TRADER_WALLET", format!("{wallet:#x}"))
        .env(
            "TRADER_PRIVATE_KEY",
            format!("{:#x}", trader.wallet.to_bytes()),
        )
        .env("NODE_PID", t.node.child.id().to_string())
        .env("REVOKE_CMD", revoke)
        .env("PRIVIDIUM_LOG", "error")
        .output()
        .unwrap();
    script_passed("e2e-subscriptions", &out);
}
