//! The proving service without a zkVM: batches are cut by size and by time,
//! queued durably with outputs that match the chain, picked up again after a
//! restart, and a worker whose backend fails puts the job back for a retry.

mod support;

use alloy_primitives::B256;
use prover::{
    BatchPolicy, Cutter, JobState, JobStore, KvJobStore, NativeBackend, ProverError, Worker,
};
use state_transition::{AuditHead, BatchOutputs};
use std::{sync::Arc, time::Duration};
use support::{FixedAudit, Source, TestChain};

fn cutter(
    chain: &TestChain,
    source: Arc<Source>,
    jobs: Arc<KvJobStore>,
    policy: BatchPolicy,
) -> Cutter {
    let audit = FixedAudit(AuditHead {
        size: 5,
        root: B256::repeat_byte(5),
    });
    Cutter::new(
        chain.spec.clone(),
        chain.genesis.clone(),
        source,
        jobs,
        Arc::new(audit),
        policy,
    )
}

#[test]
fn batches_are_cut_queued_resumed_and_retried() {
    let mut chain = TestChain::new();
    let (deploy, token) = chain.deploy_token(0, 1_000);
    chain.produce(vec![deploy]);
    for i in 0..4u64 {
        let t = chain.token_transfer(0, token, TestChain::address(1), 10 + i);
        let e = chain.eth(1, TestChain::address(2), 1 + i);
        chain.produce(vec![t, e]);
    }
    let source = Source::of(&chain);
    let store: Arc<dyn storage::KvStore> = Arc::new(storage::MemoryStore::default());
    let jobs = Arc::new(KvJobStore::new(store.clone()));
    let by_size = BatchPolicy {
        max_blocks: 2,
        max_wait: Duration::from_secs(3600),
    };
    let mut c = cutter(&chain, source.clone(), jobs.clone(), by_size);
    assert_eq!(c.cut_if_due().unwrap(), Some(1));
    assert_eq!(c.cut_if_due().unwrap(), Some(2));
    assert_eq!(c.cut_if_due().unwrap(), None, "one block left: not due yet");

    // A restarted cutter rebuilds its state by replay and goes on.
    let jobs = Arc::new(KvJobStore::new(store));
    let by_time = BatchPolicy {
        max_blocks: 2,
        max_wait: Duration::ZERO,
    };
    let mut c = cutter(&chain, source.clone(), jobs.clone(), by_time);
    assert_eq!(c.cut_if_due().unwrap(), Some(3));
    assert_eq!(c.cut_if_due().unwrap(), None);
    let t = chain.token_transfer(1, token, TestChain::address(3), 1);
    source.push(chain.produce(vec![t]));
    assert_eq!(c.cut_if_due().unwrap(), Some(4));

    let all = jobs.jobs(1, 10).unwrap();
    let ranges: Vec<(u64, u64)> = all.iter().map(|j| (j.first_block, j.last_block)).collect();
    assert_eq!(ranges, vec![(1, 2), (3, 4), (5, 5), (6, 6)]);
    for (i, job) in all.iter().enumerate() {
        let out = BatchOutputs::decode(&job.outputs).unwrap();
        assert_eq!(out.batch_number, i as u64 + 1);
        assert_eq!(
            out.prev_state_root,
            chain.roots[job.first_block as usize - 1]
        );
        assert_eq!(out.new_state_root, chain.roots[job.last_block as usize]);
        assert_eq!(out.last_block_hash, chain.hashes[job.last_block as usize]);
        assert_eq!(out.audit_size, 5);
    }

    // A backend that cannot prove: the job goes back with the error, later.
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(
        "w1",
        jobs.clone(),
        Arc::new(NativeBackend),
        dir.path().to_path_buf(),
        Duration::from_secs(60),
    );
    assert!(matches!(
        worker.run_once(),
        Err(ProverError::CannotProve(_))
    ));
    let job = jobs.job(1).unwrap().unwrap();
    assert!(matches!(job.state, JobState::Queued { not_before_ms } if not_before_ms > 0));
    assert_eq!(job.attempts, 1);
    assert!(job.last_error.unwrap().contains("cannot prove"));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no files for unproven batches"
    );
}
