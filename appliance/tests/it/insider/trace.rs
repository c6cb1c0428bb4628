//! Tracing for engineers: geth's callTracer and prestateTracer over a
//! reverted token transfer made through a forwarder, for the roles the
//! shipped policies grant (admin, operator) and refused to a trader.

use super::*;
use crate::access::{bank_token_deploy, erc20_transfer, forward, forwarder_deploy, mint_batch};
use alloy_primitives::B256;

const FORWARD: &str = "forward(address,bytes)";

fn trace_opts(tracer: &str) -> Value {
    json!({ "tracer": tracer })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_transfer_traces_to_its_revert_frame_for_operators_only() {
    let t = Insider::start(&[]).await;
    let admin = Key {
        token: t.admin(),
        wallet: t.node.key(0),
    };
    let token = t.deploy(&admin, bank_token_deploy().to_vec()).await;
    let fwd = t.deploy(&admin, forwarder_deploy().to_vec()).await;
    let x = Address::repeat_byte(0x31);
    // More than the whole supply: the token reverts, then the forwarder.
    let too_much = erc20_transfer(x, 2_000_000);
    let sent = t
        .send(
            &admin.token,
            &admin.wallet,
            TxKind::Call(fwd),
            U256::ZERO,
            forward(FORWARD, token, &too_much),
        )
        .await;
    let receipt = t.receipt(&sent).await;
    assert_eq!(receipt["status"], json!("0x0"), "{receipt}");
    let hash = sent["result"].clone();

    let trace = t
        .call(
            &admin.token,
            "debug_traceTransaction",
            json!([hash, trace_opts("callTracer")]),
        )
        .await;
    let root = &trace["result"];
    assert_eq!(root["type"], json!("CALL"), "{trace}");
    assert_eq!(root["from"], json!(admin.wallet.address()), "{trace}");
    assert_eq!(root["to"], json!(fwd), "{trace}");
    assert_eq!(root["error"], json!("execution reverted"), "{trace}");
    assert_eq!(root["revertReason"], json!("forward failed"), "{trace}");
    assert_eq!(root["gasUsed"], receipt["gasUsed"], "{trace}");
    let inner = &root["calls"][0];
    assert_eq!(inner["type"], json!("CALL"), "{trace}");
    assert_eq!(
        (&inner["from"], &inner["to"]),
        (&json!(fwd), &json!(token)),
        "{trace}"
    );
    assert_eq!(
        inner["input"],
        json!(Bytes::from(too_much.clone())),
        "{trace}"
    );
    assert_eq!(inner["error"], json!("execution reverted"), "{trace}");
    // The token's custom error InsufficientBalance(address,uint256,uint256).
    let selector = &keccak256("InsufficientBalance(address,uint256,uint256)")[..4];
    let output = inner["output"]
        .as_str()
        .unwrap_or_else(|| panic!("{trace}"));
    assert!(
        output.starts_with(&format!("0x{}", alloy_primitives::hex::encode(selector))),
        "{trace}"
    );

    // Only the top frame when asked.
    let top = t
        .call(
            &admin.token,
            "debug_traceTransaction",
            json!([hash, {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": true}}]),
        )
        .await;
    assert!(top["result"]["calls"].is_null(), "{top}");

    // The accounts before it: the sender's nonce, the two contracts' code,
    // the one token slot it read.
    let block = receipt["blockNumber"].clone();
    let pre = t
        .call(
            &admin.token,
            "debug_traceTransaction",
            json!([hash, trace_opts("prestateTracer")]),
        )
        .await;
    let before = format!("{:#x}", hex_to_u64(&block) - 1);
    let sender = format!("{:#x}", admin.wallet.address());
    let nonce = t
        .call(
            &admin.token,
            "eth_getTransactionCount",
            json!([sender, before]),
        )
        .await;
    assert_eq!(
        pre["result"][&sender]["nonce"],
        json!(hex_to_u64(&nonce["result"])),
        "{pre}"
    );
    let code = t
        .call(&admin.token, "eth_getCode", json!([token, "latest"]))
        .await;
    assert_eq!(
        pre["result"][format!("{token:#x}")]["code"],
        code["result"],
        "{pre}"
    );
    // balanceOf (slot 3) of the forwarder, the token's msg.sender: empty.
    let mut key = fwd.into_word().to_vec();
    key.extend_from_slice(&U256::from(3).to_be_bytes::<32>());
    let slot = format!("{:#x}", keccak256(&key));
    assert_eq!(
        pre["result"][format!("{token:#x}")]["storage"],
        json!({ slot: B256::ZERO }),
        "{pre}"
    );

    // The block, and a call that would succeed (the forwarder given tokens
    // to pass on).
    let whole = t
        .call(
            &admin.token,
            "debug_traceBlockByNumber",
            json!([block, trace_opts("callTracer")]),
        )
        .await;
    assert_eq!(whole["result"][0]["txHash"], hash, "{whole}");
    assert_eq!(whole["result"][0]["result"], trace["result"], "{whole}");
    let minted = t
        .send(
            &admin.token,
            &admin.wallet,
            TxKind::Call(token),
            U256::ZERO,
            mint_batch(fwd, 100).into(),
        )
        .await;
    assert_eq!(t.receipt(&minted).await["status"], json!("0x1"));
    let call = t
        .call(
            &admin.token,
            "debug_traceCall",
            json!([
                {"from": admin.wallet.address(), "to": fwd, "data": forward(FORWARD, token, &erc20_transfer(x, 5))},
                "latest",
                trace_opts("callTracer")
            ]),
        )
        .await;
    assert!(call["result"]["error"].is_null(), "{call}");
    assert_eq!(call["result"]["calls"][0]["to"], json!(token), "{call}");

    // Operators may; traders may not.
    let operator = t.key("operator", "dev", 0).await;
    let by_operator = t
        .call(
            &operator.token,
            "debug_traceTransaction",
            json!([hash, trace_opts("callTracer")]),
        )
        .await;
    assert_eq!(by_operator["result"], trace["result"], "{by_operator}");
    let trader = t.key("trader", "dev", 0).await;
    let refused = t
        .call(
            &trader.token,
            "debug_traceTransaction",
            json!([hash, trace_opts("callTracer")]),
        )
        .await;
    denied(&refused, "default-deny");

    // Bad input: no tracer, an unknown one, an unknown transaction.
    for (params, code) in [
        (json!([hash]), -32602),
        (json!([hash, trace_opts("4byteTracer")]), -32602),
        (
            json!([B256::repeat_byte(7), trace_opts("callTracer")]),
            -32000,
        ),
    ] {
        let r = t.call(&admin.token, "debug_traceTransaction", params).await;
        assert_eq!(r["error"]["code"], json!(code), "{r}");
    }
}

fn hex_to_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}
