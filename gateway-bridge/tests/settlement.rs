//! The settlement contract and the bridge against a real anvil.

mod support;

use alloy_primitives::{keccak256, Address, B256};
use alloy_sol_types::SolCall;
use gateway_bridge::{
    Bridge, BridgeConfig, BridgeError, Commitment, EvmSettlement, ProofCheck, ProofsDir,
    SendPolicy, SettlementClient,
};
use state_transition::BatchOutputs;
use std::{sync::Arc, time::Duration};
use support::{key, Anvil, Batches, Recorder, OWNER_KEY, SUBMITTER_KEY};

fn policy() -> SendPolicy {
    SendPolicy {
        rpc_timeout: Duration::from_secs(5),
        mine_timeout: Duration::from_secs(10),
        max_resends: 2,
    }
}

async fn deploy(url: &str, b: &Batches, chain_id: u64) -> Address {
    deploy_from(url, chain_id, 0, b.genesis_commitment()).await
}

/// A new contract with the chain registered to go on after batch
/// `start_batch`, from state commitment `start`.
async fn deploy_from(url: &str, chain_id: u64, start_batch: u64, start: B256) -> Address {
    let owner = EvmSettlement::deploy(url, key(OWNER_KEY), policy())
        .await
        .unwrap();
    owner
        .register_chain(
            chain_id,
            start_batch,
            start,
            Batches::program_id(),
            key(SUBMITTER_KEY).address(),
        )
        .await
        .unwrap();
    owner.contract()
}

