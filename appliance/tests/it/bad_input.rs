use crate::common::{raw, transfer, Node};
use serde_json::{json, Value};

fn code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected a JSON-RPC error, got {v}"))
}

#[tokio::test]
async fn bad_input_gets_json_rpc_errors_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;

    let (status, v) = node.post_raw("{\"jsonrpc\":").await;
    assert_eq!((status, code(&v)), (200, -32700), "malformed JSON");

    let (_, v) = node
        .post_raw(r#"{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}"#)
        .await;
    assert_eq!(code(&v), -32600, "wrong version");

    let v = node.rpc("eth_frobnicate", json!([])).await;
    assert_eq!(code(&v), -32601, "unknown method");

    let v = node
        .rpc("eth_getBalance", json!(["0xnothex", "latest"]))
        .await;
    assert_eq!(code(&v), -32602, "invalid hex");

    let v = node
        .rpc("eth_sendRawTransaction", json!(["0xdeadbeef"]))
        .await;
    assert_eq!(code(&v), -32602, "invalid RLP: {v}");

    // A valid transaction with its signature's s value corrupted.
    let tx = transfer(&node.key(0), 7777, 0, alloy_primitives::Address::ZERO, 1);
    let mut bytes = alloy_primitives::hex::decode(raw(&tx).trim_start_matches("0x")).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    bytes[n - 2] ^= 0xff;
    let v = node
        .rpc(
            "eth_sendRawTransaction",
            json!([format!("0x{}", alloy_primitives::hex::encode(bytes))]),
        )
        .await;
    assert!(
        v["error"].is_object(),
        "bad signature must be rejected: {v}"
    );
    assert!(v["result"].is_null());

    let wrong_chain = transfer(&node.key(0), 1, 0, alloy_primitives::Address::ZERO, 1);
    let v = node
        .rpc("eth_sendRawTransaction", json!([raw(&wrong_chain)]))
        .await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("chain id"),
        "{v}"
    );

    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":["{}"]}}"#,
        "a".repeat(6 * 1024 * 1024)
    );
    let (status, v) = node.post_raw(huge).await;
    assert_eq!(status, 413, "oversized body");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("exceeds"),
        "{v}"
    );

    let batch: Vec<Value> = (0..1001)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"eth_chainId"}))
        .collect();
    let (_, v) = node.post_raw(Value::Array(batch).to_string()).await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("batch"),
        "oversized batch: {v}"
    );

    // A mixed batch answers each entry on its own.
    let (_, v) = node
        .post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"nope"},5]"#)
        .await;
    assert_eq!(v[0]["result"], "0x1e61");
    assert_eq!(code(&v[1]), -32601);
    assert_eq!(code(&v[2]), -32600);

    // Unauthenticated: 401 with a JSON-RPC body, except the public methods.
    let resp = node
        .http
        .post(node.url())
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x0000000000000000000000000000000000000000","latest"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("www-authenticate").is_some());
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32001);
    let resp = node
        .http
        .post(node.url())
        .header("Authorization", "Bearer wrong")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#)
        .send()
        .await
        .unwrap();
    // A bad token is refused even for a public method, so the client learns.
    assert_eq!(resp.status().as_u16(), 401);
    let resp = node
        .http
        .post(node.url())
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["result"], "0x1e61");

    assert_eq!(
        node.health().await["status"],
        "ok",
        "still serving after all of the above"
    );
    node.stop();
}
