//! Access control end to end: the real binary, a real OIDC provider
//! (npm `oidc-provider`), SIWE wallet binding, Cedar policies on RPC methods,
//! on reads and on every call frame of a transaction.

use crate::{
    common::{raw, signed, token_refusal, Node},
    idp::{free_port, Idp},
};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CHAIN: u64 = 7777;

fn peers_ready() -> bool {
    let peers = std::env::var("PRIVIDIUM_PEERS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/prividium-peers",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    std::path::Path::new(&peers)
        .join("node_modules/oidc-provider")
        .exists()
}

fn selector(sig: &str) -> Vec<u8> {
    keccak256(sig.as_bytes())[..4].to_vec()
}

fn word(v: U256) -> [u8; 32] {
    v.to_be_bytes()
}

fn addr_word(a: Address) -> [u8; 32] {
    a.into_word().0
}

/// ABI encoding of a dynamic `bytes`/`string` tail: length + padded data.
pub(crate) fn tail(data: &[u8]) -> Vec<u8> {
    let mut out = word(U256::from(data.len())).to_vec();
    out.extend_from_slice(data);
    out.resize(32 + data.len().div_ceil(32) * 32, 0);
    out
}

pub(crate) fn bank_token_deploy() -> Bytes {
    let artifact: Value =
        serde_json::from_str(include_str!("../../../contracts/out/BankToken.json")).unwrap();
    let mut code = alloy_primitives::hex::decode(artifact["bytecode"].as_str().unwrap()).unwrap();
    code.extend(word(U256::from(0x60)));
    let name = tail(b"Bank");
    code.extend(word(U256::from(0x60 + name.len())));
    code.extend(word(U256::from(1_000_000u64)));
    code.extend(name);
    code.extend(tail(b"BNK"));
    code.into()
}

pub(crate) fn forwarder_deploy() -> Bytes {
    let artifact: Value =
        serde_json::from_str(include_str!("../../../contracts/out/Forwarder.json")).unwrap();
    alloy_primitives::hex::decode(artifact["bytecode"].as_str().unwrap())
        .unwrap()
        .into()
}

pub(crate) fn mint_batch(to: Address, amount: u64) -> Vec<u8> {
    let mut d = selector("mintBatch(address[],uint256)");
    d.extend(word(U256::from(0x40)));
    d.extend(word(U256::from(amount)));
    d.extend(word(U256::from(1)));
    d.extend(addr_word(to));
    d
}

pub(crate) fn erc20_transfer(to: Address, amount: u64) -> Vec<u8> {
    let mut d = selector("transfer(address,uint256)");
    d.extend(addr_word(to));
    d.extend(word(U256::from(amount)));
    d
}

pub(crate) fn forward(sig: &str, target: Address, inner: &[u8]) -> Bytes {
    let mut d = selector(sig);
    d.extend(addr_word(target));
    d.extend(word(U256::from(0x40)));
    d.extend(tail(inner));
    d.into()
}

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

struct Ctx<'a> {
    node: &'a Node,
}

