//! After a data-key rotation: moves everything the appliance keeps sealed
//! onto the current key — the derived stores, the audit log's rows, the
//! block log and the sealed files — and then retires the older keys, which
//! are never unwrapped again.
//!
//! Each step is resumable (the stores keep their position, the block log
//! its partial copy), so a shutdown mid-way only delays retirement to the
//! next start. A key is retired only when every step finished under the
//! same current key.

use super::at_rest::AtRest;
use crate::chain_files;
use crate::data_dir::CHECKPOINT_FILE;
use access_control::{store::DocDir, ACCESS_DIR};
use anyhow::{anyhow, bail, Context, Result};
use audit::trail::AUDIT_DIR;
use sequencer::Sequencer;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use storage::{KvStore, SharedCipher};

/// What holds sealed records in a running node.
#[derive(Clone)]
pub struct Holdings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Raw (unwrapped) stores by name: `chain`, and `prover` when proving.
    pub stores: Vec<(&'static str, Arc<dyn KvStore>)>,
    /// Owner of the block log.
    pub sequencer: Arc<Sequencer>,
    /// The audit log, whose event rows are sealed.
    pub audit: audit::AuditDb,
    /// The shared proving queue, whose witnesses are sealed.
    pub prover_queue: Option<Arc<prover::PgJobStore>>,
    /// Held by a backup while it copies: no key is retired meanwhile, so
    /// the keyring it copies last still opens everything copied before.
    pub backup_lock: Arc<tokio::sync::Mutex<()>>,
}

/// How a pass ended.
#[derive(Debug)]
pub enum Pass {
    /// Everything is under `target`; `retired` lists the versions retired.
    Done {
        /// Current key of the whole pass.
        target: u32,
        /// What was moved, per holding (for the audit record).
        moved: Value,
        /// Versions retired by this pass.
        retired: Vec<u32>,
    },
    /// Stopped (shutdown) or the key changed again; resumes later.
    Paused,
    /// A backup is running: tried again shortly.
    BackupRunning,
}

/// Moves every holding onto the current key, then retires the others.
pub async fn run(at: &AtRest, h: &Holdings, stop: Arc<AtomicBool>) -> Result<Pass> {
    let cipher: SharedCipher = at.cipher.clone();
    let target = cipher.current_version();
    let Some(moved) = sweep(h, &cipher, target, &stop, Sweep::Full).await? else {
        return Ok(Pass::Paused);
    };

    // A backup copies the keyring last and needs every key its earlier
    // copies were sealed under: no key goes while one runs. Held from
    // before the last check to the retirement, so nothing sealed under an
    // older key slips in between; never waited for (a backup may take
    // minutes, and shutdown must not hang on it): the pass resumes later.
    let Ok(_no_backup_running) = h.backup_lock.try_lock() else {
        return Ok(Pass::BackupRunning);
    };
    // A write sealed just before the switch to `target` can land after the
    // pass went by, and a CLI process may still hold the older keys: check
    // again, changing nothing if all is moved, before any key goes.
    let mut clean = false;
    for _ in 0..3 {
        if cipher.current_version() != target {
            return Ok(Pass::Paused); // rotated again: the next pass moves all
        }
        let Some(again) = sweep(h, &cipher, target, &stop, Sweep::Recheck).await? else {
            return Ok(Pass::Paused);
        };
        if stop.load(Ordering::Relaxed) {
            return Ok(Pass::Paused);
        }
        let stragglers: u64 = again.iter().map(|m| m.resealed).sum();
        if stragglers == 0 {
            clean = true;
            break;
        }
        tracing::warn!(
            stragglers,
            "records still sealed under older keys; checking again"
        );
    }
    if !clean {
        bail!("records keep appearing under older data keys; not retiring them");
    }
    if cipher.current_version() != target || stop.load(Ordering::Relaxed) {
        return Ok(Pass::Paused);
    }
    let retired = at.keyring.read()?.live_versions_except(target);
    if !retired.is_empty() {
        at.keyring.retire(at.provider.as_ref(), &retired).await?;
        tracing::info!(?retired, current = target, "retired data keys");
    }
    Ok(Pass::Done {
        target,
        moved: Value::Object(moved.iter().map(|m| (m.holding.into(), m.json())).collect()),
        retired,
    })
}

