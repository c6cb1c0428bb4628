//! The batch program as a RISC-V guest under OpenVM: execution matches the
//! native run; two workers on the Postgres queue prove two real batches at
//! once and they are exported in batch order; a proof verifies from public
//! data alone, and tampering with the witness, the outputs, the program id
//! or the proof is refused.
//!
//! Needs `prover/guest/build.sh` to have built the guest and runs in release
//! (`scripts/test.sh` does both); names start with `zkvm_` so the debug
//! workspace run can skip them.
#![cfg(feature = "openvm")]

#[path = "support/guest.rs"]
mod guest;
mod support;

use alloy_consensus::{Signed, TxEnvelope};
use alloy_primitives::{Signature, B256, U256};
use proof::{verify_proof, OutputsFile, ProofEnvelope, ProofError};
use prover::{
    BatchPolicy, Cutter, ExportedProof, Exporter, JobState, OpenVmBackend, PgJobStore,
    ProofObserver, ProverError, ProverService, QueueView, Worker, ZkBackend,
};
use state_transition::{execute_batch, AuditHead, BatchWitness};
use std::{
    collections::BTreeMap,
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};
use support::{FixedAudit, Source, TestChain};
use test_support::ScratchPg;

fn backend() -> OpenVmBackend {
    let backend = guest::load_guest();
    // The build and key generation are reproducible, so the id is published
    // with the source: operators and counterparties pin this value.
    let pinned = std::fs::read_to_string(format!(
        "{}/guest/PROGRAM_ID",
        std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
    ))
    .unwrap();
    assert_eq!(
        format!("{}", backend.program_id()),
        pinned.trim(),
        "the batch program changed: publish its new id in prover/guest/PROGRAM_ID"
    );
    backend
}

/// Block 1 deploys BankToken and makes one ETH and one token transfer;
/// blocks 2 and 3 hold one ETH and one token transfer alone (cycle counts).
fn chain() -> TestChain {
    let mut chain = TestChain::new();
    let (deploy, token) = chain.deploy_token(0, 1_000_000);
    let eth = chain.eth(0, TestChain::address(1), 1_000);
    let erc20 = chain.token_transfer(0, token, TestChain::address(2), 250);
    chain.produce(vec![deploy, eth, erc20]);
    let eth = chain.eth(1, TestChain::address(3), 7);
    chain.produce(vec![eth]);
    let erc20 = chain.token_transfer(2, token, TestChain::address(3), 50);
    chain.produce(vec![erc20]);
    chain
}

/// The real backend, except that batch 1's finished proof is held back
/// until the test releases it (so batch 2 finishes first whatever the
/// machine), and each batch's work is timed: from the worker's first call
/// for it (execution, before proving) to the end of its proof.
struct HoldBatchOne {
    inner: Arc<OpenVmBackend>,
    began: Mutex<BTreeMap<u64, Instant>>,
    spans: Mutex<BTreeMap<u64, (Instant, Instant)>>,
    /// (batch 1 proven and waiting, released)
    gate: (Mutex<(bool, bool)>, Condvar),
}

impl HoldBatchOne {
    fn new(inner: Arc<OpenVmBackend>) -> Self {
        Self {
            inner,
            began: Mutex::default(),
            spans: Mutex::default(),
            gate: (Mutex::new((false, false)), Condvar::new()),
        }
    }
    fn holding(&self) -> bool {
        self.gate.0.lock().unwrap().0
    }
    fn release(&self) {
        self.gate.0.lock().unwrap().1 = true;
        self.gate.1.notify_all();
    }
    fn spans(&self) -> BTreeMap<u64, (Instant, Instant)> {
        self.spans.lock().unwrap().clone()
    }
}

impl ZkBackend for HoldBatchOne {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn program_id(&self) -> B256 {
        self.inner.program_id()
    }
    fn execute(&self, witness: &[u8]) -> Result<prover::Execution, ProverError> {
        let batch = BatchWitness::decode(witness).unwrap().batch_number;
        self.began
            .lock()
            .unwrap()
            .entry(batch)
            .or_insert_with(Instant::now);
        self.inner.execute(witness)
    }
    fn prove(&self, witness: &[u8]) -> Result<Vec<u8>, ProverError> {
        let batch = BatchWitness::decode(witness).unwrap().batch_number;
        let started = *self
            .began
            .lock()
            .unwrap()
            .entry(batch)
            .or_insert_with(Instant::now);
        let proof = self.inner.prove(witness);
        self.spans
            .lock()
            .unwrap()
            .insert(batch, (started, Instant::now()));
        if batch == 1 {
            let mut gate = self.gate.0.lock().unwrap();
            gate.0 = true;
            while !gate.1 {
                gate = self.gate.1.wait(gate).unwrap();
            }
        }
        proof
    }
}

/// The batches exported, in the order the exporter reported them.
#[derive(Default)]
struct ExportOrder(Mutex<Vec<u64>>);

impl ProofObserver for ExportOrder {
    fn exported(&self, proof: &ExportedProof) {
        self.0.lock().unwrap().push(proof.outputs.batch_number);
    }
}

