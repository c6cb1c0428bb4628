//! The proving service without a zkVM: batches are cut by size and by time,
//! queued durably with outputs that match the chain, picked up again after a
//! restart, and a worker whose backend fails puts the job back for a retry.

mod support;

use alloy_primitives::B256;
use proof::ProofError;
use prover::{
    BatchPolicy, ChainSource, CheckpointStore, Cutter, CycleModel, Exporter, JobState, KvJobStore,
    Lease, Made, NativeBackend, ProverError, QueueView, Worker, WorkerQueue,
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
        ..BatchPolicy::default()
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
        ..BatchPolicy::default()
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
    let exporter = Exporter::new(jobs.clone(), dir.path().into(), B256::repeat_byte(7));
    assert_eq!(exporter.run_once().unwrap(), None, "nothing proven yet");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "no files for unproven batches"
    );
}

/// The block ranges of every queued batch.
fn ranges(jobs: &KvJobStore) -> Vec<(u64, u64)> {
    let all = jobs.jobs(1, 100).unwrap();
    all.iter().map(|j| (j.first_block, j.last_block)).collect()
}

/// A cutter over `chain` with a cycle budget and a model counting only
/// transactions and witness bytes.
fn budget_cutter(
    chain: &TestChain,
    max_blocks: u64,
    max_cycles: u64,
    per_transaction: f64,
    per_witness_byte: f64,
) -> (Cutter, Arc<KvJobStore>) {
    let policy = BatchPolicy {
        max_blocks,
        max_wait: Duration::from_secs(3600),
        max_cycles,
        model: CycleModel {
            fixed: 0.0,
            per_transaction,
            per_gas: 0.0,
            per_witness_byte,
        },
    };
    let store: Arc<dyn storage::KvStore> = Arc::new(storage::MemoryStore::default());
    let jobs = Arc::new(KvJobStore::new(store));
    (cutter(chain, Source::of(chain), jobs.clone(), policy), jobs)
}

/// A busy chain is cut by estimated cycles, not only by block count, so no
/// batch takes unboundedly long to prove: batches stay within the budget
/// unless a single block is over it (blocks are never split), and blocks
/// under the budget wait for more.
#[test]
fn a_busy_chain_is_cut_by_its_cycle_budget() {
    let mut chain = TestChain::new();
    for (block, txs) in [3usize, 3, 3, 10, 1].into_iter().enumerate() {
        let txs = (0..txs)
            .map(|i| chain.eth(i % 4, TestChain::address(5 + block), 1))
            .collect();
        chain.produce(txs);
    }
    // 1,000 cycles a transaction, a budget of six.
    let (mut c, jobs) = budget_cutter(&chain, 100, 6_000, 1_000.0, 0.0);
    while c.cut_if_due().unwrap().is_some() {}
    assert_eq!(
        ranges(&jobs),
        vec![(1, 2), (3, 3), (4, 4)],
        "3+3 fit, 3+10 do not, 10 alone is over but one block; the last transfer waits"
    );
    for job in jobs.jobs(1, 10).unwrap() {
        let out = BatchOutputs::decode(&job.outputs).unwrap();
        assert_eq!(out.new_state_root, chain.roots[job.last_block as usize]);
    }

    // The witness counts too: it is known only once the batch is
    // witnessed, so a batch due by block count is witnessed again shorter.
    let one_block = chain
        .prover_state()
        .prepare_batch(
            &chain.spec,
            1,
            &chain.blocks[..1],
            AuditHead::default(),
            |n| chain.header(n),
        )
        .unwrap()
        .witness
        .encode()
        .len() as u64;
    let (mut c, jobs) = budget_cutter(&chain, 2, one_block + 100, 0.0, 1.0);
    assert_eq!(c.cut_if_due().unwrap(), Some(1));
    assert_eq!(ranges(&jobs), vec![(1, 1)]);
}

/// A queue holding batch 1: one ETH transfer.
fn one_transfer_queued() -> Arc<KvJobStore> {
    let mut chain = TestChain::new();
    let e = chain.eth(0, TestChain::address(2), 5);
    chain.produce(vec![e]);
    let store: Arc<dyn storage::KvStore> = Arc::new(storage::MemoryStore::default());
    let jobs = Arc::new(KvJobStore::new(store));
    let policy = BatchPolicy {
        max_blocks: 1,
        max_wait: Duration::ZERO,
        ..BatchPolicy::default()
    };
    let mut c = cutter(&chain, Source::of(&chain), jobs.clone(), policy);
    assert_eq!(c.cut_if_due().unwrap(), Some(1));
    jobs
}

