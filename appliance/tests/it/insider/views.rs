//! Filtered views count only what the caller may see (finding 7).

use super::*;

/// Finding 7: a caller shown only its own transaction still saw the
/// block's total gas and size, a receipt's cumulative gas, index and log
/// index over hidden transactions, and every block's gasUsedRatio. Before
/// the fix the trader saw the admin's gas and positions. The per-block
/// reads (receipts of a block, a transaction by position, counts by hash)
/// answer from the same view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_caller_sees_of_blocks_receipts_and_fees_counts_only_its_transactions() {
    let t = Insider::start(&[]).await;
    let admin_key = t.node.key(0);
    let admin = Key {
        token: t.admin(),
        wallet: admin_key.clone(),
    };
    // The emitter belongs to the dev organization, as does the trader.
    let emitter = t.deploy(&admin, deploy_code(&emits_for_caller())).await;
    let trader = t.key("trader", "dev", 5).await;
    let data = transfer_call(Address::repeat_byte(3), 1);
    // Both in one block: the admin's first, then the trader's.
    let (mut hidden, mut mine) = (Value::Null, Value::Null);
    for attempt in 0.. {
        assert!(attempt < 10, "never got both transactions into one block");
        let a = t
            .tx(&admin_key, TxKind::Call(emitter), U256::ZERO, data.clone())
            .await;
        let b = t
            .tx(
                &trader.wallet,
                TxKind::Call(emitter),
                U256::ZERO,
                data.clone(),
            )
            .await;
        let sent = t
            .node
            .post_as(
                Some(&t.admin()),
                json!([
                    {"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[a]},
                    {"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":[b]},
                ])
                .to_string(),
            )
            .await
            .1;
        hidden = t.receipt(&sent[0]).await;
        mine = t.receipt(&sent[1]).await;
        if hidden["blockNumber"] == mine["blockNumber"]
            && hidden["transactionIndex"] == "0x0"
            && mine["transactionIndex"] == "0x1"
        {
            break;
        }
    }
    assert_ne!(
        mine["cumulativeGasUsed"], mine["gasUsed"],
        "admin's view: {mine}"
    );
    let block = mine["blockNumber"].clone();
    let own_gas = mine["gasUsed"].clone();

    // The trader's view of its own receipt.
    let hash = mine["transactionHash"].clone();
    let r = t
        .call(&trader.token, "eth_getTransactionReceipt", json!([hash]))
        .await["result"]
        .clone();
    assert_eq!(r["transactionIndex"], "0x0", "{r}");
    assert_eq!(r["cumulativeGasUsed"], own_gas, "{r}");
    assert_eq!(r["logs"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["logs"][0]["logIndex"], "0x0", "{r}");
    assert_eq!(r["logs"][0]["transactionIndex"], "0x0", "{r}");
    let tx = t
        .call(&trader.token, "eth_getTransactionByHash", json!([hash]))
        .await["result"]
        .clone();
    assert_eq!(tx["transactionIndex"], "0x0", "{tx}");
    let logs = t
        .call(
            &trader.token,
            "eth_getLogs",
            json!([{"fromBlock": block, "toBlock": block}]),
        )
        .await["result"]
        .clone();
    assert_eq!(logs.as_array().unwrap().len(), 1, "{logs}");
    assert_eq!(logs[0]["logIndex"], "0x0", "{logs}");

    // The trader's view of the block: its transaction and gas only.
    let b = t
        .call(&trader.token, "eth_getBlockByNumber", json!([block, false]))
        .await["result"]
        .clone();
    assert_eq!(b["transactions"], json!([hash]), "{b}");
    assert_eq!(b["gasUsed"], own_gas, "{b}");
    assert!(b.get("size").is_none() || b["size"].is_null(), "{b}");
    let full = t
        .node
        .rpc("eth_getBlockByNumber", json!([block, false]))
        .await["result"]
        .clone();
    assert_ne!(full["gasUsed"], own_gas, "the admin sees both");
    assert_ne!(b["transactionsRoot"], full["transactionsRoot"]);
    let count = t
        .call(
            &trader.token,
            "eth_getBlockTransactionCountByNumber",
            json!([block]),
        )
        .await;
    assert_eq!(count["result"], "0x1", "{count}");

    // The per-block reads indexers make answer from the same view: the
    // trader's transaction is at position 0, nothing is at 1, and the
    // block's receipts are its receipt alone, exactly as fetched by hash.
    let block_hash = mine["blockHash"].clone();
    let trader_reads = [
        ("eth_getBlockReceipts", json!([block]), json!([r])),
        ("eth_getBlockReceipts", json!([block_hash]), json!([r])),
        (
            "eth_getTransactionByBlockNumberAndIndex",
            json!([block, "0x0"]),
            tx.clone(),
        ),
        (
            "eth_getTransactionByBlockHashAndIndex",
            json!([block_hash, "0x0"]),
            tx.clone(),
        ),
        (
            "eth_getTransactionByBlockNumberAndIndex",
            json!([block, "0x1"]),
            Value::Null,
        ),
        (
            "eth_getBlockTransactionCountByHash",
            json!([block_hash]),
            json!("0x1"),
        ),
        (
            "eth_getUncleCountByBlockNumber",
            json!([block]),
            json!("0x0"),
        ),
        (
            "eth_getUncleCountByBlockHash",
            json!([block_hash]),
            json!("0x0"),
        ),
        (
            "eth_getUncleCountByBlockHash",
            json!([format!("0x{}", "07".repeat(32))]),
            Value::Null,
        ),
        ("eth_getBlockReceipts", json!(["0xffffff"]), Value::Null),
    ];
    for (method, params, want) in trader_reads {
        let got = t.call(&trader.token, method, params.clone()).await;
        assert_eq!(got["result"], want, "{method} {params}: {got}");
    }
    let admin = |method: &'static str, params: Value| {
        let node = &t.node;
        async move { node.rpc(method, params).await["result"].clone() }
    };
    let count = admin("eth_getBlockTransactionCountByHash", json!([block_hash])).await;
    let receipts = admin("eth_getBlockReceipts", json!([block])).await;
    let first = admin(
        "eth_getTransactionByBlockNumberAndIndex",
        json!([block, "0x0"]),
    )
    .await;
    assert_eq!(count, "0x2");
    assert_eq!(receipts.as_array().map(Vec::len), Some(2), "{receipts}");
    assert_eq!(receipts[1]["transactionHash"], hash);
    assert_eq!(first["hash"], hidden["transactionHash"]);
    let bad = t
        .call(
            &trader.token,
            "eth_getTransactionByBlockNumberAndIndex",
            json!([block, "zz"]),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    // Fee history: the block's ratio is the trader's own gas; a block with
    // only the admin's transaction shows nothing used.
    let only_admin = t
        .receipt(
            &t.send(
                &t.admin(),
                &admin_key,
                TxKind::Call(emitter),
                U256::ZERO,
                data.clone(),
            )
            .await,
        )
        .await["blockNumber"]
        .clone();
    for (n, want_gas) in [(&block, own_gas.clone()), (&only_admin, json!("0x0"))] {
        let h = t
            .call(&trader.token, "eth_feeHistory", json!(["0x1", n, []]))
            .await["result"]
            .clone();
        let gas =
            u64::from_str_radix(want_gas.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        let ratio = h["gasUsedRatio"][0].as_f64().unwrap();
        assert!((ratio - gas as f64 / 60_000_000.0).abs() < 1e-12, "{h}");
        let b = t
            .call(&trader.token, "eth_getBlockByNumber", json!([n, false]))
            .await["result"]
            .clone();
        assert_eq!(b["gasUsed"], want_gas, "{b}");
    }
    assert_eq!(
        t.call(
            &trader.token,
            "eth_getTransactionReceipt",
            json!([hidden["transactionHash"]])
        )
        .await["result"],
        Value::Null
    );
}
