//! Proving on other machines, misconfigured: the worker and the node say
//! what is wrong and exit non-zero before any key generation.

use crate::common::{bin, Node};
use std::process::{Command, Output};

/// The published id: the refusals below must come before it matters.
const PROGRAM_ID_FILE: &str = include_str!("../../../prover/guest/PROGRAM_ID");

fn run(args: &[&str]) -> (bool, String) {
    let out: Output = Command::new(bin())
        .args(args)
        .env("PRIVIDIUM_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn misconfigured_external_proving_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let worker = |dir: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "prover",
            "worker",
            "--data-dir",
            dir.to_str().unwrap(),
            "--queue",
            "postgres://prover:hunter2@127.0.0.1:1/nothing",
            "--program-id",
            PROGRAM_ID_FILE.trim(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    let (ok, err) = worker(&empty, &[]);
    assert!(
        !ok && err.contains("chain"),
        "not a node's data directory: {err}"
    );
    let (ok, err) = worker(&empty, &["--gpu", "0"]);
    assert!(!ok && err.contains("CPU only"), "{err}");

    // A real node's data directory, but no queue server there.
    let data = tmp.path().join("node");
    Node::start(&data).await.stop();
    let (ok, err) = worker(&data, &[]);
    assert!(!ok && err.contains("prover queue"), "{err}");
    assert!(!err.contains("hunter2"), "no password in errors: {err}");

    // The node: nobody proves without in-process workers or a shared queue.
    let other = tmp.path().join("other");
    let (ok, err) = run(&[
        "dev",
        "--data-dir",
        other.to_str().unwrap(),
        "--prove",
        "--prover-workers",
        "0",
    ]);
    assert!(!ok, "started without anyone to prove");
    assert!(
        err.contains("prover.queue") && err.contains("prover.program_id"),
        "{err}"
    );
}
