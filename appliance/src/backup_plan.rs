//! What a backup of this data directory holds, and in which order it is
//! copied so that the files of one moment fit together.
//!
//! Order matters where one file vouches for another:
//! - the prover checkpoint, then the prover's jobs, then the derived
//!   store, then the block log: each names only what the next one already
//!   holds (a checkpoint names a queued batch; jobs name derived blocks;
//!   derived blocks were appended to the log first), so the restored node
//!   resumes from each without a gap;
//! - exported proofs after the jobs: every batch the jobs call exported
//!   has its proof file (one exported after the copy is exported again);
//! - the audit database after the block log: its events cover every
//!   transaction the log holds (events are recorded before a transaction
//!   is admitted);
//! - the audit witness (`head.json`) before the audit database, so the
//!   copy never holds a signed head past its last event (which
//!   `audit verify` would rightly call truncation);
//! - `keys/` last, with key retirement held off meanwhile: every record
//!   copied earlier is sealed under a key the copied keyring still holds.
//!
//! The copy is then opened with its own keys (the block log, every frame,
//! and the genesis) before the manifest is written, so a backup that
//! exists is one that opens.

use crate::{
    chain_files,
    data_dir::{
        AUDIT_DB, CHAIN_FILE, CHECKPOINT_FILE, DEV_ADMIN_HASH_FILE, DEV_SECRETS_FILE, GENESIS_FILE,
        PROOFS_DIR, PROVER_FILE, STATE_FILE,
    },
    keys::at_rest,
};
use anyhow::{bail, Context, Result};
use audit::trail::{AUDIT_DIR, SETTINGS_FILE, WITNESS_FILE};
use backup::{AuditCopy, Head, Manifest, Staging};
use sequencer::wal::{BlockLog, BlockLogReader};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};
use storage::{KvStore, RedbStore};

/// Files beside the chain that a `prividium dev` directory needs to start
/// again (its funded accounts and admin key: dev data is not secret).
const DEV_FILES: [&str; 2] = [DEV_SECRETS_FILE, DEV_ADMIN_HASH_FILE];

/// What the backup reads from.
#[derive(Clone)]
pub struct Sources {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The raw stores: `chain` (`state.redb`) and `prover` (`prover.redb`).
    pub stores: Vec<(&'static str, Arc<dyn KvStore>)>,
    /// The audit database URL, if the node keeps a trail.
    pub audit_url: Option<String>,
    /// The running node's key provider, already unlocked (None: opened
    /// from the recorded settings, which may ask for a passphrase).
    pub provider: Option<Arc<dyn encryption::KeyProvider>>,
}

impl Sources {
    /// A stopped node's sources: its stores opened from their files (which
    /// fails while a node holds them).
    pub fn stopped(data_dir: &Path) -> Result<Self> {
        let mut stores: Vec<(&'static str, Arc<dyn KvStore>)> = Vec::new();
        for (name, file) in [("chain", STATE_FILE), ("prover", PROVER_FILE)] {
            let path = data_dir.join(file);
            if path.exists() {
                let store = RedbStore::open(&path).with_context(|| {
                    format!("opening {} (is the node running?)", path.display())
                })?;
                stores.push((name, Arc::new(store)));
            }
        }
        let audit_url = if audit::trail::has_trail(data_dir) {
            Some(audit::trail::recorded_url(data_dir)?)
        } else {
            None
        };
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            stores,
            audit_url,
            provider: None,
        })
    }
}

/// Takes a backup into `dest` (which must not exist).
pub async fn take(sources: Sources, dest: PathBuf) -> Result<Manifest> {
    let chain_id = chain_files::load_chain(&sources.data_dir)?.chain_id;
    let provider = sources.provider.clone();
    let (staging, audit) = tokio::task::spawn_blocking(move || copy(&sources, &dest)).await??;
    let checked = check_copy(staging.dir(), provider).await;
    let head = match checked {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_dir_all(staging.dir());
            return Err(e.context("the copy does not open with its own keys; nothing was kept"));
        }
    };
    let encrypted = encryption::Keyring::new(staging.dir()).exists();
    Ok(
        tokio::task::spawn_blocking(move || staging.finish(chain_id, head, encrypted, audit))
            .await??,
    )
}

