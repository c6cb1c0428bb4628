//! Key housekeeping inside a running node: picks up data-key rotations made
//! by `prividium keys rotate-dek`, rotates by itself before a key reaches its
//! usage limit, records usage, and after a rotation moves everything sealed
//! onto the current key in the background and retires the older keys
//! (resumable; see [`crate::rekey`]).

use crate::{
    at_rest::AtRest,
    rekey::{self, Holdings, Pass},
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

/// Starts housekeeping for `at`, whose records are in `holdings`.
pub fn spawn(at: AtRest, holdings: Holdings, trail: Trail) -> KeyTask {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = tokio::spawn(async move {
        let ring_path = at.keyring.path();
        let mut seen = mtime(&ring_path);
        let mut last_usage = Instant::now();
        let mut pending = old_keys_live(&at);
        let mut retry_at: Option<Instant> = None;
        let mut job: Option<tokio::task::JoinHandle<bool>> = None;
        while !flag.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            // Every keyring write — a CLI rotation, this task's own usage
            // report, rotation or retirement — is looked at here, next tick.
            let now_seen = mtime(&ring_path);
            if now_seen != seen {
                seen = now_seen;
                match at
                    .keyring
                    .refresh(at.provider.as_ref(), &at.cipher, at.limits)
                    .await
                {
                    Ok(Some(_)) => pending = true,
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot load the rotated keyring"),
                }
            }
            if last_usage.elapsed() > Duration::from_secs(30) {
                last_usage = Instant::now();
                if let Err(e) = at
                    .keyring
                    .report_usage(at.provider.as_ref(), &at.cipher)
                    .await
                {
                    tracing::warn!(error = %e, "cannot record data-key usage");
                }
                let (version, used) = at.cipher.sealed_total();
                if used >= at.limits.max_records_per_key / 10 * 9 {
                    tracing::warn!(version, used, "data key near its usage limit; rotating");
                    let rotated = at.keyring.rotate_dek(at.provider.as_ref()).await;
                    let (outcome, details) = match &rotated {
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
                    let _ = trail.record(system(action::DEK_ROTATED, outcome).details(details));
                }
            }
            if job.as_ref().is_some_and(|j| j.is_finished()) {
                let retry = match job.take() {
                    Some(j) => j.await.unwrap_or(true),
                    None => false,
                };
                if retry {
                    retry_at = Some(Instant::now() + RETRY_AFTER);
                }
            }
            if retry_at.is_some_and(|t| Instant::now() >= t) {
                retry_at = None;
                pending = true;
            }
            if pending && job.is_none() {
                pending = false;
                let (at, holdings, stop, trail) =
                    (at.clone(), holdings.clone(), flag.clone(), trail.clone());
                job = Some(tokio::spawn(async move {
                    rekey_and_record(&at, &holdings, stop, &trail).await
                }));
            }
        }
        if let Some(j) = job {
            let _ = j.await;
        }
        if let Err(e) = at
            .keyring
            .report_usage(at.provider.as_ref(), &at.cipher)
            .await
        {
            tracing::warn!(error = %e, "cannot record data-key usage");
        }
    });
    KeyTask { stop, handle }
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
    match rekey::run(at, holdings, stop).await {
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
            tracing::error!(error = %e, retry_in_s = RETRY_AFTER.as_secs(), "re-encryption failed");
            let details = json!({ "error": e });
            let _ = trail.record(system(action::REENCRYPTED, Outcome::Error).details(details));
            return true;
        }
    }
    false
}
