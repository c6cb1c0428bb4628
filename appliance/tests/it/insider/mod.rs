//! A hostile insider against the real binary and the shipped bank policies:
//! signed-in, low-privilege API keys (a service and a trader of another
//! organization, a counterparty) trying the side doors of the EVM and the
//! RPC, and flooding the node. Each test names the finding it closes; each
//! failed on the code before the fix (noted per test).
//!
//! Contracts are hand-assembled EVM bytecode so every opcode the guard must
//! see is spelled out here.

use crate::common::{cli_ok, raw, signed, wait_receipt, Node};
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
        self.node.pending_nonce(a).await
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
            .unwrap_or_else(|| panic!("not sent: {sent}"));
        wait_receipt(&self.node, hash).await
    }

    /// A wallet-binding challenge for `wallet`, issued to `token`.
    async fn challenge(&self, token: &str, wallet: Address) -> String {
        self.call(token, "prividium_siweChallenge", json!([wallet]))
            .await["result"]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Answers `message` signed by `wallet`, as `token`.
    async fn bind(&self, token: &str, message: &str, wallet: &PrivateKeySigner) -> Value {
        let sig = wallet.sign_message_sync(message.as_bytes()).unwrap();
        self.call(
            token,
            "prividium_bindWallet",
            json!([message, Bytes::from(sig.as_bytes().to_vec())]),
        )
        .await
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

/// Prints a peer script's steps; fails with its output unless it exited 0
/// and reported no failed step.
fn script_passed(name: &str, out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains(" 0 failed"),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn word(v: &Value) -> U256 {
    v["result"]
        .as_str()
        .unwrap_or_else(|| panic!("no result: {v}"))
        .parse()
        .unwrap()
}

mod evm;
mod flood;
mod history;
mod live;
mod proofs;
mod trace;
mod views;