fn copy(s: &Sources, dest: &Path) -> Result<(Staging, AuditCopy)> {
    let dir = &s.data_dir;
    let mut st = Staging::create(dest)?;
    let result = (|| -> Result<AuditCopy> {
        st.add_file(CHAIN_FILE, &dir.join(CHAIN_FILE))?;
        st.add_file(GENESIS_FILE, &dir.join(GENESIS_FILE))?;
        st.add_file_if_present(CHECKPOINT_FILE, &dir.join(CHECKPOINT_FILE))?;
        for wanted in ["prover", "chain"] {
            if let Some((_, store)) = s.stores.iter().find(|(name, _)| *name == wanted) {
                let file = if wanted == "prover" {
                    PROVER_FILE
                } else {
                    STATE_FILE
                };
                st.add_store(file, store.as_ref())?;
            }
        }
        let log_path = dir.join(sequencer::BLOCK_LOG_FILE);
        let mut log = std::fs::File::open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let len = sequencer::wal::durable_prefix(&mut log)?;
        st.add_prefix(sequencer::BLOCK_LOG_FILE, &mut log, len)?;
        // Half-written replacements and lock files are not state.
        let not_tmp = |name: &str| name.ends_with(".tmp") || name.ends_with(".lock");
        st.add_dir(PROOFS_DIR, &dir.join(PROOFS_DIR), &not_tmp)?;
        st.add_dir(
            access_control::ACCESS_DIR,
            &dir.join(access_control::ACCESS_DIR),
            &not_tmp,
        )?;
        st.add_dir("policies", &dir.join("policies"), &not_tmp)?;
        st.add_dir(
            gateway_bridge::signer::BRIDGE_DIR,
            &dir.join(gateway_bridge::signer::BRIDGE_DIR),
            &not_tmp,
        )?;
        for name in DEV_FILES {
            st.add_file_if_present(name, &dir.join(name))?;
        }
        let audit = copy_audit(&mut st, dir, s.audit_url.as_deref())?;
        st.add_dir(
            encryption::KEYS_DIR,
            &dir.join(encryption::KEYS_DIR),
            &not_tmp,
        )?;
        Ok(audit)
    })();
    match result {
        Ok(audit) => Ok((st, audit)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(st.dir());
            Err(e)
        }
    }
}

/// The witness head, then the signing key, then the database.
fn copy_audit(st: &mut Staging, dir: &Path, url: Option<&str>) -> Result<AuditCopy> {
    let audit_dir = dir.join(AUDIT_DIR);
    let rel = |name: &str| format!("{AUDIT_DIR}/{name}");
    st.add_file_if_present(&rel(WITNESS_FILE), &audit_dir.join(WITNESS_FILE))?;
    st.add_dir(AUDIT_DIR, &audit_dir, &|name| {
        name == WITNESS_FILE
            || name == SETTINGS_FILE
            || name.starts_with("audit.db")
            || name.ends_with(".tmp")
    })?;
    match url {
        Some(url) if url.starts_with("sqlite://") => {
            let path = url.trim_start_matches("sqlite://");
            let path = Path::new(path.split('?').next().unwrap_or(path));
            st.add_sqlite(AUDIT_DB, path)?;
            Ok(AuditCopy::Sqlite {
                file: AUDIT_DB.into(),
            })
        }
        Some(url) => {
            // The database stays where it is; the restored node records
            // the same URL and finds it.
            st.add_file(&rel(SETTINGS_FILE), &audit_dir.join(SETTINGS_FILE))?;
            Ok(AuditCopy::Postgres {
                database: audit::trail::redact(url),
            })
        }
        None => bail!(
            "{} has no audit trail to back up (start the node once)",
            dir.display()
        ),
    }
}

/// Opens the copy with its own keys: the genesis, then every block-log
/// frame. Returns the head.
async fn check_copy(
    dir: &Path,
    provider: Option<Arc<dyn encryption::KeyProvider>>,
) -> Result<Option<Head>> {
    let cipher = at_rest::cipher_to_open(dir, provider)
        .await
        .context("opening the copy's keys")?;
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<Option<Head>> {
        chain_files::load_genesis(&dir, cipher.as_ref())?;
        let log = BlockLog::open_with(&dir.join(sequencer::BLOCK_LOG_FILE), cipher)
            .context("opening the copied block log")?;
        let Some(last) = log.last_block() else {
            return Ok(None);
        };
        let record = log
            .read_from(last, 1)?
            .pop()
            .context("the copied block log lost its last block")?;
        Ok(Some(Head {
            number: last,
            block_hash: format!("{:#x}", record.block_hash),
        }))
    })
    .await?
}

/// Checks a restore still beside its destination, in `dir`: the copy
/// opens with its keys and its block log ends at the manifest's head. An
/// encrypted copy then gets a fresh current data key, before it is moved
/// into place: the node the backup came from may have reserved nonce
/// epochs of the old current key after the backup was taken, so the
/// restored node must never seal under it again. Returns the new
/// data-key version, if any.
pub async fn check_restored(dir: &Path, manifest: &Manifest) -> Result<Option<u32>> {
    let head = check_copy(dir, None).await?;
    if head != manifest.head {
        bail!(
            "the restored block log ends at {:?}, not at the manifest's head {:?}",
            head,
            manifest.head
        );
    }
    if !encryption::Keyring::new(dir).exists() {
        return Ok(None);
    }
    let (provider, keyring) = rebound(dir).await?;
    Ok(Some(keyring.rotate_dek(provider.as_ref()).await?))
}