/// A worker on another machine is not trusted: a proof that does not
/// verify for the batch's outputs and the pinned program is not exported,
/// and the batch goes back to the queue to be proven again.
#[test]
fn the_exporter_refuses_a_bad_proof_and_requeues_the_batch() {
    let jobs = one_transfer_queued();

    let (job, _) = jobs.claim(Lease::new("rogue", 1, 60_000)).unwrap().unwrap();
    assert_eq!(job.batch_number, 1);
    jobs.finish(1, "rogue", Made::new(b"not a proof", 10, Some(1)))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::new(jobs.clone(), dir.path().into(), B256::repeat_byte(7));
    assert!(matches!(
        exporter.run_once(),
        Err(ProverError::Proof(ProofError::BadProofFile(_)))
    ));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    assert_eq!(jobs.exported_through().unwrap(), 0);
    assert_eq!(jobs.proof(1).unwrap(), None, "the bad proof is dropped");
    let job = jobs.job(1).unwrap().unwrap();
    assert!(matches!(job.state, JobState::Queued { not_before_ms } if not_before_ms > 0));
    let why = job.last_error.unwrap();
    assert!(why.contains("rogue") && why.contains("refused"), "{why}");
}

/// Checkpoints kept in memory.
#[derive(Default)]
struct Kept(std::sync::Mutex<Option<Vec<u8>>>);

impl CheckpointStore for Kept {
    fn load(&self) -> Result<Option<Vec<u8>>, ProverError> {
        Ok(self.0.lock().unwrap().clone())
    }
    fn save(&self, bytes: &[u8]) -> Result<(), ProverError> {
        *self.0.lock().unwrap() = Some(bytes.to_vec());
        Ok(())
    }
}

/// The chain without blocks 1..`from` (what a restart from a checkpoint
/// must not need).
struct Recent {
    inner: Arc<Source>,
    from: u64,
}

impl ChainSource for Recent {
    fn head(&self) -> Result<u64, ProverError> {
        self.inner.head()
    }
    fn block(&self, n: u64) -> Result<prover::ChainBlock, ProverError> {
        if n > 0 && n < self.from {
            return Err(ProverError::Chain(format!("block {n} not read")));
        }
        self.inner.block(n)
    }
}

#[test]
fn a_restarted_cutter_resumes_from_its_checkpoint_and_distrusts_a_damaged_one() {
    let mut chain = TestChain::new();
    let (deploy, token) = chain.deploy_token(0, 1_000);
    chain.produce(vec![deploy]);
    for i in 0..4u64 {
        let t = chain.token_transfer(0, token, TestChain::address(1), 10 + i);
        chain.produce(vec![t]);
    }
    let source = Source::of(&chain);
    let store: Arc<dyn storage::KvStore> = Arc::new(storage::MemoryStore::default());
    let jobs = Arc::new(KvJobStore::new(store));
    let kept = Arc::new(Kept::default());
    let policy = BatchPolicy {
        max_blocks: 2,
        max_wait: Duration::ZERO,
        ..BatchPolicy::default()
    };
    let mut c = cutter(&chain, source.clone(), jobs.clone(), policy)
        .with_checkpoints(kept.clone(), Duration::ZERO);
    assert_eq!(c.cut_if_due().unwrap(), Some(1));
    assert_eq!(c.cut_if_due().unwrap(), Some(2));
    drop(c);

    // Restarted: blocks 1..3 are never read, batch 3 follows on.
    let recent = Arc::new(Recent {
        inner: source.clone(),
        from: 4,
    });
    let mut c = Cutter::new(
        chain.spec.clone(),
        chain.genesis.clone(),
        recent.clone(),
        jobs.clone(),
        Arc::new(FixedAudit(AuditHead::default())),
        policy,
    )
    .with_checkpoints(kept.clone(), Duration::from_secs(3600));
    assert_eq!(c.cut_if_due().unwrap(), Some(3));
    let out = BatchOutputs::decode(&jobs.job(3).unwrap().unwrap().outputs).unwrap();
    assert_eq!(
        (out.first_block, out.prev_state_root, out.new_state_root),
        (5, chain.roots[4], chain.roots[5])
    );
    drop(c);

    // One balance changed in the checkpoint: its root no longer matches the
    // chain, so it is not used (and without the old blocks, nothing is cut).
    let t = chain.token_transfer(1, token, TestChain::address(3), 1);
    source.push(chain.produce(vec![t]));
    {
        let mut k = kept.0.lock().unwrap();
        let bytes = k.as_mut().unwrap();
        bytes[83] ^= 1; // the first account's balance
    }
    let mut c = Cutter::new(
        chain.spec.clone(),
        chain.genesis.clone(),
        recent,
        jobs.clone(),
        Arc::new(FixedAudit(AuditHead::default())),
        policy,
    )
    .with_checkpoints(kept.clone(), Duration::ZERO);
    assert!(c.cut_if_due().is_err(), "the damaged checkpoint was used");
    let mut c = cutter(&chain, source, jobs.clone(), policy).with_checkpoints(kept, Duration::ZERO);
    assert_eq!(c.cut_if_due().unwrap(), Some(4), "replayed from genesis");
    let out = BatchOutputs::decode(&jobs.job(4).unwrap().unwrap().outputs).unwrap();
    assert_eq!(out.new_state_root, chain.roots[6]);
}