/// Waits (up to 40 minutes: two proofs at once on two cores) for `done`.
/// Signatures over the same message that alloy's `recover_signer` refuses.
fn refused_signatures(sig: &Signature) -> Vec<(&'static str, Signature)> {
    // secp256k1's group order.
    let n = U256::from_be_bytes(alloy_primitives::hex!(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
    ));
    let (r, s, v) = (sig.r(), sig.s(), sig.v());
    vec![
        (
            "the same point's high s (EIP-2)",
            Signature::new(r, n - s, !v),
        ),
        ("r = 0", Signature::new(U256::ZERO, s, v)),
        ("s = 0", Signature::new(r, U256::ZERO, v)),
        ("r = n", Signature::new(n, s, v)),
        ("r far above n", Signature::new(U256::MAX, s, v)),
    ]
}

/// `tx` with its signature replaced.
fn resigned(tx: &TxEnvelope, sig: Signature) -> TxEnvelope {
    match tx {
        TxEnvelope::Eip1559(t) => TxEnvelope::Eip1559(Signed::new_unhashed(t.tx().clone(), sig)),
        TxEnvelope::Eip2930(t) => TxEnvelope::Eip2930(Signed::new_unhashed(t.tx().clone(), sig)),
        TxEnvelope::Legacy(t) => TxEnvelope::Legacy(Signed::new_unhashed(t.tx().clone(), sig)),
        other => panic!("no {:?} in this chain", other.tx_type()),
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2400);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const AUDIT: AuditHead = AuditHead {
    size: 3,
    root: B256::repeat_byte(9),
};

#[test]
fn zkvm_proves_a_batch_that_verifies_from_public_data_only() {
    let backend = Arc::new(backend());
    let chain = chain();

    // Execution in the zkVM reveals exactly the native outputs' digest.
    let mut prover_state = chain.prover_state();
    let mut cycles = Vec::new();
    for (i, block) in chain.blocks.iter().enumerate() {
        let w = prover_state
            .witness_batch(
                &chain.spec,
                i as u64 + 1,
                std::slice::from_ref(block),
                AUDIT,
                |n| chain.header(n),
            )
            .unwrap();
        let native = execute_batch(&w).unwrap();
        let run = backend.execute(&w.encode()).unwrap();
        assert_eq!(run.digest, native.digest());
        cycles.push(run.cycles.unwrap());
        if i == 1 {
            // A witness that lies does not run to completion.
            let mut lying = w.clone();
            lying.prev_state_root = B256::repeat_byte(1);
            assert!(backend.execute(&lying.encode()).is_err());
            // The program recovers signers on its own path (the curve
            // instructions without alloy's conversions): what alloy
            // refuses, it refuses.
            for (what, bad) in refused_signatures(w.blocks[0].transactions[0].signature()) {
                let mut forged = w.clone();
                let tx = &mut forged.blocks[0].transactions[0];
                *tx = resigned(tx, bad);
                assert!(
                    matches!(
                        execute_batch(&forged),
                        Err(state_transition::BatchError::InvalidSignature { .. })
                    ),
                    "{what}: alloy refuses it"
                );
                assert!(
                    backend.execute(&forged.encode()).is_err(),
                    "{what}: the zkVM must refuse it"
                );
            }
        }
    }
    eprintln!(
        "cycles: deploy + ETH + ERC-20 batch {}, ETH transfer batch {}, ERC-20 transfer batch {}",
        cycles[0], cycles[1], cycles[2]
    );

    // The service path on the shared Postgres queue: blocks 1 and 2 are cut
    // as batches 1 and 2 and two workers prove them at once. Batch 2's
    // proof, ready first, waits: proofs are exported (and so settled)
    // strictly in batch order.
    let db = ScratchPg::create("prividium_zkvm");
    let jobs = Arc::new(PgJobStore::connect(&db.url(), 7777, None).unwrap());
    let policy = BatchPolicy {
        max_blocks: 1,
        max_wait: Duration::from_secs(3600),
        ..BatchPolicy::default()
    };
    let mut cutter = Cutter::new(
        chain.spec.clone(),
        chain.genesis.clone(),
        Source::of(&chain),
        jobs.clone(),
        Arc::new(FixedAudit(AUDIT)),
        policy,
    );
    assert_eq!(cutter.cut_if_due().unwrap(), Some(1));
    assert_eq!(cutter.cut_if_due().unwrap(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let held = Arc::new(HoldBatchOne::new(backend.clone()));
    let workers: Vec<Worker> = ["w1", "w2"]
        .map(|id| Worker::new(id, jobs.clone(), held.clone(), Duration::from_secs(7200)))
        .into();
    let exported = Arc::new(ExportOrder::default());
    let exporter = Exporter::new(jobs.clone(), dir.path().into(), backend.program_id())
        .with_observer(exported.clone());
    let started = Instant::now();
    let service = ProverService::spawn(None, workers, Some(exporter), Duration::from_millis(50));
    wait_for("batch 2 proven", || {
        matches!(jobs.job(2).unwrap().unwrap().state, JobState::Proven { .. })
    });
    // Batch 1 is proven too, but its worker has not stored it yet.
    wait_for("batch 1 proven, held", || held.holding());
    assert!(matches!(
        jobs.job(1).unwrap().unwrap().state,
        JobState::Proving { .. }
    ));
    std::thread::sleep(Duration::from_millis(500)); // ten exporter polls
    assert_eq!(
        jobs.exported_through().unwrap(),
        0,
        "batch 2 exported before 1"
    );
    assert!(!dir.path().join("batch-2.proof").exists());
    held.release();
    wait_for("both exported", || jobs.exported_through().unwrap() == 2);
    let wall = started.elapsed().as_secs_f64();
    service.stop(Duration::from_secs(5));
    assert_eq!(*exported.0.lock().unwrap(), vec![1, 2]);
    // Both workers held a batch at the same time. Whether their CPU work
    // overlaps too is the machine's business: on 2 cores the second
    // worker's execution can queue behind the first one's proof in the
    // shared thread pool, which this test used to report as a failure.
    let spans = held.spans();
    let (one, two) = (spans[&1], spans[&2]);
    assert!(
        one.0 < two.1 && two.0 < one.1,
        "the two workers worked one after the other: {one:?} {two:?}"
    );
    let proving = one.1.duration_since(one.0).as_secs_f64();
    eprintln!(
        "two workers, at once: batch 1 ({} cycles) proved in {proving:.1} s, batch 2 ({} cycles) in {:.1} s; \
         both exported in order after {wall:.1} s ({:.1} s per million cycles for the pair)",
        cycles[0],
        cycles[1],
        two.1.duration_since(two.0).as_secs_f64(),
        wall / ((cycles[0] + cycles[1]) as f64 / 1e6)
    );
    // For `cargo bench --bench verify` (proofs take minutes to make).
    if let Some(keep) = std::env::var_os("PRIVIDIUM_KEEP_PROOFS") {
        std::fs::create_dir_all(&keep).unwrap();
        for f in ["batch-1.proof", "batch-1.json"] {
            std::fs::copy(dir.path().join(f), std::path::Path::new(&keep).join(f)).unwrap();
        }
    }
    let proof = std::fs::read(dir.path().join("batch-1.proof")).unwrap();
    let file: OutputsFile =
        serde_json::from_slice(&std::fs::read(dir.path().join("batch-1.json")).unwrap()).unwrap();
    eprintln!("proof {} bytes", proof.len());
    assert_eq!(file.program_id, backend.program_id());
    assert_eq!(file.new_state_root, chain.roots[1]);
    let second: OutputsFile =
        serde_json::from_slice(&std::fs::read(dir.path().join("batch-2.json")).unwrap()).unwrap();
    assert_eq!(second.new_state_root, chain.roots[2]);
    assert!(matches!(
        jobs.job(1).unwrap().unwrap().state,
        JobState::Proven { .. }
    ));

    // A counterparty with the two files and the pinned id.
    let outputs = file.outputs();
    let id = backend.program_id();
    let started = Instant::now();
    verify_proof(&proof, &outputs, id).unwrap();
    eprintln!("verified in {} ms", started.elapsed().as_millis());

    // Other outputs, another program id, or a damaged proof: refused.
    let mut other = outputs;
    other.new_state_root = B256::repeat_byte(2);
    assert!(matches!(
        verify_proof(&proof, &other, id),
        Err(ProofError::OutputsMismatch { .. })
    ));
    assert!(matches!(
        verify_proof(&proof, &outputs, B256::repeat_byte(3)),
        Err(ProofError::WrongProgram { .. })
    ));
    // Damage inside the STARK itself (not the key, which changes the id).
    let envelope = ProofEnvelope::decode(&proof).unwrap();
    let stark = envelope.proof.len();
    for at in [8, stark / 3, stark / 2, stark - 100] {
        let mut damaged = envelope.clone();
        damaged.proof[at] ^= 0x40;
        let refused = verify_proof(&damaged.encode(), &outputs, id);
        assert!(
            matches!(
                refused,
                Err(ProofError::Invalid(_) | ProofError::BadProofFile(_))
            ),
            "byte {at} of {stark}: {refused:?}"
        );
    }
    // A file whose program commitment is not the one its key commits to,
    // even when the id pinned is the file's own.
    let mut other = envelope.clone();
    other.program_commit = vec![0; other.program_commit.len()];
    assert!(matches!(
        verify_proof(&other.encode(), &outputs, other.claimed_program_id()),
        Err(ProofError::BadProofFile(_))
    ));
    // A damaged key is another program's id; pinned as such, the key is
    // decoded and the proof still fails against it.
    let mut damaged = envelope.clone();
    let key = damaged.verifying_key.len() / 2;
    damaged.verifying_key[key] ^= 0x40;
    assert!(verify_proof(&damaged.encode(), &outputs, id).is_err());
    let refused = verify_proof(&damaged.encode(), &outputs, damaged.claimed_program_id());
    assert!(
        matches!(
            refused,
            Err(ProofError::Invalid(_) | ProofError::BadProofFile(_))
        ),
        "{refused:?}"
    );
}
