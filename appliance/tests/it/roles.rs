//! Who may call what, against the real binary, the shipped bank policies and
//! a real IdP: every role × every RPC method family (and the audit API), the
//! token refusals that need a validly signed token (expired, not yet valid,
//! unknown key, untrusted issuer), each signature algorithm the IdP may use,
//! an IdP that is down when the appliance starts, and the life of an API key
//! issued by the CLI.

use crate::{
    common::{cli, cli_ok, token_refusal, Node},
    idp::{free_port, Idp},
};
use alloy_primitives::{Address, B256};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};
use std::{
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const AUDIENCE: &str = "https://prividium.test";

/// Columns of [`MATRIX`]; each role's principal comes from the IdP.
const ROLES: [&str; 7] = [
    "admin",
    "operator",
    "trader",
    "auditor",
    "compliance",
    "counterparty",
    "service",
];

/// What the shipped policies grant: Y = the method may be called (its
/// result may still be filtered), N = refused as a method. `/audit/head`
/// stands for the compliance HTTP API.
const MATRIX: &[(&str, &str)] = &[
    //                            adm op  trd aud cmp cpt svc
    ("eth_chainId", "              Y   Y   Y   Y   Y   Y   Y"),
    ("eth_blockNumber", "          Y   Y   Y   Y   Y   Y   Y"),
    ("eth_gasPrice", "             Y   Y   Y   Y   N   Y   Y"),
    ("eth_getBlockByNumber", "     Y   Y   Y   Y   N   Y   Y"),
    ("eth_getBalance", "           Y   Y   Y   Y   N   N   Y"),
    ("eth_getTransactionReceipt", "Y   Y   Y   Y   N   N   Y"),
    ("eth_getLogs", "              Y   Y   Y   Y   N   N   Y"),
    ("eth_call", "                 Y   Y   Y   Y   N   N   Y"),
    ("eth_estimateGas", "          Y   Y   Y   N   N   N   Y"),
    ("eth_createAccessList", "     Y   Y   Y   N   N   N   Y"),
    ("eth_getProof", "             Y   Y   Y   Y   N   N   Y"),
    ("eth_sendRawTransaction", "   Y   Y   Y   N   N   N   Y"),
    ("eth_getStorageAt", "         Y   N   N   Y   N   N   N"),
    ("debug_traceTransaction", "   Y   Y   N   N   N   N   N"),
    ("debug_traceCall", "          Y   Y   N   N   N   N   N"),
    ("debug_getRawBlock", "        N   N   N   N   N   N   N"),
    ("txpool_status", "            Y   Y   N   N   N   N   N"),
    ("eth_sign", "                 N   N   N   N   N   N   N"),
    ("eth_sendTransaction", "      N   N   N   N   N   N   N"),
    ("prividium_whoami", "         Y   Y   Y   Y   Y   Y   Y"),
    ("prividium_reloadPolicies", " Y   N   N   N   N   N   N"),
    ("/audit/head", "              N   N   N   Y   Y   N   N"),
];

/// Parameters that are well formed for each method, so that a refusal can
/// only come from the policy.
fn params(method: &str) -> Value {
    let zero = Address::ZERO;
    match method {
        "eth_getBlockByNumber" => json!(["latest", false]),
        "eth_getBalance" => json!([zero, "latest"]),
        "eth_getTransactionReceipt" | "debug_traceTransaction" => json!([B256::ZERO]),
        "eth_getLogs" => json!([{"fromBlock": "0x0"}]),
        "eth_call" => json!([{"to": zero, "data": "0x"}, "latest"]),
        "eth_estimateGas" | "eth_createAccessList" => json!([{"to": zero}]),
        "eth_getProof" => json!([zero, [], "latest"]),
        "eth_sendRawTransaction" => json!(["0x00"]),
        "eth_getStorageAt" => json!([zero, "0x0", "latest"]),
        "eth_sign" => json!([zero, "0x00"]),
        "eth_sendTransaction" => json!([{"to": zero}]),
        _ => json!([]),
    }
}

async fn tokens(idp: &Idp) -> Vec<String> {
    let mut out = Vec::new();
    for role in ROLES {
        out.push(match role {
            "admin" => idp.user_token("erin").await,
            "operator" => idp.user_token("olga").await,
            "trader" => idp.user_token("alice").await,
            "auditor" => idp.user_token("carol").await,
            "compliance" => idp.user_token("cora").await,
            "counterparty" => idp.user_token("dave").await,
            "service" => {
                idp.client_token("svc-settlement", "svc-secret", AUDIENCE)
                    .await
            }
            _ => unreachable!(),
        });
    }
    out
}

/// Whether `token` may use `method` at all ("Y") or is refused as a method
/// ("N"). A refusal must name the default-deny rule: no policy grants it.
/// Over the role's rate (the matrix is many calls in a row) it waits as
/// told and asks again, so a rate refusal is never read as an answer.
async fn outcome(node: &Node, token: &str, method: &str) -> String {
    for _ in 0..10 {
        if let Some(path) = method.strip_prefix('/') {
            let resp = node
                .http
                .get(format!("{}/{path}", node.url()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            match resp.status().as_u16() {
                200 => return "Y".into(),
                403 => return "N".into(),
                429 => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                other => return format!("HTTP {other}"),
            }
        }
        let r = node.rpc_as(Some(token), method, params(method)).await;
        if r["error"]["code"] == json!(-32005) {
            let wait = r["error"]["data"]["retry_after_ms"].as_u64().unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(wait + 50)).await;
            continue;
        }
        let refused = r["error"]["code"] == json!(-32003)
            && r["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("may not call"));
        if refused {
            assert_eq!(r["error"]["data"]["rule"], json!("default-deny"), "{r}");
            return "N".into();
        }
        return "Y".into();
    }
    "still rate-limited after 10 tries".into()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn start_node(dir: &Path, issuer: &str) -> Node {
    Node::start_with(
        dir,
        &[
            "--oidc-issuer",
            issuer,
            "--oidc-roles-claims",
            "roles,realm_access.roles",
            "--oidc-min-refresh-secs",
            "0",
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_its_methods_and_bad_tokens_get_401() {
    let tmp = tempfile::tempdir().unwrap();
    let idp = Idp::start(free_port(), &tmp.path().join("idp-keys.json"), 300);
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    let node = start_node(&dir, &idp.issuer).await;

    let tokens = tokens(&idp).await;
    let mut got = Vec::new();
    for (method, _) in MATRIX {
        let mut row = Vec::new();
        for token in &tokens {
            row.push(outcome(&node, token, method).await);
        }
        got.push((*method, row.join(" ")));
    }
    let want: Vec<(&str, String)> = MATRIX
        .iter()
        .map(|(m, row)| (*m, row.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    let diff: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|((m, w), (_, g))| format!("{m}: want {w}, got {g}  ({})", ROLES.join(" ")))
        .collect();
    assert!(
        diff.is_empty(),
        "role × method matrix:\n{}",
        diff.join("\n")
    );
    // Without a token only the public set answers.
    for (method, _) in MATRIX.iter().filter(|(m, _)| !m.starts_with('/')) {
        let r = node.rpc_as(None, method, params(method)).await;
        let public = matches!(*method, "eth_chainId" | "eth_blockNumber");
        assert_eq!(
            r["error"].is_null(),
            public,
            "{method} without a token: {r}"
        );
    }

    // Validly signed by the IdP's real key, refused for what they claim.
    let claims = |edit: &dyn Fn(&mut Value)| {
        let t = now();
        let mut c = json!({
            "iss": idp.issuer, "sub": "alice", "aud": AUDIENCE,
            "iat": t, "exp": t + 300,
            "realm_access": {"roles": ["trader"]}, "org": "bank-a",
        });
        edit(&mut c);
        c
    };
    let good = idp.mint(&claims(&|_| {}), None);
    let who = node
        .rpc_as(Some(&good), "prividium_whoami", json!([]))
        .await;
    assert_eq!(who["result"]["principal"], json!("User:idp:alice"), "{who}");
    // Within the 30 s clock skew a just-expired token still passes.
    let skewed = idp.mint(&claims(&|c| c["exp"] = json!(now() - 10)), None);
    assert!(node
        .rpc_as(Some(&skewed), "prividium_whoami", json!([]))
        .await["result"]
        .is_object());
    for (token, why) in [
        (
            idp.mint(&claims(&|c| c["exp"] = json!(now() - 120)), None),
            "expired",
        ),
        (
            idp.mint(&claims(&|c| c["nbf"] = json!(now() + 120)), None),
            "not yet valid",
        ),
        (
            idp.mint(&claims(&|_| {}), Some("rsa-withdrawn")),
            "unknown signing key id",
        ),
        (
            idp.mint(
                &claims(&|c| c["iss"] = json!("https://idp.elsewhere.test")),
                None,
            ),
            "not trusted",
        ),
        (
            idp.mint(&claims(&|c| c["aud"] = json!("https://other.test")), None),
            "audience",
        ),
        (
            idp.mint(
                &claims(&|c| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
                None,
            ),
            "sub",
        ),
    ] {
        let message = token_refusal(&node, &token, "eth_gasPrice").await;
        assert!(message.contains(why), "{why}: {message}");
    }
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_that_is_down_at_start_delays_oidc_logins_not_the_appliance() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    let node = start_node(&dir, &format!("http://127.0.0.1:{port}")).await;
    // Up and serving API keys; /health says the IdP has not answered.
    let who = node.rpc("prividium_whoami", json!([])).await;
    assert!(who["result"].is_object(), "{who}");
    assert_eq!(
        node.health().await["oidc"],
        json!({"issuers": 1, "ready": 0})
    );

    let idp = Idp::start(port, &tmp.path().join("idp-keys.json"), 300);
    let alice = idp.user_token("alice").await;
    let who = node
        .rpc_as(Some(&alice), "prividium_whoami", json!([]))
        .await;
    assert_eq!(who["result"]["principal"], json!("User:idp:alice"), "{who}");
    assert_eq!(
        node.health().await["oidc"],
        json!({"issuers": 1, "ready": 1})
    );
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_signed_with_rs256_es256_and_eddsa_are_all_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let jwks = tmp.path().join("idp-keys.json");
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    let mut idp = Idp::start_signing(port, &jwks, 300, "RS256");
    let node = start_node(&dir, &idp.issuer).await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        if alg != "RS256" {
            // Same keys file, so the same JWKS: only the signing key changes.
            idp.stop();
            idp = Idp::start_signing(port, &jwks, 300, alg);
        }
        let token = idp.user_token("bob").await;
        let header: Value = serde_json::from_slice(
            &Base64UrlUnpadded::decode_vec(token.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], json!(alg));
        let who = node
            .rpc_as(Some(&token), "prividium_whoami", json!([]))
            .await;
        assert_eq!(
            who["result"]["principal"],
            json!("User:idp:bob"),
            "{alg}: {who}"
        );
    }
    node.stop();
}

/// Polls until `token`'s refusal (or acceptance, for `None`) is seen.
async fn until(node: &Node, token: &str, want: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = node
            .rpc_as(Some(token), "prividium_whoami", json!([]))
            .await;
        let seen = match want {
            None => r["result"].is_object(),
            Some(why) => r["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(why)),
        };
        if seen {
            return r;
        }
        assert!(Instant::now() < deadline, "still {r} (want {want:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_api_key_works_shows_its_last_use_and_stops_when_revoked_or_expired() {
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start(tmp.path()).await;
    let dir = tmp.path();
    let key = cli_ok(
        &["keys", "create", "--role", "service", "--org", "bank-a"],
        dir,
    )
    .trim()
    .to_owned();
    assert!(key.starts_with("pvd_"), "stdout is the key alone: {key:?}");
    let who = until(&node, &key, None).await;
    assert_eq!(who["result"]["roles"], json!(["service"]));
    let id = who["result"]["principal"]
        .as_str()
        .unwrap()
        .strip_prefix("ApiKey:")
        .unwrap()
        .to_owned();
    // The listing shows the id, role, status and last use, never the key.
    let deadline = Instant::now() + Duration::from_secs(10);
    let columns = loop {
        let list = cli_ok(&["keys", "list"], dir);
        assert!(!list.contains(&key), "the key itself is never listed");
        let columns: Vec<String> = list
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        // ID ROLE STATUS EXPIRES LAST-USED
        if columns[4] != "-" || Instant::now() > deadline {
            break columns;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(columns[1..4], ["service", "active", "-"], "{columns:?}");
    assert_ne!(columns[4], "-", "last use recorded: {columns:?}");

    // Keys limited to another network are refused from here.
    let fenced = cli_ok(
        &[
            "keys",
            "create",
            "--role",
            "service",
            "--ip-allow",
            "10.0.0.0/8",
        ],
        dir,
    )
    .trim()
    .to_owned();
    until(&node, &fenced, Some("not allowed")).await;

    // Revocation reaches the running node without a restart.
    let out = cli(&["keys", "revoke", &id], dir);
    assert!(out.status.success());
    until(&node, &key, Some("revoked")).await;
    let list = cli_ok(&["keys", "list"], dir);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{list}"
    );
    // An unknown id is an error, not a silent success.
    let out = cli(&["keys", "revoke", "k_nosuchkey"], dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key"));

    // A short-lived key stops at its expiry.
    let brief = cli_ok(
        &["keys", "create", "--role", "service", "--expires", "2s"],
        dir,
    )
    .trim()
    .to_owned();
    until(&node, &brief, None).await;
    until(&node, &brief, Some("expired")).await;
    node.stop();
}

/// `prividium policies explain` shows a holder-view decision with its rule,
/// from the shipped policies and the ABI argument given.
#[test]
fn explain_shows_the_holder_view_rule() {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let me = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let explain = |role: &str, holder: &str| {
        let out = std::process::Command::new(crate::common::bin())
            .args(["policies", "explain", "--policies"])
            .arg(&policies)
            .args([
                "--principal",
                "User:alice",
                "--role",
                role,
                "--org",
                "bank-a",
            ])
            .args(["--wallet", me, "--action", "read"])
            .args([
                "--resource",
                "account:0x7070707070707070707070707070707070707070",
            ])
            .args(["--deployer", "0x0101010101010101010101010101010101010101"])
            .args(["--deployer-org", "bank-a", "--function", "balanceOf"])
            .arg(format!("--arg=arg0={holder}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let other = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    assert!(
        explain("trader", other).starts_with("DENY rule=exec.read.holdings-own"),
        "{}",
        explain("trader", other)
    );
    assert!(explain("trader", me).starts_with("ALLOW rule=exec.read.readers"));
    assert!(explain("auditor", other).starts_with("ALLOW"));
}
