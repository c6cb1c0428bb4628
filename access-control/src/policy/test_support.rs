//! What the policy tests share: a caller of given roles, sinks that count
//! or keep decisions, and a writable copy of the shipped policies for
//! reload tests.

use super::Caller;
use super::{DecisionEvent, DecisionSink, PolicyEngine};
use crate::principal::{Principal, PrincipalKind};
use alloy_primitives::Address;
use parking_lot::Mutex;
use std::{
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

/// A user of organization `bank-a` holding `roles` (`+`-separated), with
/// one wallet.
pub(super) fn caller(roles: &str) -> Caller {
    Caller::new(
        Arc::new(Principal {
            kind: PrincipalKind::User,
            id: format!("{roles}-1"),
            roles: roles.split('+').map(str::to_owned).collect(),
            org: "bank-a".into(),
            expires_at: None,
        }),
        [Address::repeat_byte(1)].into_iter().collect(),
    )
}

/// Counts the decisions reported to it.
#[derive(Default)]
pub(super) struct Counting(pub(super) Arc<AtomicUsize>);

impl Counting {
    /// Routes `engine`'s decisions here; returns the count.
    pub(super) fn on(engine: &PolicyEngine) -> Arc<AtomicUsize> {
        let count = Arc::new(AtomicUsize::new(0));
        engine.set_sink(Box::new(Counting(count.clone())));
        count
    }
}

impl DecisionSink for Counting {
    fn record(&self, _: &DecisionEvent<'_>) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Keeps (resource, allowed, rule) of every decision reported to it.
pub(super) struct Recording(Arc<Mutex<Vec<(String, bool, String)>>>);

impl Recording {
    /// Routes `engine`'s decisions here; returns what was recorded.
    pub(super) fn on(engine: &PolicyEngine) -> Arc<Mutex<Vec<(String, bool, String)>>> {
        let kept = Arc::new(Mutex::new(Vec::new()));
        engine.set_sink(Box::new(Recording(kept.clone())));
        kept
    }
}

impl DecisionSink for Recording {
    fn record(&self, e: &DecisionEvent<'_>) -> Result<(), String> {
        self.0
            .lock()
            .push((e.resource.to_owned(), e.allowed, e.rule.to_owned()));
        Ok(())
    }
}

/// The repository's `policies/` (its files and `abi/`), copied into a
/// temporary directory a test may edit and reload.
pub(super) fn shipped_policies_copy() -> tempfile::TempDir {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let dir = tempfile::tempdir().unwrap();
    for sub in ["", "abi"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(shipped.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    dir
}

/// Appends `policy` (Cedar text) to the copy's `bank.cedar` and reloads
/// `engine` from it; the reload must take.
pub(super) fn add_policy(engine: &PolicyEngine, dir: &Path, policy: &str) {
    let file = dir.join("bank.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n{policy}\n")).unwrap();
    assert!(engine.reload().unwrap().changed);
}
