//! `prividium_disclose` on a node that proves nothing: who may ask, what a
//! malformed request gets, and that nothing is disclosed without a settled
//! batch. The full flow (a settled batch on anvil, exact and predicate
//! disclosures, tampering) is in `settlement.rs`'s zkVM test.

use crate::common::{cli_ok, wait_key_accepted, Node};
use alloy_primitives::Address;
use serde_json::json;

#[tokio::test]
async fn only_compliance_discloses_and_only_against_a_settled_batch() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let officer = cli_ok(
        &["keys", "create", "--role", "compliance", "--org", "bank"],
        dir.path(),
    )
    .trim()
    .to_owned();
    wait_key_accepted(&node, &officer).await;
    let trader = cli_ok(
        &["keys", "create", "--role", "trader", "--org", "bank"],
        dir.path(),
    )
    .trim()
    .to_owned();
    wait_key_accepted(&node, &trader).await;
    let account = Address::repeat_byte(0x42);
    let ask = |request: serde_json::Value| json!([request]);

    // Admins and traders are refused by policy, with the rule.
    let request = json!({"kind": "balance", "account": account, "batch": 1});
    for token in [node.dev["api_key"].as_str().unwrap(), trader.as_str()] {
        let r = node
            .rpc_as(Some(token), "prividium_disclose", ask(request.clone()))
            .await;
        assert_eq!(r["error"]["data"]["rule"], "default-deny", "{r}");
    }

    // A compliance officer gets clear errors for malformed requests.
    for (bad, says) in [
        (
            json!({"kind": "token-balance", "account": account, "batch": 1}),
            "balancesSlot",
        ),
        (
            json!({"kind": "storage", "account": account, "batch": 1}),
            "needs slot",
        ),
        (
            json!({"kind": "balance", "account": account, "batch": 1, "slot": format!("0x{}", "00".repeat(32))}),
            "does not apply",
        ),
        (
            json!({"kind": "everything", "account": account, "batch": 1}),
            "unknown variant",
        ),
        (json!({"kind": "balance", "account": account}), "batch"),
    ] {
        let r = node
            .rpc_as(Some(&officer), "prividium_disclose", ask(bad.clone()))
            .await;
        assert_eq!(r["error"]["code"], -32602, "{bad}: {r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains(says),
            "{bad}: {r}"
        );
    }
    // This node proves nothing, so no batch is settled to disclose against.
    let r = node
        .rpc_as(Some(&officer), "prividium_disclose", ask(request))
        .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("proves no batches"),
        "{r}"
    );
    node.stop();
}