/// The contract's reason for refusing `outputs` with proof `proof`.
async fn refusal(client: &EvmSettlement, outputs: BatchOutputs, proof: &[u8]) -> String {
    match client.commit(&Commitment::new(&outputs, proof)).await {
        Err(BridgeError::Reverted(r)) => r,
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[tokio::test]
async fn contract_keeps_contiguous_batches_from_the_submitter_only() {
    let dir = tempfile::tempdir().unwrap();
    let anvil = Anvil::start(dir.path());
    let mut b = Batches::new();
    let chain_id = b.chain.spec.chain_id;
    let contract = deploy(&anvil.url(), &b, chain_id).await;
    let submitter =
        EvmSettlement::new(&anvil.url(), contract, Some(key(SUBMITTER_KEY)), policy()).unwrap();
    let stranger =
        EvmSettlement::new(&anvil.url(), contract, Some(key(OWNER_KEY)), policy()).unwrap();
    let o1 = b.next();
    let o2 = b.next();

    let chain = submitter.chain(chain_id).await.unwrap().unwrap();
    assert_eq!(chain.last_batch, 0);
    assert_eq!(chain.last_commitment, b.genesis_commitment());
    assert_eq!(chain.program_id, Batches::program_id());
    assert!(submitter.chain(chain_id + 1).await.unwrap().is_none());

    // Only the registered submitter, only the next batch, only from the
    // last root.
    let e = refusal(&stranger, o1, b"p1").await;
    assert!(e.contains("NotSubmitter"), "{e}");
    let e = refusal(&submitter, o2, b"p2").await;
    assert!(e.contains("NotNextBatch"), "{e}");
    // A batch from another root, or from the right root after another
    // block (a gap or a fork), does not chain on.
    let mut forged = o1;
    forged.prev_state_root = B256::repeat_byte(9);
    let e = refusal(&submitter, forged, b"p1").await;
    assert!(e.contains("CommitmentMismatch"), "{e}");
    let mut forged = o1;
    forged.prev_block_hash = B256::repeat_byte(9);
    let e = refusal(&submitter, forged, b"p1").await;
    assert!(e.contains("CommitmentMismatch"), "{e}");

    let mined = submitter
        .commit(&Commitment::new(&o1, b"p1"))
        .await
        .unwrap();
    let stored = submitter.batch(chain_id, 1).await.unwrap().unwrap();
    assert_eq!(stored.settled(), o1.settled());
    assert_eq!(stored.outputs.prev_commitment, b.genesis_commitment());
    assert_eq!(
        stored.outputs.new_commitment,
        state_transition::state_commitment(o1.new_state_root, o1.last_block_hash)
    );
    assert_eq!(stored.outputs.private_commitment, keccak256(o1.encode()));
    assert_eq!(stored.outputs_digest, o1.digest());
    assert_eq!(stored.proof_digest, keccak256(b"p1"));
    assert_eq!(stored.program_id, Batches::program_id());
    assert_eq!(
        submitter.find_proof(keccak256(b"p1")).await.unwrap(),
        Some((chain_id, 1))
    );
    assert!(submitter.batch(chain_id, 2).await.unwrap().is_none());

    // One BatchCommitted event, indexed by chain and batch.
    let logs = event_logs(&anvil.url(), contract, mined.block_number);
    assert_eq!(logs.len(), 1);
    let topics = logs[0]["topics"].as_array().unwrap();
    assert_eq!(
        topics[0].as_str().unwrap(),
        keccak256("BatchCommitted(uint64,uint64,bytes32,bytes32,bytes32)").to_string()
    );
    assert_eq!(
        topics[2].as_str().unwrap(),
        B256::left_padding_from(&[1]).to_string()
    );
    // Its data is the new commitment, the proof digest and the program id.
    let data = logs[0]["data"].as_str().unwrap();
    assert_eq!(
        data,
        format!(
            "0x{}{}{}",
            alloy_primitives::hex::encode(stored.outputs.new_commitment),
            alloy_primitives::hex::encode(keccak256(b"p1")),
            alloy_primitives::hex::encode(Batches::program_id())
        )
    );

    // A proof is committed once.
    let e = refusal(&submitter, o2, b"p1").await;
    assert!(e.contains("ProofAlreadyCommitted"), "{e}");
    submitter
        .commit(&Commitment::new(&o2, b"p2"))
        .await
        .unwrap();
    let chain = submitter.chain(chain_id).await.unwrap().unwrap();
    assert_eq!(chain.last_batch, 2);
    assert_eq!(chain.last_commitment, o2.settled().new_commitment);
}

#[tokio::test]
async fn a_chain_moved_from_an_earlier_contract_continues_after_its_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let anvil = Anvil::start(dir.path());
    let mut b = Batches::new();
    let chain_id = b.chain.spec.chain_id;
    let o1 = b.next();
    let o2 = b.next();
    // Batch 1 was settled under the old contract: the new one starts
    // after it, from its commitment.
    let contract = deploy_from(&anvil.url(), chain_id, 1, o1.settled().new_commitment).await;
    let submitter =
        EvmSettlement::new(&anvil.url(), contract, Some(key(SUBMITTER_KEY)), policy()).unwrap();
    let e = refusal(&submitter, o1, b"p1").await;
    assert!(e.contains("NotNextBatch"), "{e}");
    submitter
        .commit(&Commitment::new(&o2, b"p2"))
        .await
        .unwrap();
    let chain = submitter.chain(chain_id).await.unwrap().unwrap();
    assert_eq!(chain.last_batch, 2);
    assert!(submitter.batch(chain_id, 1).await.unwrap().is_none());
    assert_eq!(
        submitter
            .batch(chain_id, 2)
            .await
            .unwrap()
            .unwrap()
            .outputs_digest,
        o2.digest()
    );
}

fn event_logs(url: &str, contract: Address, block: u64) -> Vec<serde_json::Value> {
    let b = format!("{block:#x}");
    let filter = serde_json::json!([{"address": contract, "fromBlock": b, "toBlock": b}]);
    support::rpc(url, "eth_getLogs", filter)
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_settled(bridge: &Bridge, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bridge.status().settled_batch < Some(n) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "batch {n} not settled: {:?}",
            bridge.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn bridge(url: &str, contract: Address, proofs: &std::path::Path, chain_id: u64) -> Bridge {
    let client = EvmSettlement::new(url, contract, Some(key(SUBMITTER_KEY)), policy()).unwrap();
    Bridge::spawn(
        client,
        Arc::new(ProofsDir::new(proofs, ProofCheck::Consistency)),
        Arc::new(()),
        BridgeConfig {
            chain_id,
            poll: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
        },
    )
}

#[tokio::test]
async fn bridge_settles_in_order_through_restarts_and_sends_nothing_private() {
    let dir = tempfile::tempdir().unwrap();
    let proofs = dir.path().join("proofs");
    let mut anvil = Anvil::start(dir.path());
    let recorder = Recorder::start(anvil.port).await;
    let mut b = Batches::new();
    let chain_id = b.chain.spec.chain_id;
    let contract = deploy(&anvil.url(), &b, chain_id).await;
    let reader = EvmSettlement::new(&anvil.url(), contract, None, policy()).unwrap();
    for n in 1..=5 {
        b.next();
        if n <= 2 {
            b.write(&proofs, n);
        }
    }

    let running = bridge(&recorder.url(), contract, &proofs, chain_id);
    wait_settled(&running, 2).await;

    // The settlement node goes down; batch 3 is proven meanwhile.
    anvil.stop();
    b.write(&proofs, 3);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = running.status();
    assert!(
        !status.reachable && status.last_error.is_some(),
        "{status:?}"
    );
    anvil.restart();
    wait_settled(&running, 3).await;

    // The appliance restarts: the new bridge resumes from the contract.
    running.stop().await;
    b.write(&proofs, 4);
    b.write(&proofs, 5);
    let running = bridge(&recorder.url(), contract, &proofs, chain_id);
    wait_settled(&running, 5).await;
    running.stop().await;

    let chain = reader.chain(chain_id).await.unwrap().unwrap();
    assert_eq!(chain.last_batch, 5);
    assert_eq!(
        chain.last_commitment,
        state_transition::state_commitment(
            *b.chain.roots.last().unwrap(),
            *b.chain.hashes.last().unwrap()
        )
    );
    for (i, o) in b.outputs.iter().enumerate() {
        let stored = reader.batch(chain_id, i as u64 + 1).await.unwrap().unwrap();
        assert_eq!(stored.outputs_digest, o.digest(), "batch {}", i + 1);
    }

    // Egress: every byte the bridge sent, and none of the private data.
    let sent = recorder.text();
    assert!(sent.contains("eth_sendrawtransaction"));
    assert!(sent.contains(&alloy_primitives::hex::encode(
        b.outputs[0].settled().new_commitment
    )));
    // Each settlement transaction carries exactly the settled outputs and
    // the proof digest: no block number, audit size or time, in any word.
    let commits = support::sent_calls(&recorder);
    assert_eq!(commits.len(), 5, "one transaction per batch");
    for (i, input) in commits.iter().enumerate() {
        let o = &b.outputs[i];
        let call =
            gateway_bridge::contract::PrividiumSettlement::commitBatchCall::abi_decode(input)
                .unwrap();
        assert_eq!(call.outputs.as_ref(), o.settled().encode().as_slice());
        // (Batch 1 starts at block 1: a number equal to the batch number is
        // indistinguishable from it and is skipped.)
        for number in [o.first_block, o.last_block, o.audit_size] {
            if number == o.batch_number {
                continue;
            }
            let word = B256::from(alloy_primitives::U256::from(number));
            assert!(
                !input[4..].chunks(32).any(|w| w == word.as_slice()),
                "batch {}: {number} is in the calldata",
                i + 1
            );
        }
    }
    // The contract's events say no more than its calldata.
    let logs = support::rpc(
        &anvil.url(),
        "eth_getLogs",
        serde_json::json!([{"address": contract, "fromBlock": "0x0", "toBlock": "latest"}]),
    );
    let logs = serde_json::to_string(&logs).unwrap();
    let leaks = b.secrets.found_in(&logs);
    assert!(leaks.is_empty(), "private data in the events: {leaks:?}");
    // The search itself finds what it looks for.
    let first_tx = b.chain.blocks[0].transactions[0].tx_hash().to_string();
    assert_eq!(b.secrets.found_in(&first_tx).len(), 1);
    let leaks = b.secrets.found_in(&sent);
    assert!(
        leaks.is_empty(),
        "private data sent to the settlement node: {leaks:?}"
    );

    // An appliance whose batch differs from the settled one stops rather
    // than building on it.
    let other = dir.path().join("other");
    let mut fork = Batches::new();
    for n in 1..=5 {
        fork.next();
        fork.write(&other, n);
    }
    // Same blocks but a different audit head binding: different outputs.
    let mut o5 = fork.outputs[4];
    o5.audit_size += 1;
    fork.outputs[4] = o5;
    fork.write(&other, 5);
    let diverged = bridge(&anvil.url(), contract, &other, chain_id);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let status = diverged.status();
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("differ")),
        "{status:?}"
    );
    diverged.stop().await;
}

#[tokio::test]
async fn counterparty_finds_the_commitment_of_a_proof_and_rejects_others() {
    let dir = tempfile::tempdir().unwrap();
    let proofs = dir.path().join("proofs");
    let anvil = Anvil::start(dir.path());
    let mut b = Batches::new();
    let chain_id = b.chain.spec.chain_id;
    let contract = deploy(&anvil.url(), &b, chain_id).await;
    b.next();
    b.write(&proofs, 1);
    let running = bridge(&anvil.url(), contract, &proofs, chain_id);
    wait_settled(&running, 1).await;
    running.stop().await;

    let public = EvmSettlement::new(&anvil.url(), contract, None, policy()).unwrap();
    let proof = std::fs::read(proofs.join("batch-1.proof")).unwrap();
    // Found and matched to batch 1; the stand-in proof then fails the
    // cryptographic check (a real proof passes it: the zkVM test).
    let e = gateway_bridge::verify_settled(&public, &proof, 1, Some(chain_id))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("settlement-test"), "{e}");
    let e = gateway_bridge::verify_settled(&public, &proof, 2, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("committed for chain") && e.contains("batch 1"),
        "{e}"
    );
    let mut other = proof.clone();
    *other.last_mut().unwrap() ^= 1;
    let e = gateway_bridge::verify_settled(&public, &other, 1, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no batch on the settlement contract"), "{e}");
}