impl Ctx<'_> {
    async fn call(&self, token: &str, method: &str, params: Value) -> Value {
        self.node.rpc_as(Some(token), method, params).await
    }

    async fn nonce(&self, a: Address) -> u64 {
        self.node.pending_nonce(a).await
    }

    /// Sends as `token`; returns the JSON-RPC response.
    async fn send(
        &self,
        token: &str,
        key: &PrivateKeySigner,
        to: TxKind,
        value: U256,
        data: Bytes,
    ) -> Value {
        let nonce = self.nonce(key.address()).await;
        let tx = signed(key, CHAIN, nonce, to, value, data, 3_000_000);
        self.call(token, "eth_sendRawTransaction", json!([raw(&tx)]))
            .await
    }

    /// Deploys `code` as `token` from `key`; returns the contract address.
    async fn deploy(&self, token: &str, key: &PrivateKeySigner, code: Bytes) -> Address {
        let r = self
            .send(token, key, TxKind::Create, U256::ZERO, code)
            .await;
        self.receipt(&r).await["contractAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("no contract deployed: {r}"))
            .parse()
            .unwrap()
    }

    /// Waits for a receipt, read with the admin key.
    async fn receipt(&self, resp: &Value) -> Value {
        let hash = resp["result"]
            .as_str()
            .unwrap_or_else(|| panic!("not sent: {resp}"))
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self
                .node
                .rpc("eth_getTransactionReceipt", json!([hash]))
                .await;
            if !r["result"].is_null() {
                return r["result"].clone();
            }
            assert!(Instant::now() < deadline, "no receipt for {hash}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Binds a fresh wallet to the token's principal by SIWE and funds it.
    async fn wallet(&self, token: &str) -> PrivateKeySigner {
        let w = PrivateKeySigner::random();
        let ch = self
            .call(token, "prividium_siweChallenge", json!([w.address()]))
            .await;
        let message = ch["result"]["message"].as_str().unwrap().to_owned();
        let sig = w.sign_message_sync(message.as_bytes()).unwrap();
        let bound = self
            .call(
                token,
                "prividium_bindWallet",
                json!([message, Bytes::from(sig.as_bytes().to_vec())]),
            )
            .await;
        assert_eq!(bound["result"]["address"], json!(w.address()), "{bound}");
        // Replaying the same proof fails: the nonce was single-use.
        let again = self
            .call(
                token,
                "prividium_bindWallet",
                json!([message, Bytes::from(sig.as_bytes().to_vec())]),
            )
            .await;
        assert!(
            again["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nonce"),
            "{again}"
        );
        let admin = self.node.key(0);
        let tx = signed(
            &admin,
            CHAIN,
            self.nonce(admin.address()).await,
            TxKind::Call(w.address()),
            eth(500),
            Bytes::new(),
            21_000,
        );
        let r = self
            .node
            .rpc("eth_sendRawTransaction", json!([raw(&tx)]))
            .await;
        self.receipt(&r).await;
        w
    }
}

fn denied(v: &Value, rule: &str) {
    assert_eq!(v["error"]["code"], json!(-32003), "{v}");
    assert_eq!(v["error"]["data"]["rule"], json!(rule), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_roles_wallets_filtered_reads_and_inner_call_enforcement() {
    if !peers_ready() {
        panic!("oidc-provider missing: run deploy/dev/install-peers.sh");
    }
    let tmp = tempfile::tempdir().unwrap();
    let jwks = tmp.path().join("idp-keys.json");
    let port = free_port();
    let idp = Idp::start(port, &jwks, 300);
    let dir = tmp.path().join("node");
    std::fs::create_dir_all(&dir).unwrap();
    let node = Node::start_with(
        &dir,
        &[
            "--oidc-issuer",
            &idp.issuer,
            "--oidc-roles-claims",
            "roles,realm_access.roles",
            "--oidc-min-refresh-secs",
            "0",
        ],
    )
    .await;
    let c = Ctx { node: &node };

    // --- authentication ---------------------------------------------------
    let alice = idp.user_token("alice").await;
    let who = c.call(&alice, "prividium_whoami", json!([])).await;
    assert_eq!(who["result"]["principal"], json!("User:idp:alice"), "{who}");
    assert_eq!(who["result"]["roles"], json!(["trader"]));
    assert_eq!(who["result"]["org"], json!("bank-a"));
    let bot = idp
        .client_token("svc-trader-bot", "bot-secret", "https://prividium.test")
        .await;
    let who = c.call(&bot, "prividium_whoami", json!([])).await;
    assert_eq!(
        who["result"]["roles"],
        json!(["trader"]),
        "top-level roles claim: {who}"
    );
    // Public without a token; everything else needs one.
    assert!(node.rpc_as(None, "eth_blockNumber", json!([])).await["result"].is_string());
    let (status, body) = node
        .post_as(
            None,
            json!({"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[Address::ZERO]})
                .to_string(),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!(-32001))
    );
    // Bad tokens: wrong audience, alg none, HS256, garbage, tampered payload.
    let wrong_aud = idp
        .client_token("svc-trader-bot", "bot-secret", "https://other.test")
        .await;
    let b64 = |s: &str| Base64UrlUnpadded::encode_string(s.as_bytes());
    let none_alg = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&format!(
            r#"{{"iss":"{}","sub":"x","aud":"https://prividium.test","exp":9999999999}}"#,
            idp.issuer
        ))
    );
    let hs256 = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"HS256","kid":"k"}"#),
        b64(&format!(r#"{{"iss":"{}"}}"#, idp.issuer))
    );
    let mut parts: Vec<String> = alice.split('.').map(str::to_owned).collect();
    parts[1] = b64(&format!(
        r#"{{"iss":"{}","sub":"erin","aud":"https://prividium.test","exp":9999999999,"roles":["admin"]}}"#,
        idp.issuer
    ));
    let tampered = parts.join(".");
    for (bad, why) in [
        (wrong_aud.as_str(), "audience"),
        (none_alg.as_str(), "algorithm none"),
        (hs256.as_str(), "algorithm HS256"),
        ("not-a-jwt", "malformed"),
        (tampered.as_str(), "signature"),
    ] {
        // Even a public method: a presented token must be a valid one.
        let message = token_refusal(&node, bad, "eth_chainId").await;
        assert!(message.contains(why), "{why}: {message}");
    }

    // --- wallets and deployments ------------------------------------------
    let erin = idp.user_token("erin").await; // admin, bank-a
    let erin_w = c.wallet(&erin).await;
    let alice_w = c.wallet(&alice).await;
    let bob = idp.user_token("bob").await;
    let bob_w = c.wallet(&bob).await;
    let token = c.deploy(&erin, &erin_w, bank_token_deploy()).await;
    let fwd = c.deploy(&erin, &erin_w, forwarder_deploy()).await;
    let r = c
        .send(
            &erin,
            &erin_w,
            TxKind::Call(token),
            U256::ZERO,
            mint_batch(alice_w.address(), 1_000).into(),
        )
        .await;
    assert_eq!(c.receipt(&r).await["status"], json!("0x1"));

    // A trader signs only with their own wallets.
    let r = c
        .send(
            &alice,
            &erin_w,
            TxKind::Call(bob_w.address()),
            U256::from(1),
            Bytes::new(),
        )
        .await;
    denied(&r, "wallet-binding");
    // Deploying is not a trader's job.
    let r = c
        .send(
            &alice,
            &alice_w,
            TxKind::Create,
            U256::ZERO,
            forwarder_deploy(),
        )
        .await;
    denied(&r, "default-deny");
    // Token transfer allowed; minting directly, via CALL through the
    // forwarder, or via DELEGATECALL through it, is not.
    let r = c
        .send(
            &alice,
            &alice_w,
            TxKind::Call(token),
            U256::ZERO,
            erc20_transfer(bob_w.address(), 10).into(),
        )
        .await;
    let transfer_receipt = c.receipt(&r).await;
    assert_eq!(transfer_receipt["status"], json!("0x1"));
    let r = c
        .send(
            &alice,
            &alice_w,
            TxKind::Call(token),
            U256::ZERO,
            mint_batch(alice_w.address(), 5).into(),
        )
        .await;
    denied(&r, "default-deny");
    let r = c
        .send(
            &alice,
            &alice_w,
            TxKind::Call(fwd),
            U256::ZERO,
            forward(
                "forward(address,bytes)",
                token,
                &mint_batch(alice_w.address(), 5),
            ),
        )
        .await;
    denied(&r, "default-deny");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("depth 1"),
        "{r}"
    );
    let r = c
        .send(
            &alice,
            &alice_w,
            TxKind::Call(fwd),
            U256::ZERO,
            forward(
                "forwardDelegate(address,bytes)",
                token,
                &mint_batch(alice_w.address(), 5),
            ),
        )
        .await;
    denied(&r, "default-deny");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("delegatecall"),
        "{r}"
    );
    // Value cap per transaction.
    let r = c
        .send(
            &alice,
            &alice_w,
            TxKind::Call(bob_w.address()),
            eth(101),
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.trader.value-cap-tx");

    // --- filtered reads ---------------------------------------------------
    let own = c
        .call(
            &alice,
            "eth_getBalance",
            json!([alice_w.address(), "latest"]),
        )
        .await;
    assert!(own["result"].is_string(), "{own}");
    denied(
        &c.call(
            &alice,
            "eth_getBalance",
            json!([erin_w.address(), "latest"]),
        )
        .await,
        "default-deny",
    );
    denied(
        &c.call(&alice, "eth_getStorageAt", json!([token, "0x0", "latest"]))
            .await,
        "default-deny",
    );
    // eth_call must come from one of the caller's wallets.
    let bal = |who: Address| {
        let mut d = selector("balanceOf(address)");
        d.extend(addr_word(who));
        Bytes::from(d)
    };
    let r = c.call(&alice, "eth_call", json!([{"from": erin_w.address(), "to": token, "data": bal(alice_w.address())}, "latest"])).await;
    denied(&r, "wallet-binding");
    let r = c.call(&alice, "eth_call", json!([{"from": alice_w.address(), "to": token, "data": bal(alice_w.address())}, "latest"])).await;
    assert_eq!(
        U256::from_str_radix(r["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
        U256::from(990)
    );
    // ... and answers a holder view only for the caller's own wallets.
    let r = c.call(&alice, "eth_call", json!([{"from": alice_w.address(), "to": token, "data": bal(bob_w.address())}, "latest"])).await;
    denied(&r, "exec.read.holdings-own");
    // Bob sees the transfer to him (partially: input blanked), not erin's mint.
    let hash = transfer_receipt["transactionHash"].as_str().unwrap();
    let seen = c
        .call(&bob, "eth_getTransactionByHash", json!([hash]))
        .await;
    assert_eq!(seen["result"]["input"], json!("0x"), "{seen}");
    let rcpt = c
        .call(&bob, "eth_getTransactionReceipt", json!([hash]))
        .await;
    assert_eq!(
        rcpt["result"]["logs"].as_array().unwrap().len(),
        1,
        "{rcpt}"
    );
    let logs = c
        .call(
            &bob,
            "eth_getLogs",
            json!([{"fromBlock": "0x0", "address": token}]),
        )
        .await;
    let logs = logs["result"].as_array().unwrap();
    assert_eq!(
        logs.len(),
        1,
        "bob sees only the Transfer naming him: {logs:?}"
    );
    let all = node
        .rpc(
            "eth_getLogs",
            json!([{"fromBlock": "0x0", "address": token}]),
        )
        .await;
    assert!(
        all["result"].as_array().unwrap().len() >= 3,
        "the admin key sees every log"
    );
    // A counterparty reads no private data; blocks come back without
    // transactions or bloom.
    let dave = idp.user_token("dave").await;
    denied(
        &c.call(
            &dave,
            "eth_getBalance",
            json!([alice_w.address(), "latest"]),
        )
        .await,
        "default-deny",
    );
    let block_no = transfer_receipt["blockNumber"].clone();
    let blk = c
        .call(&dave, "eth_getBlockByNumber", json!([block_no, false]))
        .await;
    assert_eq!(blk["result"]["transactions"], json!([]), "{blk}");
    assert!(blk["result"]["logsBloom"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x")
        .chars()
        .all(|ch| ch == '0'));
    // Auditors read everything and write nothing.
    let carol = idp.user_token("carol").await;
    let carol_w = c.wallet(&carol).await;
    let r = c.call(&carol, "eth_call", json!([{"from": carol_w.address(), "to": token, "data": bal(bob_w.address())}, "latest"])).await;
    assert_eq!(
        U256::from_str_radix(r["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
        U256::from(10),
        "{r}"
    );
    assert!(c
        .call(
            &carol,
            "eth_getBalance",
            json!([erin_w.address(), "latest"])
        )
        .await["result"]
        .is_string());
    let blk = c
        .call(&carol, "eth_getBlockByNumber", json!([block_no, false]))
        .await;
    assert_eq!(blk["result"]["transactions"].as_array().unwrap().len(), 1);
    denied(
        &c.call(&carol, "eth_sendRawTransaction", json!(["0x00"]))
            .await,
        "default-deny",
    );

    // --- IdP key rotation -------------------------------------------------
    idp.stop();
    std::fs::remove_file(&jwks).unwrap();
    let idp = Idp::start(port, &jwks, 300);
    let fresh = idp.user_token("alice").await;
    let ok = c.call(&fresh, "prividium_whoami", json!([])).await;
    assert_eq!(
        ok["result"]["principal"],
        json!("User:idp:alice"),
        "new key accepted after JWKS refresh: {ok}"
    );
    let (status, body) = node
        .post_as(
            Some(&alice),
            json!({"jsonrpc":"2.0","id":1,"method":"eth_chainId"}).to_string(),
        )
        .await;
    assert_eq!(status, 401, "token signed by a withdrawn key: {body}");
    node.stop();
}
