//! Deployments written before the `PRIVIDIUM_*` rename (unit files,
//! manifests, scripts setting `APPLIANCE_*`) keep working, and are told
//! what to change.

use crate::common::bin;
use std::process::Command;

/// `prividium up` with its config named only by the environment; returns
/// the exit status and stderr. The file does not exist, so `up` stops at
/// reading it and the error names the path it read.
fn up(env: &[(&str, &std::path::Path)], log: (&str, &str)) -> (bool, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("up");
    for name in ["CONFIG", "DATA_DIR", "LOG", "METRICS_ADDR", "RPC_ADDR"] {
        cmd.env_remove(format!("APPLIANCE_{name}"))
            .env_remove(format!("PRIVIDIUM_{name}"));
    }
    cmd.env(log.0, log.1);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn old_environment_names_still_work_and_warn() {
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old.toml");
    let new = tmp.path().join("new.toml");

    // Only the old names: both are honoured (the config path is read, the
    // log level lets the warnings through) and both are named.
    let (ok, err) = up(&[("APPLIANCE_CONFIG", &old)], ("APPLIANCE_LOG", "warn"));
    assert!(!ok);
    assert!(err.contains(&format!("reading {}", old.display())), "{err}");
    assert!(
        err.contains("APPLIANCE_CONFIG is deprecated")
            && err.contains("set PRIVIDIUM_CONFIG instead"),
        "{err}"
    );
    assert!(err.contains("set PRIVIDIUM_LOG instead"), "{err}");

    // Both names: the new one wins and the old one is called out.
    let (ok, err) = up(
        &[("APPLIANCE_CONFIG", &old), ("PRIVIDIUM_CONFIG", &new)],
        ("PRIVIDIUM_LOG", "warn"),
    );
    assert!(!ok);
    assert!(err.contains(&format!("reading {}", new.display())), "{err}");
    assert!(
        err.contains("APPLIANCE_CONFIG is deprecated and ignored because PRIVIDIUM_CONFIG"),
        "{err}"
    );

    // Only the new names: no warning.
    let (_, err) = up(&[("PRIVIDIUM_CONFIG", &new)], ("PRIVIDIUM_LOG", "warn"));
    assert!(!err.contains("deprecated"), "{err}");
}
