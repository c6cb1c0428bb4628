//! A node's audit trail: the database, the signing key and the writer,
//! opened together, with the upkeep that keeps them tidy.
//!
//! Every part of the node records through one [`Trail`]. Events recorded
//! while a request is served carry that request's ids: the front door
//! installs a [`Stamp`] that fills them in, so this crate needs to know
//! nothing about HTTP.

mod settings;

pub use settings::{
    has_trail, operator, record_database, recorded_url, redact, AuditConfig, AUDIT_DIR,
    SETTINGS_FILE, WITNESS_FILE,
};

use crate::{
    action, ActorKind, AuditDb, AuditError, AuditEvent, AuditLog, HeadSigner, Outcome, Reservation,
    Room, WriterConfig,
};
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};
use storage::SharedCipher;

/// Fills in an event's request facts (request id, trace id, client address)
/// from the request being served on this task; false outside a request
/// (the node's own work).
pub type Stamp = fn(&mut AuditEvent) -> bool;

/// Why a trail could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// A file or directory of the trail.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The recorded settings are missing or unreadable.
    #[error("{}: {reason}", path.display())]
    Settings {
        /// The settings file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The database did not open (the URL is shown without its password).
    #[error("opening the audit database {url}: {source}")]
    Database {
        /// Redacted URL.
        url: String,
        /// The database's answer.
        source: AuditError,
    },
    /// The signing key.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Actor kind of a principal key (`User:…`, `ApiKey:…`).
pub fn actor_kind(principal_key: &str) -> ActorKind {
    if principal_key.starts_with("ApiKey:") {
        ActorKind::ApiKey
    } else {
        ActorKind::User
    }
}

/// The node's audit trail.
#[derive(Debug, Clone)]
pub struct Trail {
    log: AuditLog,
    db: AuditDb,
    signer: Arc<HeadSigner>,
    stamp: Stamp,
    last_refusal_log: Arc<AtomicI64>,
    admission_wait: Duration,
}

impl Trail {
    /// Records `event`, filling in the current request's context.
    /// Refused when the queue is full: the caller must then fail closed.
    /// An event of a request counts against the requesters' share of the
    /// queue and its actor's; the node's own events (no request: block
    /// building, batches, keys) may use the reserve too.
    pub fn record(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        let r = if (self.stamp)(&mut event) {
            self.log.record_shared(event)
        } else {
            self.log.record(event)
        };
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    /// Records `event` straight into the writer's queue, its reserve
    /// included, stamped with the current request if there is one: for
    /// events about a flood, which the flood's own share cannot hold.
    pub fn record_node_lane(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        (self.stamp)(&mut event);
        let r = self.log.record(event);
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    /// Records `event` into the place reserved for it, if one was, filling
    /// in the current request's context; otherwise as [`record`](Self::record).
    pub fn record_reserved(
        &self,
        place: Option<Reservation>,
        mut event: AuditEvent,
    ) -> Result<(), AuditError> {
        let Some(place) = place else {
            return self.record(event);
        };
        (self.stamp)(&mut event);
        let r = place.record(event);
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    /// A place for one of `actor`'s events in the requesters' share.
    pub fn reserve(&self, actor: &str) -> Result<Reservation, AuditError> {
        let r = self.log.reserve(actor);
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    /// Waits, up to the configured `admission_wait_ms`, until `actor`'s
    /// next `events` fit in the queue; call it before serving a request
    /// (see [`AuditLog::wait_for_room`]).
    pub async fn wait_for_room(&self, actor: &str, events: usize) -> Room {
        self.log
            .wait_for_room(actor, events, self.admission_wait)
            .await
    }

    fn note_refusal(&self, e: &AuditError) {
        // Under overload every request is refused; one line a second says
        // so (the writer's counters on /health have the totals).
        let now = crate::time::now_us() / 1_000_000;
        if self.last_refusal_log.swap(now, Ordering::Relaxed) != now {
            tracing::error!(error = %e, refused = self.log.stats().refused, "audit events refused; requests fail closed");
        }
    }

    /// The database, for queries.
    pub fn db(&self) -> &AuditDb {
        &self.db
    }

    /// The writer, for flushes and counters.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The public key heads are signed with.
    pub fn public_key(&self) -> crate::VerifyingKey {
        self.signer.public_key()
    }
}

/// Opens the node's trail in `data_dir`: database (migrated), signing key
/// (sealed when encryption is on) and the writer; `stamp` adds request facts
/// to events recorded while serving one. Records where the database is so
/// the CLI finds it. Needs a tokio runtime (the writer is a task).
pub async fn open(
    data_dir: &Path,
    settings: &AuditConfig,
    cipher: Option<SharedCipher>,
    stamp: Stamp,
) -> Result<Trail, TrailError> {
    let dir = data_dir.join(AUDIT_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| TrailError::Io {
        what: "creating",
        path: dir.clone(),
        source,
    })?;
    let url = settings.database_url(data_dir);
    settings::record_url(data_dir, &url)?;
    let mut db = AuditDb::connect(&url)
        .await
        .map_err(|source| TrailError::Database {
            url: redact(&url),
            source,
        })?;
    if let Some(c) = &cipher {
        db = db.sealed_with(c.clone());
        spawn_seal_plain_rows(db.clone());
    }
    let signer = Arc::new(HeadSigner::load_or_create(&dir, cipher.as_deref())?);
    let (log, _task) = AuditLog::start(
        db.clone(),
        signer.clone(),
        WriterConfig {
            queue_capacity: settings.queue_capacity,
            batch_max: settings.batch_max,
            witness: Some(dir.join(WITNESS_FILE)),
            // An eighth of the queue is the node's alone; no principal may
            // hold more than a sixteenth of it.
            reserved: settings.queue_capacity / 8,
            per_actor: (settings.queue_capacity / 16).max(1),
        },
    );
    // The writer publishes the stored head before it takes any event: once
    // it has answered a flush, `latest_head` is the log's own, which the
    // prover binds each batch to.
    log.flush().await?;
    tracing::info!(database = %redact(&url), "audit trail open");
    Ok(Trail {
        log,
        db,
        signer,
        stamp,
        last_refusal_log: Arc::default(),
        admission_wait: Duration::from_millis(settings.admission_wait_ms),
    })
}

/// Seals, in the background, rows of a log written before encryption was
/// turned on (and rows a stopped re-encryption left under an older key);
/// until then they stay readable, but queries by actor or resource find
/// only sealed rows.
fn spawn_seal_plain_rows(db: AuditDb) {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(5);
        loop {
            match db.reseal(&std::sync::atomic::AtomicBool::new(false)).await {
                Ok(r) => {
                    if r.resealed > 0 {
                        tracing::info!(
                            sealed = r.resealed,
                            "audit rows moved under the current data key"
                        );
                    }
                    return;
                }
                Err(e) => tracing::error!(
                    error = %e,
                    retry_in_s = wait.as_secs(),
                    "sealing audit rows failed"
                ),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(600));
        }
    });
}

/// Hourly upkeep (and once at start): refresh query statistics and, with a
/// retention period, prune.
pub fn spawn_upkeep(trail: Trail, retention_days: Option<u64>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = trail.db.analyze().await {
                tracing::warn!(error = %e, "audit statistics refresh failed");
            }
            let Some(days) = retention_days else {
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                continue;
            };
            let cutoff = crate::time::now_us() - (days as i64) * 86_400 * 1_000_000;
            match trail.db.prune(cutoff).await {
                Ok(r) if r.pruned > 0 => {
                    tracing::info!(
                        pruned = r.pruned,
                        starts_at = r.starts_at,
                        "audit retention pruned old events"
                    );
                    let _ = trail.record(
                        AuditEvent::system(action::AUDIT_PRUNED, Outcome::Allow)
                            .details(serde_json::to_value(&r).unwrap_or_default()),
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "audit retention failed"),
            }
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        }
    });
}
