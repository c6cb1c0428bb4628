//! A real proof travels from the appliance to a real settlement chain
//! (anvil) and a counterparty verifies it from there, with nothing but the
//! proof file and the contract address. The proof is made by a separate
//! `prividium prover worker` process taking the batch from the node's
//! Postgres queue, as on a bank's proving machine; the node checks it
//! before writing it out.
//!
//! Named `zkvm_…`: it proves with OpenVM (minutes), so `scripts/test.sh`
//! runs it in the zkVM step, not with the fast tests.

mod disclosed;
#[path = "../../../gateway-bridge/tests/support/peers.rs"]
mod peers;

use crate::common::{bin, block_of, hash_of, raw, signed, transfer, wait_receipt, Node};
use alloy_primitives::{Address, TxKind, B256, U256};
use disclosed::Disclosed;
use gateway_bridge::{EvmSettlement, SendPolicy, SettlementClient};
use peers::{fund, Anvil, Recorder, Secrets, OWNER_KEY};
use serde_json::json;
use std::{path::Path, process::Command, time::Duration};

/// The guest of this checkout (resolved at run time: a shared build cache
/// may have compiled this test in another checkout).
fn guest() -> String {
    format!(
        "{}/../prover/guest/out/batch-program.elf",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    )
}

/// The program id published for this checkout's guest.
fn published_program_id() -> String {
    let path = format!(
        "{}/../prover/guest/PROGRAM_ID",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    );
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// A `prividium prover worker` process, stopped when dropped (a failed
/// test must not leave it proving).
struct WorkerProcess(std::process::Child);

impl WorkerProcess {
    fn start(data: &Path, queue: &str, guest: &str, program_id: &str, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(bin())
            .args(["prover", "worker", "--data-dir"])
            .arg(data)
            .args(["--queue", queue, "--guest-elf", guest])
            .args(["--program-id", program_id])
            .env("PRIVIDIUM_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self(child)
    }

    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// BankToken units the test payee receives in batch 1.
const TOKEN_UNITS: u64 = 424_242;

/// The predicate program of this checkout, and its published id.
fn predicate_guest() -> (String, String) {
    let root = format!(
        "{}/../disclosure/guest",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    );
    let id = std::fs::read_to_string(format!("{root}/PROGRAM_ID")).unwrap();
    (
        format!("{root}/out/predicate-program.elf"),
        id.trim().to_string(),
    )
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .env("PRIVIDIUM_SETTLEMENT_OWNER_KEY", OWNER_KEY)
        .env("PRIVIDIUM_LOG", "warn")
        .output()
        .unwrap()
}

fn cli_ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn wait_for(path: &Path, what: &str, secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not ready after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zkvm_appliance_settles_proven_batches_and_a_counterparty_verifies_them() {
    let guest = guest();
    assert!(
        Path::new(&guest).is_file(),
        "build the guest: prover/guest/build.sh"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let mut anvil = Anvil::start(tmp.path());
    let recorder = Recorder::start(anvil.port).await;
    let contract = cli_ok(&["settlement", "deploy", "--rpc", &anvil.url()]);
    let contract_addr: Address = contract.parse().unwrap();

    // The appliance talks to the settlement chain through the recorder only,
    // and proves nothing itself: its batches go to the shared queue.
    let pg = test_support::PgDatabase::create("prividium_e2e").await;
    let queue = pg.url();
    let program_id = published_program_id();
    let recorder_url = recorder.url();
    let args = [
        "--prove",
        "--prover-queue",
        &queue,
        "--prover-workers",
        "0",
        "--program-id",
        &program_id,
        "--guest-elf",
        &guest,
        "--batch-blocks",
        "100",
        "--batch-wait-ms",
        "6000",
        "--settle-rpc",
        &recorder_url,
        "--settle-contract",
        &contract,
    ];
    let node = Node::start_with(&data, &args).await;
    let submitter: Address = std::fs::read_to_string(data.join("bridge/signer.address"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    fund(&anvil.url(), submitter);

    // A proving machine: a worker process with the node's keys and queue.
    let worker_log = tmp.path().join("worker.log");
    let worker = WorkerProcess::start(&data, &queue, &guest, &program_id, &worker_log);

    // Private activity: two transfers with recognisable recipients and amounts.
    let chain_id: u64 = node.dev["chain_id"].as_u64().unwrap();
    let key = node.key(0);
    let mut secrets = Secrets::default();
    secrets.add_bytes("sender", key.address().as_slice());
    // A token and a transfer of it, first, so both are in batch 1 (the
    // batch is cut 6 s after its first block).
    let token = key.address().create(0);
    let payee = Address::from_slice(&alloy_primitives::keccak256("token payee")[12..]);
    let deploy = signed(
        &key,
        chain_id,
        0,
        TxKind::Create,
        U256::ZERO,
        crate::access::bank_token_deploy(),
        3_000_000,
    );
    let pay = signed(
        &key,
        chain_id,
        1,
        TxKind::Call(token),
        U256::ZERO,
        crate::access::erc20_transfer(payee, TOKEN_UNITS).into(),
        200_000,
    );
    let mut token_block = 0;
    for tx in [deploy, pay] {
        let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
        let receipt = wait_receipt(&node, &hash_of(&sent).to_string()).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        token_block = block_of(&receipt);
    }
    secrets.add_bytes("token", token.as_slice());
    secrets.add_bytes("token payee", payee.as_slice());
    secrets.add_amount("token amount", U256::from(TOKEN_UNITS));
    let mut payees = Vec::new();
    for (nonce, wei) in [(2u64, 987_654_321_012u64), (3, 987_654_321_034)] {
        let to = Address::from_slice(&alloy_primitives::keccak256(format!("payee {wei}"))[12..]);
        payees.push(to);
        let tx = transfer(&key, chain_id, nonce, to, wei);
        let sent = node.rpc("eth_sendRawTransaction", json!([raw(&tx)])).await;
        let hash = hash_of(&sent);
        wait_receipt(&node, &hash.to_string()).await;
        secrets.add_bytes("recipient", to.as_slice());
        secrets.add_bytes("tx hash", hash.as_slice());
        secrets.add_amount("amount", U256::from(wei));
    }

    // Nothing is proven yet (a proof takes minutes): /health says which
    // block waits and for how long.
    let lag = node.health().await["proving"].clone();
    assert!(lag["produced_block"].as_u64().unwrap() >= 2, "{lag}");
    assert_eq!(lag["proven_block"], 0, "{lag}");
    assert_eq!(lag["oldest_unproven_block"], 1, "{lag}");
    assert!(lag["oldest_unproven_wait_secs"].is_u64(), "{lag}");

    // Batch 1 is proven; the operator registers the chain with its program.
    let outputs_file = data.join("proofs/batch-1.json");
    wait_for(&outputs_file, "batch 1's proof", 1_800).await;
    let outputs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&outputs_file).unwrap()).unwrap();
    assert_eq!(outputs["program_id"].as_str().unwrap(), program_id);
    let log = std::fs::read_to_string(&worker_log).unwrap();
    assert!(log.contains("batch proven"), "the worker proved it: {log}");
    cli_ok(&[
        "settlement",
        "register",
        "--rpc",
        &anvil.url(),
        "--contract",
        &contract,
        "--data-dir",
        data.to_str().unwrap(),
        "--program-id",
        &program_id,
        "--submitter",
        &submitter.to_string(),
    ]);

    // The bridge settles it (it was retrying while the chain was unknown).
    let public =
        EvmSettlement::new(&anvil.url(), contract_addr, None, SendPolicy::default()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let settled = loop {
        if let Some(b) = public.batch(chain_id, 1).await.unwrap() {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch 1 not settled"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let new_root: B256 = outputs["new_state_root"].as_str().unwrap().parse().unwrap();
    let last_hash: B256 = outputs["last_block_hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let new_commitment = state_transition::state_commitment(new_root, last_hash);
    assert_eq!(settled.outputs.new_commitment, new_commitment);
    assert_eq!(
        settled.outputs.private_commitment.to_string(),
        outputs["private_commitment"].as_str().unwrap()
    );
    assert_eq!(settled.program_id.to_string(), program_id);
    assert_eq!(
        settled.outputs_digest.to_string(),
        outputs["digest"].as_str().unwrap()
    );
    wait_health(&node, |s| s["settled_batch"] == 1 && s["failing"] == false).await;
    // The lag, in blocks: batch 1's blocks are proven, exported and settled.
    let last = outputs["last_block"].as_u64().unwrap();
    // None of batch 1's own outputs may have left either: its roots, block
    // hashes, audit head; its block range and audit size as whole words.
    for field in [
        "prev_state_root",
        "new_state_root",
        "last_block_hash",
        "batch_commitment",
        "audit_root",
    ] {
        let h: B256 = outputs[field].as_str().unwrap().parse().unwrap();
        secrets.add_bytes(field, h.as_slice());
    }
    let lag = node.health().await["proving"].clone();
    assert_eq!(lag["proven_block"], last, "{lag}");
    assert_eq!(lag["exported_block"], last, "{lag}");
    assert_eq!(lag["settled_block"], last, "{lag}");
    assert_eq!(lag["unexported_batches"], 0, "{lag}");
    assert!(
        lag["oldest_unproven_block"].is_null()
            || lag["oldest_unproven_block"].as_u64() > Some(last),
        "{lag}"
    );
    // What the console's proofs page shows: the batch, settled, with the
    // files and the counterparty's command; the files only to a signed-in
    // caller, byte for byte what the node exported.
    let listed = node.rpc("prividium_batches", json!([{ "limit": 5 }])).await;
    let b1 = &listed["result"]["batches"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["batch"] == 1).cloned())
        .unwrap_or_else(|| panic!("batch 1 not listed: {listed}"));
    assert_eq!(b1["settled"], json!(true), "{b1}");
    assert_eq!(b1["proven"], json!(true), "{b1}");
    assert_eq!(b1["newStateRoot"], outputs["new_state_root"], "{b1}");
    assert_eq!(
        b1["verify"],
        json!(format!(
            "prividium verify --proof batch-1.proof --outputs batch-1.json --image-id {program_id}"
        ))
    );
    let proof_url = format!("{}/proofs/batch-1.proof", node.url());
    let key = node.dev["api_key"].as_str().unwrap();
    let got = node
        .http
        .get(&proof_url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.bytes().await.unwrap().as_ref(),
        std::fs::read(data.join("proofs/batch-1.proof")).unwrap()
    );
    let anonymous = node.http.get(&proof_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // What an operator alerts on: the signer's funds, the proving queue,
    // the time a proof took.
    let metrics = reqwest::get(node.dev["metrics_url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(
        value("prividium_settlement_signer_balance_ether").is_some_and(|v| v > 0.0),
        "{metrics}"
    );
    assert!(
        value("prividium_proving_seconds_count").is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("prividium_prover_queue_batches{state=\"queued\"}"),
        "{metrics}"
    );
    // Whether each stage is processing or waiting.
    for stage in ["prover-cutter", "prover-export", "settlement"] {
        let series = format!("prividium_stage_busy{{stage=\"{stage}\"}}");
        assert!(
            value(&series).is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{series}: {metrics}"
        );
    }

    // The settlement node restarts, then the appliance: the bridge resumes
    // from the contract, checks the settled tip is its own batch and sends
    // nothing twice.
    anvil.stop();
    wait_health(&node, |s| s["reachable"] == false).await;
    anvil.restart();
    node.stop();
    let node = Node::start_with(&data, &args).await;
    wait_health(&node, |s| s["settled_batch"] == 1 && s["failing"] == false).await;
    let chain = public.chain(chain_id).await.unwrap().unwrap();
    assert_eq!(
        (chain.last_batch, chain.last_commitment),
        (1, new_commitment)
    );
    assert!(
        token_block <= last,
        "the token transfer (block {token_block}) missed batch 1 (to block {last})"
    );
    let at = Disclosed {
        node: &node,
        data: &data,
        anvil: &anvil.url(),
        contract: &contract,
        tmp: tmp.path(),
    };
    at.exact_balance(payees[0], last).await;
    at.token_balance_bound_by_the_predicate_program(token, payee)
        .await;
    node.stop();

    // A counterparty with the proof file and the contract address only.
    let elsewhere = tmp.path().join("counterparty");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let proof = elsewhere.join("batch-1.proof");
    std::fs::copy(data.join("proofs/batch-1.proof"), &proof).unwrap();
    let verify = |proof: &Path, batch: &str| {
        cli(&[
            "verify",
            "--settlement-rpc",
            &anvil.url(),
            "--contract",
            &contract,
            "--batch",
            batch,
            "--proof",
            proof.to_str().unwrap(),
            "--image-id",
            &program_id,
        ])
    };
    let ok = verify(&proof, "1");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.starts_with("valid: batch 1"), "{stdout}");
    assert!(!verify(&proof, "2").status.success());
    let mut bytes = std::fs::read(&proof).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let tampered = elsewhere.join("tampered.proof");
    std::fs::write(&tampered, bytes).unwrap();
    let bad = verify(&tampered, "1");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("does NOT verify"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // What left the appliance: commitments, never the private data.
    let sent = recorder.text();
    assert!(sent.contains("eth_sendrawtransaction"), "nothing was sent");
    let leaks = secrets.found_in(&sent);
    assert!(
        leaks.is_empty(),
        "private data sent to the settlement chain: {leaks:?}"
    );
    // The one settlement transaction holds the five settled words and the
    // proof digest; no word is batch 1's last block or audit size.
    let calls = peers::sent_calls(&recorder);
    assert_eq!(calls.len(), 1, "one settlement transaction");
    assert_eq!(calls[0].len(), 4 + 32 * 3 + 160);
    // (A number equal to the batch number, 1, is indistinguishable from
    // it and is skipped.)
    for number in [last, outputs["audit_size"].as_u64().unwrap()] {
        if number == 1 {
            continue;
        }
        let word = B256::from(U256::from(number));
        assert!(
            !calls[0][4..].chunks(32).any(|w| w == word.as_slice()),
            "{number} is in the settlement calldata"
        );
    }

    // The settlement is in the audit log, and so is each proof the prover
    // exported.
    let events = |action: &str| {
        let dir = data.to_str().unwrap();
        cli_ok(&[
            "audit",
            "query",
            "--data-dir",
            dir,
            "--action",
            action,
            "--format",
            "csv",
        ])
    };
    let q = events("settlement.submitted");
    assert_eq!(q.matches("batch/1").count(), 1, "settled once: {q}");
    let q = events("proof.exported");
    assert!(q.contains("batch/1"), "proof export recorded: {q}");
    assert!(
        q.contains(&format!("-{}-0", worker.id())),
        "the export names the worker that proved it: {q}"
    );
    drop(worker);
    pg.drop_db().await;
}

/// Waits (60 s at most) until `/health`'s settlement part satisfies `ok`.
async fn wait_health(node: &Node, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let health = node.health().await;
        if ok(&health["settlement"]) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "settlement status not reached: {health}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
