//! Loading the guest for the tests and benches that run it under OpenVM
//! (feature `openvm`; kept out of `support/mod.rs`, which other crates'
//! tests include too).
#![allow(unreachable_pub)]

/// The guest built by prover/guest/build.sh, loaded with its keys (tens of
/// seconds); prints how long that took and the program id.
pub fn load_guest() -> prover::OpenVmBackend {
    use prover::ZkBackend;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/guest/out/batch-program.elf");
    let elf = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; build the guest with prover/guest/build.sh"));
    let started = std::time::Instant::now();
    let backend = prover::OpenVmBackend::new(&elf, prover::OpenVmConfig::default()).unwrap();
    eprintln!(
        "keygen {:.1} s, program id {}",
        started.elapsed().as_secs_f64(),
        backend.program_id()
    );
    backend
}
