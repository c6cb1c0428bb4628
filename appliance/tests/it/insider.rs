//! A hostile insider against the real binary and the shipped bank policies:
//! signed-in, low-privilege API keys (a service and a trader of another
//! organization, a counterparty) trying the side doors of the EVM and the
//! RPC, and flooding the node. Each test names the finding it closes; each
//! failed on the code before the fix (noted per test).
//!
//! Contracts are hand-assembled EVM bytecode so every opcode the guard must
//! see is spelled out here.

use crate::common::{cli_ok, raw, signed, Node};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use serde_json::{json, Value};
use std::{
    path::Path,
    time::{Duration, Instant},
};

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

/// Init code that deploys `runtime` (CODECOPY of what follows a 12-byte
/// prefix, then RETURN).
fn deploy_code(runtime: &[u8]) -> Vec<u8> {
    let len = u16::try_from(runtime.len()).unwrap().to_be_bytes();
    let mut code = vec![
        0x61, len[0], len[1], 0x80, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3,
    ];
    code.extend_from_slice(runtime);
    code
}

/// Runtime that returns the word 42 whatever it is called with.
const RETURNS_42: [u8; 10] = [0x60, 0x2a, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];

/// Runtime that returns BALANCE of the address in its call data.
const BALANCE_OF_ARGUMENT: [u8; 12] = [
    0x60, 0x00, 0x35, 0x31, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3,
];

/// Runtime of a contract with only a fallback: stores its caller.
const FALLBACK_STORES_CALLER: [u8; 5] = [0x33, 0x60, 0x00, 0x55, 0x00];

/// Init code that runs `OP(target)` and returns the resulting word
/// (BALANCE 0x31, EXTCODESIZE 0x3b, EXTCODEHASH 0x3f).
fn probe(op: u8, target: Address) -> Vec<u8> {
    let mut code = vec![0x73];
    code.extend_from_slice(target.as_slice());
    code.extend_from_slice(&[op, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3]);
    code
}

/// Init code of a factory: CREATEs a child that returns 42, keeps the
/// child's address in slot 0, and deploys no code of its own.
fn factory() -> Vec<u8> {
    let child = deploy_code(&RETURNS_42);
    let n = child.len() as u8;
    let mut code = vec![
        0x60, n, 0x60, 0x12, 0x60, 0x00, 0x39, // CODECOPY(0, 18, n)
        0x60, n, 0x60, 0x00, 0x60, 0x00, 0xf0, // CREATE(0, 0, n)
        0x60, 0x00, 0x55, 0x00, // SSTORE(0, child); STOP
    ];
    assert_eq!(code.len(), 0x12);
    code.extend(child);
    code
}

/// Runtime that does nothing with plenty of gas, but with less than a
/// million calls `target` (one byte of call data): the path only a gas
/// search reaches.
fn calls_when_short_of_gas(target: Address) -> Vec<u8> {
    let mut code = vec![
        0x5a, 0x62, 0x0f, 0x42, 0x40, 0x11, // GAS < 1,000,000 ?
        0x60, 0x0a, 0x57, 0x00, // JUMPI 10; STOP
        0x5b, 0x60, 0x00, 0x60, 0x00, 0x60, 0x01, 0x60, 0x00, 0x60, 0x00, 0x73,
    ];
    code.extend_from_slice(target.as_slice());
    code.extend_from_slice(&[0x5a, 0xf1, 0x00]); // CALL(gas, target, 0, 0, 1, 0, 0)
    code
}

/// Runtime that emits `Transfer`-like LOG2(sig, caller) whatever it is
/// called with: the log names its caller's wallet.
fn emits_for_caller() -> Vec<u8> {
    let mut code = vec![0x33, 0x7f];
    code.extend_from_slice(keccak256("Moved(address)").as_slice());
    code.extend_from_slice(&[0x60, 0x00, 0x60, 0x00, 0xa2, 0x00]);
    code
}

/// Call data the bank token ABI decodes as `transfer(to, amount)`.
fn transfer_call(to: Address, amount: u64) -> Bytes {
    let mut d = keccak256("transfer(address,uint256)")[..4].to_vec();
    d.extend_from_slice(to.into_word().as_slice());
    d.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    d.into()
}

