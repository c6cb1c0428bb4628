//! Small JSON documents shared between the running node and the CLI.
//!
//! API keys and wallet bindings are changed by `prividium keys …` while the
//! node runs, so they live in files guarded by an advisory lock rather than
//! in the node's exclusively opened database. Writes go to a temporary file
//! that is fsync'd and renamed over the old one: a crash leaves either the
//! old or the new document, never a torn one.

use serde::{de::DeserializeOwned, Serialize};
use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
    time::SystemTime,
};
use storage::SharedCipher;

/// Failure reading or writing a document.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem error, with the file it concerns.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file exists but is not a valid document.
    #[error("{path}: corrupt document: {message}")]
    Corrupt {
        /// File.
        path: String,
        /// Parser message.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The directory of access documents, and the cipher that seals them on
/// an encrypted appliance (wallet bindings and key records name people and
/// addresses, so they are chain data at rest like any other).
#[derive(Debug, Clone)]
pub struct DocDir {
    dir: PathBuf,
    cipher: Option<SharedCipher>,
}

impl DocDir {
    /// Plaintext documents under `dir`.
    pub fn plain(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cipher: None,
        }
    }

    /// Documents under `dir`, sealed by `cipher` when one is given.
    pub fn new(dir: impl Into<PathBuf>, cipher: Option<SharedCipher>) -> Self {
        Self {
            dir: dir.into(),
            cipher,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The document called `name` in this directory.
    pub fn doc(&self, name: &str) -> JsonDoc {
        JsonDoc {
            path: self.dir.join(name),
            name: format!("access/{name}"),
            cipher: self.cipher.clone(),
        }
    }
}

/// A JSON document at a fixed path.
#[derive(Debug, Clone)]
pub struct JsonDoc {
    path: PathBuf,
    name: String,
    cipher: Option<SharedCipher>,
}

impl JsonDoc {
    fn corrupt(&self, message: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Modification time, to notice changes made by another process.
    pub fn modified(&self) -> Option<SystemTime> {
        fs::metadata(&self.path).and_then(|m| m.modified()).ok()
    }

    /// Reads the document; a missing file is the default value.
    pub fn read<T: DeserializeOwned + Default>(&self) -> Result<T, StoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => {
                let plain = storage::open_file_if(self.cipher.as_deref(), &self.name, &bytes)
                    .map_err(|e| self.corrupt(e))?;
                serde_json::from_slice(&plain).map_err(|e| self.corrupt(e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(io(&self.path)(e)),
        }
    }

    /// Takes the exclusive lock every writer of this document holds, in
    /// any process; released when the returned file is dropped.
    fn lock(&self) -> Result<File, StoreError> {
        let lock_path = self.path.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        Ok(lock)
    }

    /// Removes the temporary copy a writer that crashed mid-write left
    /// beside the document (sealed under whatever key was current then).
    /// Taken under the writers' lock, so a write in progress is never
    /// touched. Returns whether there was one.
    pub fn discard_leftover(&self) -> Result<bool, StoreError> {
        let tmp = self.path.with_extension("tmp");
        if !tmp.exists() {
            return Ok(false);
        }
        let lock = self.lock()?;
        let removed = match fs::remove_file(&tmp) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(&tmp)(e)),
        };
        drop(lock);
        Ok(removed)
    }

    /// Read-modify-write under an exclusive lock shared by all processes.
    pub fn update<T, R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, StoreError>
    where
        T: DeserializeOwned + Serialize + Default,
    {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let lock = self.lock()?;
        let mut doc: T = self.read()?;
        let out = f(&mut doc);
        self.write_locked(&doc)?;
        drop(lock);
        Ok(out)
    }

    fn write_locked<T: Serialize>(&self, doc: &T) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("tmp");
        let json = serde_json::to_vec_pretty(doc).map_err(|e| self.corrupt(e))?;
        let bytes = storage::seal_file_if(self.cipher.as_deref(), &self.name, &json)
            .map_err(|e| self.corrupt(e))?;
        {
            let mut f = private_file(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Creates (truncating) a file readable only by its owner.
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn updates_persist_and_a_corrupt_file_is_reported_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        let doc = DocDir::plain(dir.path().join("a")).doc("doc.json");
        let empty: BTreeMap<String, u64> = doc.read().unwrap();
        assert!(empty.is_empty());
        doc.update(|m: &mut BTreeMap<String, u64>| m.insert("k".into(), 7))
            .unwrap();
        let m: BTreeMap<String, u64> = doc.read().unwrap();
        assert_eq!(m["k"], 7);
        fs::write(doc.path(), b"{not json").unwrap();
        let err = doc.read::<BTreeMap<String, u64>>().unwrap_err();
        assert!(err.to_string().contains("corrupt document"), "{err}");
        assert!(doc
            .update(|m: &mut BTreeMap<String, u64>| m.clear())
            .is_err());
    }

    #[test]
    fn a_write_interrupted_by_a_crash_is_discarded_and_the_document_kept() {
        let dir = tempfile::tempdir().unwrap();
        let doc = DocDir::plain(dir.path()).doc("keys.json");
        doc.update(|m: &mut BTreeMap<String, u64>| m.insert("k".into(), 1))
            .unwrap();
        assert!(!doc.discard_leftover().unwrap());
        let tmp = dir.path().join("keys.tmp");
        fs::write(&tmp, b"half a write").unwrap();
        assert!(doc.discard_leftover().unwrap());
        assert!(!tmp.exists());
        let m: BTreeMap<String, u64> = doc.read().unwrap();
        assert_eq!(m["k"], 1);
    }
}
