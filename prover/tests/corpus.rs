//! The GPU check's corpus (`prover/corpus`, proven by
//! `scripts/gpu-check.sh`) is still what the manifest names and still runs:
//! every witness decodes and the batch program, run natively, gives the
//! outputs digest recorded when it was written. A witness format or rule
//! change that breaks the corpus fails here, not on a GPU server.

use alloy_primitives::{keccak256, B256};
use prover::{NativeBackend, ZkBackend};
use std::path::Path;

#[test]
fn every_corpus_witness_runs_to_its_recorded_outputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    let mut names = Vec::new();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, hash, digest, txs, _cycles] = fields[..] else {
            panic!("MANIFEST line {line:?}: five tab-separated fields");
        };
        let bytes = std::fs::read(dir.join(format!("{name}.witness"))).unwrap();
        assert_eq!(
            keccak256(&bytes),
            hash.parse::<B256>().unwrap(),
            "{name}.witness is not the file MANIFEST names"
        );
        let witness = state_transition::BatchWitness::decode(&bytes).unwrap_or_else(|e| {
            panic!("{name}: {e}; regenerate the corpus (prover/corpus/README.md)")
        });
        let count: usize = witness.blocks.iter().map(|b| b.transactions.len()).sum();
        assert_eq!(count.to_string(), txs, "{name}: transactions");
        let run = NativeBackend.execute(&bytes).unwrap_or_else(|e| {
            panic!("{name}: {e}; regenerate the corpus (prover/corpus/README.md)")
        });
        assert_eq!(
            run.digest,
            digest.parse::<B256>().unwrap(),
            "{name}: outputs"
        );
        names.push(name.to_string());
    }
    assert_eq!(names, ["eth-1", "eth-100", "eth-1000", "erc20-100"]);
}
