//! Re-encryption: moves every record of the derived store onto the current
//! data key after a rotation, so old keys can be retired.
//!
//! Works on the raw store, in pages, with compare-and-set writes so a value
//! the chain wrote meanwhile is never overwritten by a stale copy. The
//! position is saved after every page in `keys/reencrypt-<store>.json`, so a
//! stopped run (shutdown, crash, Ctrl-C) resumes where it was. `<store>`
//! names the store (`chain`, `prover`): each keeps its own position.

use crate::{fsutil, keyring::KEYS_DIR, kv::context};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};
use storage::{KeyRange, KvStore, RecordCipher, Result, StorageError, Table, WriteBatch};

const PAGE: usize = 2_000;

/// Where a run stands (also the resume point on disk).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// Data-key version records are being moved to.
    pub target: u32,
    /// Tables finished.
    pub done_tables: Vec<String>,
    /// Table in progress and the last raw key handled in it (hex).
    pub table: Option<String>,
    /// Last raw key handled.
    pub after: Option<String>,
    /// Records examined so far.
    pub examined: u64,
    /// Records re-sealed so far.
    pub resealed: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReencryptReport {
    /// Records examined.
    pub examined: u64,
    /// Records moved onto the current key.
    pub resealed: u64,
    /// Old key versions still found (none when `complete`).
    pub versions_seen: BTreeSet<u32>,
    /// False when stopped before the end.
    pub complete: bool,
}

fn progress_path(data_dir: &Path, store: &str) -> PathBuf {
    data_dir
        .join(KEYS_DIR)
        .join(format!("reencrypt-{store}.json"))
}

/// Records the key version the whole store was last moved onto, so a node
/// does not rescan every table at each start only to find nothing to move.
fn done_path(data_dir: &Path, store: &str) -> PathBuf {
    data_dir
        .join(KEYS_DIR)
        .join(format!("reencrypt-{store}-done.json"))
}

/// The key version a completed run last moved the whole of `store` onto.
pub fn completed_target(data_dir: &Path, store: &str) -> Option<u32> {
    let raw = std::fs::read(done_path(data_dir, store)).ok()?;
    serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()?
        .get("target")?
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
}

/// Reads the saved position of `store` (None when no run is pending).
pub fn load_progress(data_dir: &Path, store: &str) -> Option<Progress> {
    let raw = std::fs::read(progress_path(data_dir, store)).ok()?;
    serde_json::from_slice(&raw).ok()
}

fn save_progress(data_dir: &Path, store: &str, p: &Progress) -> Result<()> {
    let json = serde_json::to_vec_pretty(p).expect("serializable");
    fsutil::write_atomic(&progress_path(data_dir, store), &json)
        .map_err(|e| StorageError::backend_msg(None, format!("saving re-encryption progress: {e}")))
}

