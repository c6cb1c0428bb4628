//! The audit trail end to end: what a running appliance records, what a
//! compliance officer can query, export and prove over HTTPS and with the
//! CLI, tamper detection by `prividium audit verify`, and failing closed when
//! the audit database stalls (on the machine's real Postgres).

use crate::common::{
    assert_check, cli, cli_ok, doctor, hash_of, probe, probe_until, raw, transfer,
    wait_key_accepted, wait_receipt, Node,
};
use alloy_primitives::Address;
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};
use test_support::PgDatabase;

async fn get(
    node: &Node,
    token: Option<&str>,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = node.http.get(format!("{}{path}", node.url()));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

async fn events(node: &Node, token: &str, query: &str) -> Vec<Value> {
    let (status, _, body) = get(
        node,
        Some(token),
        &format!("/audit/events?limit=1000&{query}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["events"].as_array().unwrap().clone()
}

/// Waits until the writer has committed what the node queued.
async fn settle(node: &Node, token: &str, action: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = events(node, token, &format!("action={action}")).await;
        if found.len() >= want || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn compliance_officers_see_who_did_what_prove_it_and_catch_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let auditor = cli_ok(
        &["keys", "create", "--role", "auditor", "--org", "bank"],
        dir.path(),
    )
    .trim()
    .to_owned();
    let admin = node.dev["api_key"].as_str().unwrap().to_owned();
    wait_key_accepted(&node, &auditor).await;

    // Some activity: a transfer, a denied method, a bad token.
    let chain_id = node.dev["chain_id"].as_u64().unwrap();
    let tx = transfer(&node.key(0), chain_id, 0, Address::random(), 12_345_678_901);
    let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
    let hash = format!("{:#x}", hash_of(&sent));
    wait_receipt(&node, &hash).await;
    let denied = node
        .rpc_as(Some(&auditor), "eth_sendRawTransaction", json!([raw(&tx)]))
        .await;
    assert_eq!(denied["error"]["code"], -32003, "{denied}");
    let bad = node
        .rpc_as(
            Some("not-a-key"),
            "eth_getBalance",
            json!([Address::ZERO, "latest"]),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32001);

    // Admin changes over RPC: a wallet binding and a policy reload.
    let bound = Address::random();
    let r = node
        .rpc(
            "prividium_adminBindWallet",
            json!(["ApiKey:k_someone", bound]),
        )
        .await;
    assert_eq!(r["result"], true, "{r}");
    let r = node.rpc("prividium_reloadPolicies", json!([])).await;
    assert!(r["result"]["rules"].as_u64().is_some(), "{r}");

    // Administrators do not read the audit trail; strangers are not let in.
    let (status, _, body) = get(&node, Some(&admin), "/audit/events").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("audit.read.compliance") || body.contains("default-deny"),
        "{body}"
    );
    let (status, headers, _) = get(&node, None, "/audit/events").await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));

    // tx.submitted: hash, principal and wallet; never the amount.
    let submitted = settle(&node, &auditor, "tx.submitted", 2).await;
    let ours = submitted
        .iter()
        .find(|e| e["resource"] == format!("tx:{hash}") && e["outcome"] == "allow")
        .unwrap_or_else(|| panic!("{submitted:#?}"));
    assert!(ours["actor_id"].as_str().unwrap().starts_with("ApiKey:k_"));
    let details: Value = serde_json::from_str(ours["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        details["wallet"].as_str().unwrap().to_lowercase(),
        format!("{:#x}", node.key(0).address())
    );
    assert!(!ours.to_string().contains("12345678901") && !ours.to_string().contains("2dfdc1c35"));
    assert!(ours["request_id"].as_str().is_some_and(|r| r.len() == 24));
    assert_eq!(ours["source_ip"], "127.0.0.1");
    // The auditor's attempt was refused by policy, with the rule.
    let refused = events(&node, &auditor, "action=policy.denied&outcome=deny").await;
    assert!(
        refused.iter().any(|e| e["rule_id"] == "default-deny"
            && e["details"]
                .as_str()
                .unwrap()
                .contains("eth_sendRawTransaction")),
        "{refused:#?}"
    );
    let failed = events(&node, &auditor, "action=auth.login.failed").await;
    assert!(failed
        .iter()
        .any(|e| e["outcome"] == "deny" && e["actor_type"] == "anonymous"));
    // Creating the auditor's key was an admin change by the console operator.
    let created = events(&node, &auditor, "action=admin.api_key.created").await;
    assert!(
        created
            .iter()
            .any(|e| e["actor_type"] == "operator"
                && e["details"].as_str().unwrap().contains("auditor")),
        "{created:#?}"
    );
    let bindings = settle(&node, &auditor, "admin.wallet.bound", 1).await;
    assert!(
        bindings
            .iter()
            .any(|e| e["resource"] == format!("wallet:{bound}")
                && e["actor_id"].as_str().unwrap().starts_with("ApiKey:k_")),
        "{bindings:#?}"
    );
    let reloads = settle(&node, &auditor, "admin.policies.reloaded", 1).await;
    assert!(
        reloads.iter().any(|e| e["details"]
            .as_str()
            .unwrap()
            .contains("\"trigger\":\"rpc\"")),
        "{reloads:#?}"
    );
    // Reading the audit log is itself audited.
    let reads = settle(&node, &auditor, "audit.queried", 3).await;
    assert!(reads
        .iter()
        .all(|e| e["actor_id"].as_str().unwrap().starts_with("ApiKey:")));

    // An inclusion proof a regulator checks with the public key alone.
    let id = ours["id"].as_u64().unwrap();
    let (status, _, body) = get(&node, Some(&auditor), &format!("/audit/events/{id}/proof")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let proof: audit::InclusionProof = serde_json::from_value(v["proof"].clone()).unwrap();
    let key = audit::head::load_public_key(&dir.path().join("audit")).unwrap();
    proof.verify(&key, None).unwrap();
    assert_eq!(proof.leaf_hash, ours["leaf_hash"].as_str().unwrap());

    // CSV export names the head it is consistent with.
    let (status, headers, csv) = get(
        &node,
        Some(&auditor),
        "/audit/export?format=csv&action=tx.*",
    )
    .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with(audit::export::CSV_HEADER));
    assert!(csv.contains(&format!("tx:{hash}")));
    let head: Value = serde_json::from_str(headers["x-audit-tree-head"].to_str().unwrap()).unwrap();
    assert!(head["tree_head"]["tree_size"].as_u64().unwrap() > id);
    node.stop();

    // Offline: verify, query and prove with the CLI.
    let verified = cli(&["audit", "verify"], dir.path());
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let q = cli_ok(
        &[
            "audit",
            "query",
            "--action",
            "tx.submitted",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert!(q.contains(&format!("tx:{hash}")), "{q}");
    let p = cli_ok(&["audit", "prove", "--event", &id.to_string()], dir.path());
    assert!(p.contains("\"path\""));

    // Someone with database access flips a denial into an allow.
    let url = format!("sqlite://{}", dir.path().join("audit/audit.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let victim: i64 = sqlx::query_scalar("SELECT MIN(id) FROM audit_events WHERE outcome = 'deny'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "UPDATE audit_events SET outcome = 'allow' WHERE id = {victim}"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let out = cli(&["audit", "verify"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("FAILED at event {victim}")), "{err}");
}

async fn balance(n: &Node) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": [Address::ZERO, "latest"]});
    n.post_raw(body.to_string()).await
}

/// A lock on the writer's state row: every append waits until it goes.
async fn stall_writer(pg: &PgDatabase) -> sqlx::PgConnection {
    let mut blocker = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("SELECT tree_size FROM audit_state WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    blocker
}

#[tokio::test]
async fn a_stalled_audit_database_refuses_requests_and_loses_nothing() {
    let pg = PgDatabase::create("prividium_e2e").await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start_with(
        dir.path(),
        // A principal's share is a sixteenth: 20 events, its mark 15.
        &["--audit-database-url", &pg.url(), "--audit-queue", "320"],
    )
    .await;
    assert_eq!(balance(&node).await.0, 200);

    // A stall shorter than the admission wait (2 s) slows the requests
    // over the admin's mark down instead of refusing them.
    let mut blocker = stall_writer(&pg).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        blocker.execute("ROLLBACK").await.unwrap();
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let (status, body) = balance(&node).await;
        assert_eq!(status, 200, "a brief stall must not refuse: {body}");
        slowest = slowest.max(started.elapsed());
        if slowest >= Duration::from_millis(300) {
            break;
        }
    }
    release.await.unwrap();
    assert!(
        slowest >= Duration::from_millis(300),
        "a request over the mark waits for the writer ({slowest:?})"
    );
    assert_eq!(node.health().await["audit"]["refused"], 0);

    // A stall that outlasts the wait: every append now waits.
    let mut blocker = stall_writer(&pg).await;
    // The admin fills its own share of the queue (a sixteenth: one
    // principal cannot fill it for everyone) and is then refused.
    let mut refused = None;
    let mut served = 0u64;
    for _ in 0..200 {
        let (status, body) = balance(&node).await;
        if status == 503 {
            refused = Some(body);
            break;
        }
        served += 1;
    }
    let body = refused.expect("requests kept being served while nothing could be audited");
    assert_eq!(body["error"]["code"], -32011, "{body}");
    let health = node.health().await;
    assert!(health["audit"]["refused"].as_u64().unwrap() > 0, "{health}");
    // The orchestrator hears it too: not ready, naming the audit trail,
    // while still live (a restart would not help).
    let body = probe_until(&node.http, &node.url(), 503).await;
    assert_eq!(body["failing"][0]["component"], "audit", "{body}");
    assert_eq!(probe(&node.http, &node.url(), "livez").await.0, 200);

    // The database comes back: service resumes and every accepted event is
    // in the log, verifiable.
    blocker.execute("ROLLBACK").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while balance(&node).await.0 != 200 {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    probe_until(&node.http, &node.url(), 200).await;
    node.stop();
    let out = cli(&["audit", "verify"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Each request served while stalled left its events in the log.
    assert!(
        report["events_checked"].as_u64().unwrap() >= 2 * served,
        "{report}"
    );
    // The doctor finds everything in order, then names the database once
    // it is gone.
    let (ok, said) = doctor(dir.path());
    assert!(ok, "{said}");
    assert_check(&said, "audit database", "ok");
    pg.drop_db().await;
    let (ok, said) = doctor(dir.path());
    assert!(!ok, "{said}");
    assert_check(&said, "audit database", "FAIL");
    assert_check(&said, "key provider", "ok");
    assert!(said.contains("checks failed"), "{said}");
}