/// Which sweep over the holdings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// The pass itself: every holding, the block log included.
    Full,
    /// The checks before retirement. The block log is left out: only its
    /// producer writes it, always under the current key, and the full
    /// sweep had it re-seal every older frame.
    Recheck,
}

/// What one holding's step moved.
struct Moved {
    holding: &'static str,
    /// What was looked at, and what it counts (records, rows, frames).
    examined: Option<(&'static str, u64)>,
    resealed: u64,
}

impl Moved {
    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some((unit, n)) = self.examined {
            m.insert(unit.into(), n.into());
        }
        m.insert("resealed".into(), self.resealed.into());
        Value::Object(m)
    }
}

/// Moves every holding onto `target`, one after the other; None when
/// stopped (or the key changed) before the end: nothing is retired then.
async fn sweep(
    h: &Holdings,
    cipher: &SharedCipher,
    target: u32,
    stop: &Arc<AtomicBool>,
    which: Sweep,
) -> Result<Option<Vec<Moved>>> {
    let mut moved = Vec::new();
    for (name, report) in reencrypt_stores(h, cipher, stop).await? {
        let Some(r) = report else {
            return Ok(None);
        };
        tracing::debug!(store = name, "re-sealed");
        moved.push(Moved {
            holding: name,
            examined: Some(("examined", r.examined)),
            resealed: r.resealed,
        });
    }
    let Some(r) = audit_rows(h, stop).await? else {
        return Ok(None);
    };
    moved.push(Moved {
        holding: "audit",
        examined: Some(("examined", r.examined)),
        resealed: r.resealed,
    });
    if let Some(r) = queue_rows(h, stop).await? {
        moved.push(Moved {
            holding: "prover_queue",
            examined: Some(("examined", r.examined)),
            resealed: r.resealed,
        });
    }
    if which == Sweep::Full {
        let Some(p) = block_log(h, target, stop).await? else {
            return Ok(None);
        };
        moved.push(Moved {
            holding: "block_log",
            examined: Some(("frames", p.total)),
            resealed: p.resealed,
        });
    }
    let (dir, c) = (h.data_dir.clone(), cipher.clone());
    let files = tokio::task::spawn_blocking(move || reseal_files(&dir, &c)).await??;
    moved.push(Moved {
        holding: "files",
        examined: None,
        resealed: files,
    });
    Ok(Some(moved))
}

