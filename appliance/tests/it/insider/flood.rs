//! Floods: of wallet-binding challenges (finding 8) and of requests
//! (finding 1).

use super::*;

/// Finding 8: once 10,000 challenges were outstanding all were cleared, so
/// any principal could void everyone's pending wallet binding; and a
/// signed message with another statement or URI was accepted. Before the
/// fix the victim's binding failed with "unknown nonce".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_flood_voids_only_the_flooders_own_challenges() {
    let t = Insider::start(&[]).await;
    let victim = t.key("trader", "bank-a", 0).await;
    let flooder = t.key("service", "bank-b", 0).await;
    let wallet = PrivateKeySigner::random();
    let challenge = t.challenge(&victim.token, wallet.address()).await;
    for round in 0..11 {
        let batch: Vec<Value> = (0..1_000)
            .map(|i| json!({"jsonrpc":"2.0","id": round * 1_000 + i,"method":"prividium_siweChallenge","params":[Address::random()]}))
            .collect();
        let (status, _) = t
            .node
            .post_as(Some(&flooder.token), Value::Array(batch).to_string())
            .await;
        assert_eq!(status, 200);
    }
    // The victim's challenge survived the flood.
    let r = t.bind(&victim.token, &challenge, &wallet).await;
    assert_eq!(r["result"]["address"], json!(wallet.address()), "{r}");
    // A statement or URI other than the one issued is refused.
    let other = PrivateKeySigner::random();
    let challenge = t.challenge(&victim.token, other.address()).await;
    let phished = challenge.replace("Bind this wallet to", "Pay 1,000 ETH for");
    let r = t.bind(&victim.token, &phished, &other).await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("statement or URI"),
        "{r}"
    );
}

async fn audit_events(node: &Node, token: &str, query: &str) -> Vec<Value> {
    let resp = node
        .http
        .get(format!("{}/audit/events?limit=1000&{query}", node.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["events"].as_array().unwrap().clone()
}

fn write_limits(dir: &Path) -> String {
    let path = dir.join("rate-limits.toml");
    std::fs::write(
        &path,
        "report_interval_s = 1\n\
         [default]\nrequests = { per_s = 100.0, burst = 200.0 }\ncalls = { per_s = 1000.0, burst = 2000.0 }\n\
         [organization]\nper_s = 100000.0\nburst = 200000.0\n\
         [roles.counterparty]\nrequests = { per_s = 10.0, burst = 20.0 }\ncalls = { per_s = 100.0, burst = 200.0 }\n\
         [roles.admin]\nrequests = { per_s = 20000.0, burst = 40000.0 }\ncalls = { per_s = 50000.0, burst = 100000.0 }\n",
    )
    .unwrap();
    path.display().to_string()
}

/// Finding 1: any key could fill the audit queue with batches and so deny
/// service to everyone. Now a counterparty flooding 100- and 1,000-call
/// batches from eight connections gets 429s; the admin's reads and a steady
/// stream of transactions go on; the flood is in the audit trail as
/// per-interval summaries whose counts add up to every refusal. Before the
/// fix no request got a 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flooding_key_gets_429s_while_everyone_else_is_served() {
    let limits_dir = tempfile::tempdir().unwrap();
    let limits = write_limits(limits_dir.path());
    let t = Insider::start(&["--rate-limits", &limits]).await;
    let flooder = t.key("counterparty", "bank-b", 0).await;
    let auditor = t.key("auditor", "bank-a", 0).await;
    let flooder_id = t.call(&flooder.token, "prividium_whoami", json!([])).await["result"]
        ["principal"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its buckets are full again before the flood starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let until = Instant::now() + Duration::from_secs(4);

    let mut floods = Vec::new();
    for conn in 0..8u64 {
        let url = t.node.url();
        let http = t.node.http.clone();
        let token = flooder.token.clone();
        floods.push(tokio::spawn(async move {
            let (mut ok, mut limited, mut retry_hinted) = (0u64, 0u64, 0u64);
            let mut i = 0u64;
            while Instant::now() < until {
                let n = if (conn + i).is_multiple_of(4) {
                    1_000
                } else {
                    100
                };
                i += 1;
                let batch: Vec<Value> = (0..n)
                    .map(|k| json!({"jsonrpc":"2.0","id":k,"method":"eth_blockNumber"}))
                    .collect();
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Content-Type", "application/json")
                    .body(Value::Array(batch).to_string())
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    200 => ok += 1,
                    429 => {
                        limited += 1;
                        let hinted = resp.headers().contains_key("retry-after");
                        let body: Value = resp.json().await.unwrap();
                        assert_eq!(body["error"]["code"], -32005, "{body}");
                        if hinted {
                            assert!(body["error"]["data"]["retry_after_ms"].as_u64().unwrap() > 0);
                            retry_hinted += 1;
                        }
                    }
                    other => panic!("flooder got HTTP {other}"),
                }
            }
            (ok, limited, retry_hinted)
        }));
    }
    // Meanwhile: the admin reads, and transactions keep coming.
    let admin_key = t.node.key(0);
    let mut reads = (0u64, 0u64);
    let mut sent = Vec::new();
    let mut nonce = t.nonce(admin_key.address()).await;
    while Instant::now() < until {
        let r = t.node.rpc("eth_blockNumber", json!([])).await;
        reads.0 += 1;
        reads.1 += u64::from(r["result"].is_string());
        if reads.0.is_multiple_of(5) {
            let tx = raw(&signed(
                &admin_key,
                t.chain,
                nonce,
                TxKind::Call(Address::repeat_byte(7)),
                U256::from(1),
                Bytes::new(),
                21_000,
            ));
            nonce += 1;
            let r = t.node.rpc("eth_sendRawTransaction", json!([tx])).await;
            assert!(
                r["result"].is_string(),
                "a transaction was refused during the flood: {r}"
            );
            sent.push(r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut ok, mut limited, mut hinted) = (0, 0, 0);
    for f in floods {
        let (o, l, h) = f.await.unwrap();
        ok += o;
        limited += l;
        hinted += h;
    }
    assert!(
        limited > 0 && hinted > 0,
        "the flooder was never limited ({ok} served)"
    );
    assert!(
        reads.1 * 100 >= reads.0 * 99,
        "the admin was served {} of {} reads",
        reads.1,
        reads.0
    );
    assert!(sent.len() >= 10, "{}", sent.len());
    for s in &sent {
        assert_eq!(t.receipt(s).await["status"], "0x1");
    }
    // The flood is on record: summaries, one per interval, adding up to
    // every refused request.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let events = audit_events(
            &t.node,
            &auditor.token,
            &format!("action=rate.limited&actor={flooder_id}"),
        )
        .await;
        let total: u64 = events
            .iter()
            .map(|e| {
                let details: Value = serde_json::from_str(e["details"].as_str().unwrap()).unwrap();
                details["refused"].as_u64().unwrap()
            })
            .sum();
        if total == limited {
            assert!(
                (events.len() as u64) < limited,
                "summarized, not one event per refusal"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audited {total} of {limited} refusals in {} events",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The audit queue never refused anyone.
    let health = t.node.health().await;
    assert_eq!(health["audit"]["refused"], 0, "{health}");
}
