//! The cross-process lock (and the shared crash-safe write).

use std::{
    fs::{self, File, OpenOptions},
    path::Path,
};

pub(crate) use storage::write_atomic;

/// An exclusive advisory lock held until dropped (node and CLI both change
/// the keyring).
pub(crate) struct Lock(File);

impl Lock {
    pub(crate) fn acquire(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        f.lock()?;
        Ok(Self(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
