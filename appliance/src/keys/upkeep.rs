//! Key housekeeping inside a running node: picks up data-key rotations made
//! by `prividium keys rotate-dek`, rotates by itself before a key reaches its
//! usage limit, records usage, and after a rotation moves everything sealed
//! onto the current key in the background and retires the older keys
//! (resumable; see [`super::reseal`]).

use super::{
    at_rest::AtRest,
    reseal::{self, Holdings, Pass},
};
use audit::{action, AuditEvent, Outcome, Trail};
use serde_json::json;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};
use storage::RecordCipher;

/// The running housekeeping task.
pub struct KeyTask {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl KeyTask {
    /// Stops it (an unfinished re-encryption saves its position) and waits.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.await;
    }
}

/// Pause before a failed re-encryption is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

fn system(name: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent::system(name, outcome).resource("data-keys")
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// How often the task looks at the keyring.
const TICK: Duration = Duration::from_millis(250);
/// How often usage is recorded (and the usage limit checked).
const USAGE_EVERY: Duration = Duration::from_secs(30);

/// Starts housekeeping for `at`, whose records are in `holdings`.
pub fn spawn(at: AtRest, holdings: Holdings, trail: Trail) -> KeyTask {
    let stop = Arc::new(AtomicBool::new(false));
    let keyring_file = at.keyring.path();
    let mut upkeep = Upkeep {
        seen: mtime(&keyring_file),
        keyring_file,
        last_usage: Instant::now(),
        pending: old_keys_live(&at),
        retry_at: None,
        job: None,
        stop: stop.clone(),
        at,
        holdings,
        trail,
    };
    let handle = tokio::spawn(async move {
        while !upkeep.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(TICK).await;
            upkeep.pick_up_rotations().await;
            if upkeep.last_usage.elapsed() > USAGE_EVERY {
                upkeep.last_usage = Instant::now();
                upkeep.record_usage().await;
                upkeep.rotate_near_limit().await;
            }
            upkeep.reseal_when_due().await;
        }
        upkeep.finish().await;
    });
    KeyTask { stop, handle }
}

/// The housekeeping task's state between ticks.
struct Upkeep {
    at: AtRest,
    holdings: Holdings,
    trail: Trail,
    stop: Arc<AtomicBool>,
    /// The keyring document, looked at every tick.
    keyring_file: std::path::PathBuf,
    /// The keyring file's modification time when last read.
    seen: Option<SystemTime>,
    last_usage: Instant,
    /// Records may be sealed under a key other than the current one.
    pending: bool,
    /// When a failed or deferred re-sealing pass is tried again.
    retry_at: Option<Instant>,
    /// The re-sealing pass running now; true when it must be retried.
    job: Option<tokio::task::JoinHandle<bool>>,
}

impl Upkeep {
    /// Every keyring write (a CLI rotation, this task's own usage report,
    /// rotation or retirement) is looked at here, next tick; a new current
    /// key means records to re-seal.
    async fn pick_up_rotations(&mut self) {
        let now_seen = mtime(&self.keyring_file);
        if now_seen == self.seen {
            return;
        }
        self.seen = now_seen;
        let at = &self.at;
        match at
            .keyring
            .refresh(at.provider.as_ref(), &at.cipher, at.limits)
            .await
        {
            Ok(Some(_)) => self.pending = true,
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot load the rotated keyring"),
        }
    }

    /// Writes how many records the current key has sealed to the keyring.
    async fn record_usage(&self) {
        let at = &self.at;
        if let Err(e) = at
            .keyring
            .report_usage(at.provider.as_ref(), &at.cipher)
            .await
        {
            tracing::warn!(error = %e, "cannot record data-key usage");
        }
    }

    /// Rotates the data key at 90 % of its usage limit, and records it.
    async fn rotate_near_limit(&self) {
        let at = &self.at;
        let (version, used) = at.cipher.sealed_total();
        if used < at.limits.max_records_per_key / 10 * 9 {
            return;
        }
        tracing::warn!(version, used, "data key near its usage limit; rotating");
        let (outcome, details) = match at.keyring.rotate_dek(at.provider.as_ref()).await {
            Ok(v) => (
                Outcome::Allow,
                json!({ "version": v, "trigger": "usage limit" }),
            ),
            Err(e) => {
                tracing::error!(error = %e, "automatic data-key rotation failed");
                (
                    Outcome::Error,
                    json!({ "error": e.to_string(), "trigger": "usage limit" }),
                )
            }
        };
        let _ = self
            .trail
            .record(system(action::DEK_ROTATED, outcome).details(details));
    }

    /// Collects a finished re-sealing pass, and starts one when records are
    /// pending and none runs (one at a time; a failure waits
    /// [`RETRY_AFTER`]).
    async fn reseal_when_due(&mut self) {
        if self.job.as_ref().is_some_and(|j| j.is_finished()) {
            let retry = match self.job.take() {
                Some(j) => j.await.unwrap_or(true),
                None => false,
            };
            if retry {
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
        if self.retry_at.is_some_and(|t| Instant::now() >= t) {
            self.retry_at = None;
            self.pending = true;
        }
        if self.pending && self.job.is_none() {
            self.pending = false;
            let (at, holdings, stop, trail) = (
                self.at.clone(),
                self.holdings.clone(),
                self.stop.clone(),
                self.trail.clone(),
            );
            self.job = Some(tokio::spawn(async move {
                rekey_and_record(&at, &holdings, stop, &trail).await
            }));
        }
    }

    /// On stop: lets a running pass save its position, records usage.
    async fn finish(mut self) {
        if let Some(j) = self.job.take() {
            let _ = j.await;
        }
        self.record_usage().await;
    }
}

/// True when a data-key version other than the current one is not retired
/// yet: some record may still be sealed under it.
fn old_keys_live(at: &AtRest) -> bool {
    at.keyring.read().is_ok_and(|doc| {
        !doc.live_versions_except(at.cipher.current_version())
            .is_empty()
    })
}

/// Moves everything onto the current key and retires the others, and
/// records the outcome; true when it failed and should be tried again.
async fn rekey_and_record(
    at: &AtRest,
    holdings: &Holdings,
    stop: Arc<AtomicBool>,
    trail: &Trail,
) -> bool {
    let started = Instant::now();
    tracing::info!(
        target = at.cipher.current_version(),
        "moving sealed records onto the current data key"
    );
    match reseal::run(at, holdings, stop).await {
        Ok(Pass::Done {
            target,
            moved,
            retired,
        }) => {
            tracing::info!(
                target,
                ?retired,
                secs = started.elapsed().as_secs_f64(),
                "re-encryption finished"
            );
            let details = json!({ "version": target, "moved": moved });
            let _ = trail.record(system(action::REENCRYPTED, Outcome::Allow).details(details));
            if !retired.is_empty() {
                let details = json!({ "retired": retired, "current": target });
                let _ = trail.record(system(action::DEKS_RETIRED, Outcome::Allow).details(details));
            }
        }
        Ok(Pass::Paused) => {
            tracing::info!("re-encryption paused; it resumes with the next key or start")
        }
        Ok(Pass::BackupRunning) => {
            tracing::info!(
                retry_in_s = RETRY_AFTER.as_secs(),
                "a backup is running; older data keys are retired after it"
            );
            return true;
        }
        Err(e) => {
            let e = format!("{e:#}");
            tracing::error!(error = %e, retry_in_s = RETRY_AFTER.as_secs(), "re-encryption failed");
            let details = json!({ "error": e });
            let _ = trail.record(system(action::REENCRYPTED, Outcome::Error).details(details));
            return true;
        }
    }
    false
}
