//! The batch program re-executes witnessed batches to the chain's own roots,
//! and every kind of lie in a witness makes it fail or changes its outputs.

mod support;

use alloy_consensus::{Signed, TxEnvelope};
use alloy_primitives::{Address, Bytes, U256};
use state_transition::{execute_batch, AuditHead, BatchError, BatchWitness};
use support::TestChain;

const AUDIT: AuditHead = AuditHead {
    size: 42,
    root: alloy_primitives::B256::repeat_byte(0xad),
};

/// Two batches: a token deployment and transfers, then transfers that empty
/// a token balance (a storage deletion) and pay a fresh address.
fn chain_with_two_batches() -> (TestChain, Vec<BatchWitness>) {
    let mut chain = TestChain::new();
    let mut prover = chain.prover_state();
    let (deploy, token) = chain.deploy_token(0, 1_000_000);
    let eth = chain.eth(0, TestChain::address(1), 5_000);
    let b1 = chain.produce(vec![deploy, eth]);
    let t1 = chain.token_transfer(0, token, TestChain::address(1), 700);
    let b2 = chain.produce(vec![t1]);
    let w1 = prover
        .witness_batch(&chain.spec, 1, &[b1, b2], AUDIT, |n| chain.header(n))
        .unwrap();
    assert_eq!(prover.root(), chain.roots[2]);

    let t2 = chain.token_transfer(1, token, TestChain::address(2), 700);
    let eth2 = chain.eth(1, Address::repeat_byte(0x77), 1);
    let b3 = chain.produce(vec![t2, eth2]);
    let t3 = chain.token_transfer(2, token, TestChain::address(3), 300);
    let b4 = chain.produce(vec![t3]);
    let w2 = prover
        .witness_batch(&chain.spec, 2, &[b3, b4], AUDIT, |n| chain.header(n))
        .unwrap();
    assert_eq!(prover.root(), chain.roots[4]);
    (chain, vec![w1, w2])
}

#[test]
fn witnessed_batches_reexecute_to_the_chains_roots() {
    let (chain, witnesses) = chain_with_two_batches();
    for (i, witness) in witnesses.iter().enumerate() {
        let first = 1 + 2 * i;
        let last = first + 1;
        let decoded = BatchWitness::decode(&witness.encode()).unwrap();
        assert_eq!(&decoded, witness);
        let out = execute_batch(&decoded).unwrap();
        assert_eq!(out.batch_number, i as u64 + 1);
        assert_eq!(out.chain_id, chain.spec.chain_id);
        assert_eq!(
            (out.first_block, out.last_block),
            (first as u64, last as u64)
        );
        assert_eq!(out.prev_state_root, chain.roots[first - 1]);
        assert_eq!(out.new_state_root, chain.roots[last]);
        assert_eq!(out.prev_block_hash, chain.hashes[first - 1]);
        assert_eq!(out.last_block_hash, chain.hashes[last]);
        assert_eq!((out.audit_size, out.audit_root), (AUDIT.size, AUDIT.root));
    }
    // The witness carries proofs for what the batch touched, not the state.
    assert!(
        witnesses[1].nodes.len() < 40,
        "{} nodes",
        witnesses[1].nodes.len()
    );
}

#[test]
fn a_lying_witness_fails_or_changes_the_outputs() {
    let (chain, witnesses) = chain_with_two_batches();
    let honest = &witnesses[1];
    let good = execute_batch(honest).unwrap();

    // A transaction changed after signing recovers to someone else, whom
    // the witness does not cover (or who has no funds): no outputs.
    let mut w = honest.clone();
    let TxEnvelope::Eip1559(signed) = &w.blocks[0].transactions[1] else {
        panic!("test transactions are EIP-1559")
    };
    let mut tx = signed.tx().clone();
    tx.value += U256::from(1);
    w.blocks[0].transactions[1] =
        TxEnvelope::Eip1559(Signed::new_unhashed(tx, *signed.signature()));
    assert!(matches!(
        execute_batch(&w),
        Err(BatchError::Witness(_) | BatchError::Rejected { .. })
    ));
    // Reordered transactions are a different block (or an invalid one).
    let mut w = honest.clone();
    w.blocks[0].transactions.swap(0, 1);
    assert!(execute_batch(&w)
        .map(|o| o.last_block_hash != chain.hashes[4])
        .unwrap_or(true));

    // Dropping or editing a trie node can only take away what the program
    // needs: it fails, or (for a node it did not need) gives the same outputs.
    let mut needed = 0;
    for i in 0..honest.nodes.len() {
        let mut w = honest.clone();
        w.nodes.remove(i);
        match execute_batch(&w) {
            Err(BatchError::Witness(_)) => needed += 1,
            other => assert_eq!(other, Ok(good), "node {i} dropped"),
        }
        let mut w = honest.clone();
        let mut node = w.nodes[i].to_vec();
        let last = node.len() - 1;
        node[last] ^= 0x01;
        w.nodes[i] = Bytes::from(node);
        let edited = execute_batch(&w);
        assert!(edited.is_err() || edited == Ok(good), "node {i} edited");
    }
    assert!(
        needed * 2 > honest.nodes.len(),
        "{needed} of {} nodes needed",
        honest.nodes.len()
    );

    // A different previous root opens nothing.
    let mut w = honest.clone();
    w.prev_state_root = chain.roots[1];
    assert!(execute_batch(&w).is_err());

    // Contract code is checked by hash: missing or edited code fails.
    let mut w = honest.clone();
    w.codes.clear();
    assert!(matches!(execute_batch(&w), Err(BatchError::Witness(_))));
    let mut w = honest.clone();
    let mut code = w.codes[0].to_vec();
    code[10] ^= 0xff;
    w.codes[0] = Bytes::from(code);
    assert!(matches!(execute_batch(&w), Err(BatchError::Witness(_))));

    // Headers must chain; a later timestamp is a different block.
    let mut w = honest.clone();
    w.ancestors.last_mut().unwrap().gas_used += 1;
    assert!(execute_batch(&w)
        .map(|o| o.prev_block_hash != good.prev_block_hash)
        .unwrap_or(true));
    let mut w = honest.clone();
    w.ancestors.insert(0, chain.headers[0].clone());
    assert!(matches!(execute_batch(&w), Err(BatchError::BrokenAncestry)));
    let mut w = honest.clone();
    w.blocks[1].timestamp += 1;
    assert_ne!(execute_batch(&w).unwrap().last_block_hash, chain.hashes[4]);
    let mut w = honest.clone();
    w.blocks[1].timestamp = 0;
    assert!(matches!(
        execute_batch(&w),
        Err(BatchError::TimeWentBack(_))
    ));

    // The audit head is bound into the outputs.
    let mut w = honest.clone();
    w.audit.size += 1;
    assert_ne!(execute_batch(&w).unwrap().digest(), good.digest());

    // Garbage is an error, not a panic.
    assert!(BatchWitness::decode(&[0xc0, 0x01]).is_err());
    let mut bytes = honest.encode();
    bytes.push(0);
    assert!(BatchWitness::decode(&bytes).is_err());
}