/// Moves each store onto the current key; a store's report is None when
/// the run was stopped before its end.
async fn reencrypt_stores(
    h: &Holdings,
    cipher: &SharedCipher,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<(&'static str, Option<encryption::ReencryptReport>)>> {
    let mut out = Vec::new();
    for (name, raw) in &h.stores {
        let (dir, raw, c, stop) = (
            h.data_dir.clone(),
            raw.clone(),
            cipher.clone(),
            stop.clone(),
        );
        let name = *name;
        let target = c.current_version();
        let report = tokio::task::spawn_blocking(move || {
            let mut last = Instant::now();
            encryption::reencrypt_store(&dir, name, raw.as_ref(), c.as_ref(), &stop, |p| {
                if last.elapsed() > Duration::from_secs(5) {
                    last = Instant::now();
                    tracing::info!(
                        store = name,
                        target,
                        examined = p.examined,
                        resealed = p.resealed,
                        "re-encryption progress"
                    );
                }
            })
        })
        .await?
        .with_context(|| format!("store {name}"))?;
        let complete = report.complete;
        out.push((name, complete.then_some(report)));
        if !complete {
            break;
        }
    }
    Ok(out)
}

/// Moves the audit log's sealed rows onto the current key; None when
/// stopped first.
async fn audit_rows(h: &Holdings, stop: &AtomicBool) -> Result<Option<audit::store::ResealReport>> {
    let report = h.audit.reseal(stop).await.context("audit log")?;
    Ok(report.complete.then_some(report))
}

/// Moves the shared proving queue's sealed witnesses and errors onto the
/// current key; None without a Postgres queue.
async fn queue_rows(h: &Holdings, stop: &Arc<AtomicBool>) -> Result<Option<prover::ResealCount>> {
    let Some(q) = h.prover_queue.clone() else {
        return Ok(None);
    };
    let stop = stop.clone();
    let count = tokio::task::spawn_blocking(move || q.reseal(&stop))
        .await?
        .context("prover queue")?;
    Ok(Some(count))
}

/// Has the producer move the block log onto `target` in its idle time;
/// None when stopped first or the key changed meanwhile.
async fn block_log(
    h: &Holdings,
    target: u32,
    stop: &AtomicBool,
) -> Result<Option<sequencer::wal::ResealProgress>> {
    h.sequencer.reseal_block_log();
    let mut last = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) || !h.sequencer.is_running() {
            return Ok(None);
        }
        match h.sequencer.block_log_reseal() {
            Some(Err(e)) => return Err(anyhow!("block log: {e}")),
            Some(Ok(p)) if p.complete => return Ok((p.target == target).then_some(p)),
            Some(Ok(p)) if last.elapsed() > Duration::from_secs(5) => {
                last = Instant::now();
                tracing::info!(
                    target,
                    copied = p.copied,
                    total = p.total,
                    "block log re-seal progress"
                );
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Files sealed whole, with the name each is sealed under. The access
/// documents are listed by [`reseal_files`] from their directory.
fn sealed_files(data_dir: &Path) -> Vec<(PathBuf, &'static str)> {
    vec![
        (
            data_dir.join(crate::data_dir::GENESIS_FILE),
            chain_files::GENESIS_CONTEXT,
        ),
        (
            data_dir.join(AUDIT_DIR).join(audit::head::SIGNING_KEY_FILE),
            audit::head::SIGNING_KEY_FILE,
        ),
        (
            gateway_bridge::signer::key_path(data_dir),
            gateway_bridge::signer::SIGNER_FILE,
        ),
        (data_dir.join(CHECKPOINT_FILE), CHECKPOINT_FILE),
    ]
}

/// Re-seals every sealed file not under the current key; returns how many.
fn reseal_files(data_dir: &Path, shared: &SharedCipher) -> Result<u64> {
    let cipher = shared.as_ref();
    let current = cipher.current_version();
    let stale =
        |bytes: &[u8]| storage::file_key_version(cipher, bytes).is_some_and(|v| v != current);
    let mut count = 0;
    for (path, name) in sealed_files(data_dir) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue; // not created on this appliance
        };
        if !stale(&bytes) {
            continue;
        }
        let at = || path.display().to_string();
        let plain = storage::open_file(cipher, name, &bytes).with_context(at)?;
        let sealed = storage::seal_file(cipher, name, &plain).with_context(at)?;
        storage::write_atomic(&path, &sealed).with_context(at)?;
        count += 1;
    }
    // Access documents change while the node runs: re-sealed through their
    // store, under the lock every writer takes.
    let access = data_dir.join(ACCESS_DIR);
    let docs = DocDir::new(&access, Some(shared.clone()));
    for entry in std::fs::read_dir(&access).into_iter().flatten().flatten() {
        let path = entry.path();
        // A `.tmp` is a write a crash interrupted, sealed under an older
        // key: dropped (the document itself is whole).
        if let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".tmp"))
        {
            docs.doc(&format!("{stem}.json"))
                .discard_leftover()
                .with_context(|| path.display().to_string())?;
            continue;
        }
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".json"))
        else {
            continue;
        };
        if !path.is_file() || !std::fs::read(&path).is_ok_and(|b| stale(&b)) {
            continue;
        }
        docs.doc(name)
            .update::<Value, _>(|_| ())
            .with_context(|| path.display().to_string())?;
        count += 1;
    }
    Ok(count)
}