struct Insider {
    node: Node,
    dir: tempfile::TempDir,
    chain: u64,
}

/// A key of `role` in `org` with a fresh funded wallet.
struct Key {
    token: String,
    wallet: PrivateKeySigner,
}

impl Insider {
    async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start_with(dir.path(), extra).await;
        let chain = node.dev["chain_id"].as_u64().unwrap();
        Self { node, dir, chain }
    }

    fn admin(&self) -> String {
        self.node.dev["api_key"].as_str().unwrap().to_owned()
    }

    /// An API key of `role` in `org` bound to a new wallet funded with
    /// `funds` ETH; waits until the node accepts it.
    async fn key(&self, role: &str, org: &str, funds: u64) -> Key {
        let wallet = PrivateKeySigner::random();
        let address = format!("{:#x}", wallet.address());
        let token = cli_ok(
            &[
                "keys", "create", "--role", role, "--org", org, "--wallet", &address,
            ],
            self.dir.path(),
        )
        .trim()
        .to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.call(&token, "prividium_whoami", json!([])).await["error"]["code"] == -32001 {
            assert!(Instant::now() < deadline, "the new key was never accepted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if funds > 0 {
            let admin = self.node.key(0);
            let r = self
                .send(
                    &self.admin(),
                    &admin,
                    TxKind::Call(wallet.address()),
                    eth(funds),
                    Bytes::new(),
                )
                .await;
            self.receipt(&r).await;
        }
        Key { token, wallet }
    }

    async fn call(&self, token: &str, method: &str, params: Value) -> Value {
        self.node.rpc_as(Some(token), method, params).await
    }

    async fn nonce(&self, a: Address) -> u64 {
        let v = self
            .node
            .rpc("eth_getTransactionCount", json!([a, "pending"]))
            .await;
        u64::from_str_radix(v["result"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    async fn tx(&self, key: &PrivateKeySigner, to: TxKind, value: U256, data: Bytes) -> String {
        let nonce = self.nonce(key.address()).await;
        raw(&signed(key, self.chain, nonce, to, value, data, 3_000_000))
    }

    async fn send(
        &self,
        token: &str,
        key: &PrivateKeySigner,
        to: TxKind,
        value: U256,
        data: Bytes,
    ) -> Value {
        let tx = self.tx(key, to, value, data).await;
        self.call(token, "eth_sendRawTransaction", json!([tx]))
            .await
    }

    /// The receipt (read by the admin) of a sent transaction.
    async fn receipt(&self, sent: &Value) -> Value {
        let hash = sent["result"]
            .as_str()
            .unwrap_or_else(|| panic!("not sent: {sent}"))
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

    async fn deploy(&self, key: &Key, init: Vec<u8>) -> Address {
        let r = self
            .send(
                &key.token,
                &key.wallet,
                TxKind::Create,
                U256::ZERO,
                init.into(),
            )
            .await;
        let receipt = self.receipt(&r).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        receipt["contractAddress"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn eth_call(&self, key: &Key, to: Option<Address>, data: &[u8]) -> Value {
        let mut req = json!({"from": key.wallet.address(), "data": Bytes::copy_from_slice(data)});
        if let Some(to) = to {
            req["to"] = json!(to);
        }
        self.call(&key.token, "eth_call", json!([req, "latest"]))
            .await
    }
}

fn denied(v: &Value, rule: &str) {
    assert_eq!(v["error"]["code"], json!(-32003), "{v}");
    assert_eq!(v["error"]["data"]["rule"], json!(rule), "{v}");
}

fn word(v: &Value) -> U256 {
    v["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no result: {v}"))
        .parse()
        .unwrap()
}

/// Finding 2: `eth_getBalance` of a foreign wallet was refused, but init
/// code executing BALANCE (or EXTCODEHASH of a foreign contract) in
/// `eth_call` or in a transaction returned it. Before the fix the probes
/// answered with the balance and the hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opcodes_that_read_another_account_are_decided_like_rpc_reads() {
    let t = Insider::start(&[]).await;
    let victim = t.key("service", "bank-a", 7).await;
    let spy = t.key("service", "bank-b", 1).await;
    let a_contract = t.deploy(&victim, deploy_code(&RETURNS_42)).await;
    let target = victim.wallet.address();

    let by_rpc = t
        .call(&spy.token, "eth_getBalance", json!([target, "latest"]))
        .await;
    denied(&by_rpc, "default-deny");
    for (op, what) in [(0x31, target), (0x3b, a_contract), (0x3f, a_contract)] {
        let r = t.eth_call(&spy, None, &probe(op, what)).await;
        denied(&r, "default-deny");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{what:#x}")), "{message}");
    }
    // The same probe as a transaction is refused at submission.
    let r = t
        .send(
            &spy.token,
            &spy.wallet,
            TxKind::Create,
            U256::ZERO,
            probe(0x31, target).into(),
        )
        .await;
    denied(&r, "default-deny");

    // What the spy may see, it may still read by opcode.
    let own = t
        .eth_call(&spy, None, &probe(0x31, spy.wallet.address()))
        .await;
    assert_eq!(word(&own), eth(1), "{own}");
    let mine = t.eth_call(&victim, None, &probe(0x3b, a_contract)).await;
    assert_eq!(word(&mine), U256::from(RETURNS_42.len()), "{mine}");
    // An auditor sees everything, by RPC and by opcode alike (through a
    // contract: auditors deploy nothing, not even in eth_call).
    let reader = t.deploy(&victim, deploy_code(&BALANCE_OF_ARGUMENT)).await;
    let auditor = t.key("auditor", "bank-c", 0).await;
    let r = t
        .eth_call(&auditor, Some(reader), target.into_word().as_slice())
        .await;
    assert_eq!(word(&r), eth(7), "{r}");
}

/// Finding 3: a contract created by a factory had no owner, so every
/// organization could call it; and a top-level deployment was unowned
/// until an RPC handler next scanned the chain. Before the fix both the
/// other organization's call and its transaction went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_created_at_any_depth_are_owned_before_the_next_transaction() {
    let t = Insider::start(&[]).await;
    let owner = t.key("service", "bank-a", 10).await;
    let other = t.key("service", "bank-b", 10).await;
    let factory_address = owner
        .wallet
        .address()
        .create(t.nonce(owner.wallet.address()).await);
    let child = factory_address.create(1);

    // The other organization's call of the child is sent right behind the
    // factory's deployment: at submission the child does not exist yet,
    // so only the block builder can refuse it.
    let deploy = t
        .tx(&owner.wallet, TxKind::Create, U256::ZERO, factory().into())
        .await;
    let intrude = t
        .tx(
            &other.wallet,
            TxKind::Call(child),
            U256::ZERO,
            Bytes::from_static(&[1]),
        )
        .await;
    let deployed = t
        .call(&owner.token, "eth_sendRawTransaction", json!([deploy]))
        .await;
    let intruded = t
        .call(&other.token, "eth_sendRawTransaction", json!([intrude]))
        .await;
    let sent = [deployed, intruded];
    let receipt = t.receipt(&sent[0]).await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let code = t.node.rpc("eth_getCode", json!([child, "latest"])).await;
    assert_eq!(
        code["result"],
        json!(Bytes::from(RETURNS_42.to_vec())),
        "{code}"
    );
    // Admitted to the pool (the child did not exist), then dropped when
    // the block was built: it never gets a receipt.
    if let Some(hash) = sent[1]["result"].as_str() {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let r = t.node.rpc("eth_getTransactionReceipt", json!([hash])).await;
        assert!(
            r["result"].is_null(),
            "the intruding call was included: {r}"
        );
    } else {
        denied(&sent[1], "exec.org-only-contracts");
    }

    // Reads and calls of the nested contract follow its owner's rules.
    denied(
        &t.eth_call(&other, Some(child), &[1]).await,
        "exec.org-only-contracts",
    );
    let r = t
        .send(
            &other.token,
            &other.wallet,
            TxKind::Call(child),
            U256::ZERO,
            Bytes::from_static(&[1]),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    assert_eq!(
        word(&t.eth_call(&owner, Some(child), &[1]).await),
        U256::from(42)
    );
}

/// Finding 4: empty call data was a plain transfer whatever the target, so
/// a trader of another organization ran that organization's contract's
/// fallback. Before the fix the transaction was included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_calldata_to_a_contract_is_a_call_of_its_code() {
    let t = Insider::start(&[]).await;
    let owner = t.key("service", "bank-a", 1).await;
    let trader = t.key("trader", "bank-b", 10).await;
    let contract = t.deploy(&owner, deploy_code(&FALLBACK_STORES_CALLER)).await;
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(contract),
            U256::ZERO,
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(contract),
            U256::from(1),
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    // A plain transfer to a wallet is still a transfer.
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(Address::repeat_byte(0x42)),
            eth(1),
            Bytes::new(),
        )
        .await;
    assert_eq!(t.receipt(&r).await["status"], "0x1");
}

/// Finding 5: eth_estimateGas checked only its first run; the search ran
/// unguarded, so code that calls a forbidden contract only when short of
/// gas was never checked. Before the fix the estimate was returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_of_an_estimate_is_guarded() {
    let t = Insider::start(&[]).await;
    let a = t.key("service", "bank-a", 1).await;
    let b = t.key("service", "bank-b", 1).await;
    let forbidden = t.deploy(&a, deploy_code(&RETURNS_42)).await;
    let tricky = t
        .deploy(&b, deploy_code(&calls_when_short_of_gas(forbidden)))
        .await;
    // With all the gas it asks for, the call is harmless.
    let ok = t.eth_call(&b, Some(tricky), &[]).await;
    assert_eq!(ok["result"], "0x", "{ok}");
    let r = t
        .call(
            &b.token,
            "eth_estimateGas",
            json!([{"from": b.wallet.address(), "to": tricky}]),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{forbidden:#x}")),
        "{r}"
    );
    // An estimate whose every run is allowed still works.
    let r = t
        .call(
            &b.token,
            "eth_estimateGas",
            json!([{"from": b.wallet.address(), "to": Address::repeat_byte(9), "value": "0x1"}]),
        )
        .await;
    assert_eq!(r["result"], "0x5208", "{r}");
}

/// Finding 6: precompiles were exempt from every rule, value caps
/// included. Before the fix 150 ETH went to 0x…01 from a trader capped at
/// 100 per transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_sent_to_a_precompile_is_capped_like_any_transfer() {
    let t = Insider::start(&[]).await;
    let trader = t.key("trader", "bank-b", 300).await;
    let ecrecover = Address::with_last_byte(1);
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(ecrecover),
            eth(150),
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.trader.value-cap-tx");
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(ecrecover),
            eth(150),
            Bytes::from_static(&[0; 128]),
        )
        .await;
    denied(&r, "exec.trader.value-cap-tx");
    // Within the cap it is a transfer like any other; without value, the
    // precompile is plumbing.
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(ecrecover),
            eth(50),
            Bytes::new(),
        )
        .await;
    assert_eq!(t.receipt(&r).await["status"], "0x1");
    let r = t.eth_call(&trader, Some(ecrecover), &[0; 128]).await;
    assert!(r["result"].is_string(), "{r}");
}

