//! Key housekeeping inside a running node: picks up data-key rotations made
//! by `prividium keys rotate-dek`, rotates by itself before a key reaches its
//! usage limit, records usage, and moves the derived store onto the current
//! key in the background (resumable; see `encryption::reencrypt_store`).

use crate::{at_rest::AtRest, audit_trail::Trail};
use audit::{action, AuditEvent, Outcome};
use serde_json::json;
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};
use storage::{KvStore, RecordCipher};

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

fn system(name: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent::system(name, outcome).resource("data-keys")
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Starts housekeeping for `at`.
pub fn spawn(at: AtRest, data_dir: PathBuf, raw: Arc<dyn KvStore>, trail: Trail) -> KeyTask {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = tokio::spawn(async move {
        let ring_path = at.keyring.path();
        let mut seen = mtime(&ring_path);
        let mut last_usage = Instant::now();
        let mut pending = reencryption_pending(&at, &data_dir);
        let mut job: Option<tokio::task::JoinHandle<()>> = None;
        while !flag.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if mtime(&ring_path) != seen {
                match at
                    .keyring
                    .refresh(at.provider.as_ref(), &at.cipher, at.limits)
                    .await
                {
                    Ok(Some(_)) => pending = true,
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "cannot load the rotated keyring"),
                }
                seen = mtime(&ring_path);
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
                seen = mtime(&ring_path);
            }
            let idle = job.as_ref().is_none_or(|j| j.is_finished());
            if pending && idle {
                pending = false;
                let (cipher, raw, dir, stop, trail) = (
                    at.cipher.clone(),
                    raw.clone(),
                    data_dir.clone(),
                    flag.clone(),
                    trail.clone(),
                );
                job = Some(tokio::task::spawn_blocking(move || {
                    reencrypt(&dir, raw.as_ref(), cipher.as_ref(), &stop, &trail)
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

/// True when an earlier run was interrupted, or an older key is still live
/// and the store has not been moved onto the current one yet.
fn reencryption_pending(at: &AtRest, data_dir: &std::path::Path) -> bool {
    if encryption::reencrypt::load_progress(data_dir).is_some() {
        return true;
    }
    let current = at.cipher.current_version();
    if encryption::reencrypt::completed_target(data_dir) == Some(current) {
        return false;
    }
    at.keyring
        .read()
        .map(|doc| {
            doc.deks
                .iter()
                .any(|d| d.version != current && d.retired.is_none())
        })
        .unwrap_or(false)
}

fn reencrypt(
    dir: &std::path::Path,
    raw: &dyn KvStore,
    cipher: &dyn RecordCipher,
    stop: &AtomicBool,
    trail: &Trail,
) {
    let started = Instant::now();
    let mut last_log = Instant::now();
    let target = cipher.current_version();
    tracing::info!(
        target,
        "re-encrypting the derived store onto the current data key"
    );
    let result = encryption::reencrypt_store(dir, raw, cipher, stop, |p| {
        if last_log.elapsed() > Duration::from_secs(5) {
            last_log = Instant::now();
            tracing::info!(
                target,
                examined = p.examined,
                resealed = p.resealed,
                table = p.table.as_deref().unwrap_or("-"),
                "re-encryption progress"
            );
        }
    });
    match result {
        Ok(r) if r.complete => {
            tracing::info!(
                target,
                examined = r.examined,
                resealed = r.resealed,
                secs = started.elapsed().as_secs_f64(),
                "re-encryption of the derived store finished"
            );
            let details =
                json!({ "version": target, "examined": r.examined, "resealed": r.resealed });
            let _ = trail.record(system(action::REENCRYPTED, Outcome::Allow).details(details));
        }
        Ok(r) => tracing::info!(
            target,
            resealed = r.resealed,
            "re-encryption paused; it resumes at the next start"
        ),
        Err(e) => tracing::error!(error = %e, "re-encryption failed; it retries at the next start"),
    }
}
