//! What the policy tests share: a sink that counts decisions, and a
//! writable copy of the shipped policies for reload tests.

use super::{DecisionEvent, DecisionSink, PolicyEngine};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

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