/// Re-seals every record of `raw` (the store called `store`) not under the
/// cipher's current key. Stops early (resumable) when `stop` is set;
/// `on_page` sees progress.
pub fn reencrypt_store(
    data_dir: &Path,
    store: &str,
    raw: &dyn KvStore,
    cipher: &dyn RecordCipher,
    stop: &AtomicBool,
    mut on_page: impl FnMut(&Progress),
) -> Result<ReencryptReport> {
    let target = cipher.current_version();
    let mut p = match load_progress(data_dir, store) {
        Some(p) if p.target == target => p,
        _ => Progress {
            target,
            ..Progress::default()
        },
    };
    let mut versions_seen = BTreeSet::new();
    for table in Table::ALL {
        if p.done_tables.iter().any(|t| t == table.name()) {
            continue;
        }
        let mut start = match (&p.table, &p.after) {
            (Some(t), Some(after)) if t == table.name() => {
                let mut k = hex::decode(after).unwrap_or_default();
                k.push(0);
                k
            }
            _ => Vec::new(),
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                save_progress(data_dir, store, &p)?;
                return Ok(ReencryptReport {
                    examined: p.examined,
                    resealed: p.resealed,
                    versions_seen,
                    complete: false,
                });
            }
            let page = raw.range(table, KeyRange::from(&start, PAGE))?;
            let mut batch = WriteBatch::new();
            for (key, sealed) in &page {
                p.examined += 1;
                let sealed_err = |reason| StorageError::Sealed {
                    table: table.name(),
                    key: hex::encode(key),
                    reason,
                };
                let version = cipher.key_version(sealed).map_err(sealed_err)?;
                if version == target {
                    continue;
                }
                versions_seen.insert(version);
                let ctx = context(table, key);
                let plain = cipher.open(&ctx, sealed).map_err(sealed_err)?;
                let resealed = cipher.seal(&ctx, &plain).map_err(sealed_err)?;
                batch.replace(table, key.clone(), sealed.clone(), resealed);
                p.resealed += 1;
            }
            if !batch.is_empty() {
                raw.write(batch, true)?;
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => {
                    p.table = Some(table.name().into());
                    p.after = Some(hex::encode(k));
                    start = k.clone();
                    start.push(0);
                    save_progress(data_dir, store, &p)?;
                    on_page(&p);
                }
                _ => break,
            }
        }
        p.done_tables.push(table.name().into());
        p.table = None;
        p.after = None;
        save_progress(data_dir, store, &p)?;
        on_page(&p);
    }
    let done =
        serde_json::json!({ "target": target, "examined": p.examined, "resealed": p.resealed });
    fsutil::write_atomic(&done_path(data_dir, store), done.to_string().as_bytes()).map_err(
        |e| StorageError::backend_msg(None, format!("saving re-encryption result: {e}")),
    )?;
    let _ = std::fs::remove_file(progress_path(data_dir, store));
    Ok(ReencryptReport {
        examined: p.examined,
        resealed: p.resealed,
        versions_seen,
        complete: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cipher::{tests::keys, Cipher},
        EncryptedStore,
    };
    use std::sync::Arc;
    use storage::{KvRead, MemoryStore};

    #[test]
    fn moves_everything_to_the_new_key_and_resumes_after_a_stop() {
        let dir = tempfile::tempdir().unwrap();
        let raw = Arc::new(MemoryStore::new());
        let cipher = Arc::new(Cipher::new(&keys(&[1], 1)));
        let store = EncryptedStore::new(raw.clone(), cipher.clone());
        let mut b = WriteBatch::new();
        for i in 0..5000u32 {
            let mut k = vec![0u8; 16];
            k.extend_from_slice(&i.to_be_bytes());
            b.put(Table::Accounts, k, i.to_be_bytes().to_vec());
        }
        b.put(Table::Blocks, 1u64.to_be_bytes().to_vec(), b"blk".to_vec());
        store.write(b, true).unwrap();
        cipher.swap(&keys(&[1, 2], 2));

        // A stop request after the first page leaves a resume point.
        let stop = AtomicBool::new(false);
        let first = reencrypt_store(
            dir.path(),
            "chain",
            raw.as_ref(),
            cipher.as_ref(),
            &stop,
            |_| stop.store(true, Ordering::Relaxed),
        )
        .unwrap();
        assert!(!first.complete);
        assert!(load_progress(dir.path(), "chain").is_some());

        let stop = AtomicBool::new(false);
        let rest = reencrypt_store(
            dir.path(),
            "chain",
            raw.as_ref(),
            cipher.as_ref(),
            &stop,
            |_| {},
        )
        .unwrap();
        assert!(rest.complete);
        assert_eq!(rest.resealed, 5001);
        assert!(load_progress(dir.path(), "chain").is_none());
        assert_eq!(completed_target(dir.path(), "chain"), Some(2));

        // Every record is now under v2 and v1 can go.
        let only2 = Arc::new(Cipher::new(&keys(&[2], 2)));
        let check = EncryptedStore::new(raw.clone(), only2);
        let mut n = 0;
        check
            .scan(Table::Accounts, &mut |_, _| {
                n += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(n, 5000);
        assert_eq!(
            check
                .get(Table::Blocks, &1u64.to_be_bytes())
                .unwrap()
                .unwrap(),
            b"blk"
        );
    }
}