/// Finding 7: a caller shown only its own transaction still saw the
/// block's total gas and size, a receipt's cumulative gas, index and log
/// index over hidden transactions, and every block's gasUsedRatio. Before
/// the fix the trader saw the admin's gas and positions.
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
    let challenge = t
        .call(
            &victim.token,
            "prividium_siweChallenge",
            json!([wallet.address()]),
        )
        .await["result"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let sig = wallet.sign_message_sync(challenge.as_bytes()).unwrap();
    let r = t
        .call(
            &victim.token,
            "prividium_bindWallet",
            json!([challenge, Bytes::from(sig.as_bytes().to_vec())]),
        )
        .await;
    assert_eq!(r["result"]["address"], json!(wallet.address()), "{r}");
    // A statement or URI other than the one issued is refused.
    let other = PrivateKeySigner::random();
    let challenge = t
        .call(
            &victim.token,
            "prividium_siweChallenge",
            json!([other.address()]),
        )
        .await["result"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let phished = challenge.replace("Bind this wallet to", "Pay 1,000 ETH for");
    let sig = other.sign_message_sync(phished.as_bytes()).unwrap();
    let r = t
        .call(
            &victim.token,
            "prividium_bindWallet",
            json!([phished, Bytes::from(sig.as_bytes().to_vec())]),
        )
        .await;
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