/// Executes natively, then takes its time to "prove" (and makes no proof).
struct Slow(Duration);

impl prover::ZkBackend for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn program_id(&self) -> B256 {
        B256::ZERO
    }
    fn execute(&self, witness: &[u8]) -> Result<prover::Execution, ProverError> {
        NativeBackend.execute(witness)
    }
    fn prove(&self, _witness: &[u8]) -> Result<Vec<u8>, ProverError> {
        std::thread::sleep(self.0);
        Err(ProverError::CannotProve("slow"))
    }
}

#[test]
fn a_stopping_worker_hands_its_batch_back_instead_of_holding_the_lease() {
    let jobs = one_transfer_queued();

    let worker = Worker::new(
        "w-stopping",
        jobs.clone(),
        Arc::new(Slow(Duration::from_secs(3))),
        Duration::from_secs(7200),
    );
    let service = prover::ProverService::spawn(None, vec![worker], None, Duration::from_millis(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !matches!(
        jobs.job(1).unwrap().unwrap().state,
        JobState::Proving { .. }
    ) {
        assert!(std::time::Instant::now() < deadline, "never claimed");
        std::thread::sleep(Duration::from_millis(10));
    }
    service.stop(Duration::from_millis(50));
    let job = jobs.job(1).unwrap().unwrap();
    assert!(matches!(job.state, JobState::Queued { .. }), "{job:?}");
    assert!(job.last_error.unwrap().contains("worker stopped"));
    assert!(
        jobs.claim(Lease::new("next", prover_now(), 1_000))
            .unwrap()
            .is_some(),
        "another worker can take it now, not in two hours"
    );
}

/// A chain that wakes a waiting reader on each new block, as the node's
/// sequencer does, and never by the clock: a cutter that cuts here after
/// going idle was woken by the head, not by a poll.
struct Announcing {
    blocks: std::sync::Mutex<Vec<prover::ChainBlock>>,
    grew: std::sync::Condvar,
    waiting: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
}

impl Announcing {
    fn push(&self, block: prover::ChainBlock) {
        self.blocks.lock().unwrap().push(block);
        self.grew.notify_all();
    }

    fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _guard = self.blocks.lock().unwrap();
        self.grew.notify_all();
    }
}

impl ChainSource for Announcing {
    fn head(&self) -> Result<u64, ProverError> {
        Ok(self.blocks.lock().unwrap().len() as u64 - 1)
    }

    fn block(&self, n: u64) -> Result<prover::ChainBlock, ProverError> {
        self.blocks
            .lock()
            .unwrap()
            .get(n as usize)
            .cloned()
            .ok_or(ProverError::Chain(format!("no block {n}")))
    }

    fn wait_past(&self, seen: u64, _timeout: Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let blocks = self.blocks.lock().unwrap();
        self.waiting.store(true, SeqCst);
        let _woken = self
            .grew
            .wait_while(blocks, |b| {
                b.len() as u64 - 1 <= seen && !self.closed.load(SeqCst)
            })
            .unwrap();
        true
    }
}

#[test]
fn an_idle_cutter_wakes_on_a_new_head_instead_of_polling() {
    let mut chain = TestChain::new();
    let (deploy, _) = chain.deploy_token(0, 1_000);
    chain.produce(vec![deploy]);
    let source = Arc::new(Announcing {
        blocks: std::sync::Mutex::new(vec![prover::ChainBlock {
            header: chain.headers[0].clone(),
            hash: chain.hashes[0],
            transactions: Vec::new(),
        }]),
        grew: std::sync::Condvar::new(),
        waiting: false.into(),
        closed: false.into(),
    });
    let jobs = Arc::new(KvJobStore::new(Arc::new(storage::MemoryStore::default())));
    let policy = BatchPolicy {
        max_blocks: 1,
        max_wait: Duration::from_secs(3600),
        ..BatchPolicy::default()
    };
    let audit = FixedAudit(AuditHead {
        size: 5,
        root: B256::repeat_byte(5),
    });
    let cutter = Cutter::new(
        chain.spec.clone(),
        chain.genesis.clone(),
        source.clone(),
        jobs.clone(),
        Arc::new(audit),
        policy,
    );
    // An hour between polls: only a wake from the chain can cut in time.
    let service =
        prover::ProverService::spawn(Some(cutter), vec![], None, Duration::from_secs(3600));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !source.waiting.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the cutter never went idle"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(jobs.last_cut().unwrap(), None, "nothing to cut yet");

    source.push(chain.blocks[0].clone());
    while jobs.last_cut().unwrap() != Some((1, 1)) {
        assert!(
            std::time::Instant::now() < deadline,
            "block 1 was never cut: the cutter did not wake on the new head"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    source.close();
    service.stop(Duration::from_secs(5));
}

fn prover_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