/// Makes a restored directory, now in place, the node's own: the embedded
/// audit database is recorded at its new place and a local key file's
/// keyring names the key file beside it.
pub async fn adopt_restored(dir: &Path, manifest: &Manifest) -> Result<()> {
    if let AuditCopy::Sqlite { file } = &manifest.audit {
        let at = dir.join(file);
        audit::trail::record_database(dir, &format!("sqlite://{}", at.display()))?;
    }
    if encryption::Keyring::new(dir).exists() {
        rebound(dir).await?;
    }
    Ok(())
}

/// The provider of `dir`'s recorded settings, with the keyring bound to
/// it: a local key file is named by its path, so a copied keyring names
/// the original's until it is re-bound (allowed only when this copy of
/// the key file opens it).
async fn rebound(dir: &Path) -> Result<(Arc<dyn encryption::KeyProvider>, encryption::Keyring)> {
    let (provider, keyring) = at_rest::provider_for(dir)?;
    keyring.rebind(provider.as_ref()).await?;
    Ok((provider, keyring))
}

/// What the audit trail records of a backup taken or restored.
pub fn summary(m: &Manifest) -> serde_json::Value {
    serde_json::json!({
        "head": m.head.as_ref().map(|h| h.number),
        "files": m.files.len(),
        "bytes": m.files.iter().map(|f| f.bytes).sum::<u64>(),
        "created_at": m.created_at,
    })
}

/// Serves `prividium backup` on `<data_dir>/backup.sock` for a running
/// node; every backup taken is recorded in the audit trail.
pub fn serve(
    sources: Sources,
    backup_lock: Arc<tokio::sync::Mutex<()>>,
    trail: audit::Trail,
) -> Option<tokio::task::JoinHandle<()>> {
    let path = sources.data_dir.join(backup::socket::SOCKET_FILE);
    let sources = Arc::new(sources);
    let handler: backup::socket::Handler = Arc::new(move |to: PathBuf| {
        let (sources, lock, trail) = (sources.clone(), backup_lock.clone(), trail.clone());
        Box::pin(async move {
            let _no_key_retired = lock.lock().await;
            let copy = (*sources).clone();
            if let Err(e) = outside(&copy.data_dir, &to) {
                return Err(format!("{e:#}"));
            }
            let started = std::time::Instant::now();
            let result = take(copy, to.clone()).await;
            let outcome = match &result {
                Ok(_) => audit::Outcome::Allow,
                Err(_) => audit::Outcome::Error,
            };
            let details = match &result {
                Ok(m) => {
                    let mut d = summary(m);
                    d["ms"] = serde_json::json!(started.elapsed().as_millis() as u64);
                    d
                }
                Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
            };
            let event = audit::AuditEvent::system(audit::action::BACKUP_TAKEN, outcome)
                .resource("data-directory")
                .details(details);
            if let Err(e) = trail.record(event) {
                tracing::warn!(error = %e, "backup not recorded in the audit trail");
            }
            match result {
                Ok(m) => {
                    tracing::info!(to = %to.display(), head = ?m.head.as_ref().map(|h| h.number), "backup taken");
                    Ok(m)
                }
                Err(e) => {
                    tracing::warn!(to = %to.display(), error = %format!("{e:#}"), "backup failed");
                    Err(format!("{e:#}"))
                }
            }
        })
    });
    match backup::socket::serve(&path, handler) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::error!(error = %e, "backup socket not served: `prividium backup` needs the node stopped");
            None
        }
    }
}

/// Refuses a destination inside the data directory (the copy would copy
/// itself, and a backup must survive the directory's loss).
pub fn outside(data_dir: &Path, dest: &Path) -> Result<()> {
    let data = std::fs::canonicalize(data_dir)
        .with_context(|| format!("reading {}", data_dir.display()))?;
    // The destination does not exist yet: resolve its nearest existing parent.
    let mut probe = dest.to_path_buf();
    let mut rest = Vec::new();
    while !probe.exists() {
        match (probe.file_name(), probe.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                probe = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut resolved = std::fs::canonicalize(&probe).unwrap_or(probe);
    resolved.extend(rest.iter().rev());
    if resolved.starts_with(&data) {
        bail!(
            "{} is inside the data directory {}; back up to another place",
            dest.display(),
            data.display()
        );
    }
    Ok(())
}
