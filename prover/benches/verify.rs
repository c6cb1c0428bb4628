//! Counterparty verification time: `verify_proof` on real proof files.
//!
//! Proofs take minutes to make, so the bench reads them from a directory of
//! `batch-N.proof` + `batch-N.json` (a node's `proofs/`, or the copy the
//! zkVM tests leave with `PRIVIDIUM_KEEP_PROOFS=DIR`):
//!
//! ```sh
//! PROVER_BENCH_PROOFS=DIR cargo bench -p prover --features openvm --bench verify
//! ```
//! Each proof is verified `PROVER_BENCH_RUNS` times (default 20); the
//! median and worst are printed. Without the variable it says how to get
//! proofs and exits.

use proof::{verify_proof, OutputsFile};
use std::{path::PathBuf, time::Instant};

fn main() {
    let Some(dir) = std::env::var_os("PROVER_BENCH_PROOFS").map(PathBuf::from) else {
        eprintln!(
            "set PROVER_BENCH_PROOFS to a directory of batch-N.proof + batch-N.json \
             (a node's proofs/, or PRIVIDIUM_KEEP_PROOFS=DIR with the zkVM tests)"
        );
        return;
    };
    let runs: usize = std::env::var("PROVER_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20)
        .max(1);
    let mut found = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for json in entries {
        let Ok(file) = serde_json::from_slice::<OutputsFile>(&std::fs::read(&json).unwrap()) else {
            continue;
        };
        let proof = std::fs::read(json.with_extension("proof")).unwrap();
        let outputs = file.outputs();
        let mut ms: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                verify_proof(&proof, &outputs, file.program_id).expect("a valid proof");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{}: {} bytes, {} cycles: verify median {:.1} ms, worst {:.1} ms ({runs} runs)",
            json.file_stem().unwrap().to_string_lossy(),
            proof.len(),
            file.cycles.map_or("?".into(), |c| c.to_string()),
            ms[ms.len() / 2],
            ms[ms.len() - 1],
        );
        found += 1;
    }
    assert!(found > 0, "no batch-N.json in {}", dir.display());
}
