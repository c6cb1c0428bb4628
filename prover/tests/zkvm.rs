//! The batch program as a RISC-V guest under OpenVM: execution matches the
//! native run, a real batch (an ETH and an ERC-20 transfer) is proven and
//! verifies from public data alone, and tampering with the witness, the
//! outputs, the program id or the proof is refused.
//!
//! Needs `prover/guest/build.sh` to have built the guest and runs in release
//! (`scripts/test.sh` does both); names start with `zkvm_` so the debug
//! workspace run can skip them.
#![cfg(feature = "openvm")]

#[path = "support/guest.rs"]
mod guest;
mod support;

use alloy_primitives::B256;
use prover::{
    verify_proof, BatchPolicy, Cutter, Exporter, JobState, JobStore, KvJobStore, OpenVmBackend,
    OutputsFile, ProofEnvelope, ProverError, Worker, ZkBackend,
};
use state_transition::{execute_batch, AuditHead};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use support::{FixedAudit, Source, TestChain};

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
        }
    }
    eprintln!(
        "cycles: deploy + ETH + ERC-20 batch {}, ETH transfer batch {}, ERC-20 transfer batch {}",
        cycles[0], cycles[1], cycles[2]
    );

    // The service path: cut block 1 as batch 1, a worker proves it, the
    // exporter checks the proof and writes batch-1.proof and batch-1.json.
    let store: Arc<dyn storage::KvStore> = Arc::new(storage::MemoryStore::default());
    let jobs = Arc::new(KvJobStore::new(store));
    let policy = BatchPolicy {
        max_blocks: 1,
        max_wait: Duration::from_secs(3600),
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
    let dir = tempfile::tempdir().unwrap();
    let worker = Worker::new(
        "w",
        jobs.clone(),
        backend.clone(),
        Duration::from_secs(7200),
    );
    let started = Instant::now();
    assert_eq!(worker.run_once().unwrap(), Some(1));
    let proving = started.elapsed().as_secs_f64();
    let exporter = Exporter::new(jobs.clone(), dir.path().into(), backend.program_id());
    assert_eq!(exporter.run_once().unwrap(), Some(1));
    assert_eq!(exporter.run_once().unwrap(), None, "exported once");
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
    eprintln!(
        "proved batch 1 ({} cycles) in {proving:.1} s ({:.1} s per million cycles), proof {} bytes",
        cycles[0],
        proving / (cycles[0] as f64 / 1e6),
        proof.len()
    );
    assert_eq!(file.program_id, backend.program_id());
    assert_eq!(file.new_state_root, chain.roots[1]);
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
        Err(ProverError::OutputsMismatch { .. })
    ));
    assert!(matches!(
        verify_proof(&proof, &outputs, B256::repeat_byte(3)),
        Err(ProverError::WrongProgram { .. })
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
                Err(ProverError::Invalid(_) | ProverError::BadProofFile(_))
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
        Err(ProverError::BadProofFile(_))
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
            Err(ProverError::Invalid(_) | ProverError::BadProofFile(_))
        ),
        "{refused:?}"
    );
}
