//! Moving event rows onto the current data key after a rotation (so older
//! keys can be retired), and sealing rows written before encryption was on.
//! Only the sealed columns change; ids, times and leaf hashes stay, so the
//! Merkle tree and every signed head still cover the same events.

use super::{to_i64, AuditDb, EVENT_COLUMNS};
use crate::AuditError;
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows re-sealed per transaction: short enough not to hold the writer up.
const PAGE: i64 = 500;

/// What a re-seal run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealReport {
    /// Rows found under another key, or plain.
    pub examined: u64,
    /// Rows now sealed under the current key.
    pub resealed: u64,
    /// False when stopped before the end; a later run picks up the rest.
    pub complete: bool,
}

impl AuditDb {
    /// Re-seals every event that is not under the current data key (plain
    /// rows included), a page per transaction, until none is left or `stop`
    /// is set. Does nothing when the log is not sealed. A row whose sealed
    /// fields do not open is damage: the run stops with an error naming it.
    pub async fn reseal(&self, stop: &AtomicBool) -> Result<ResealReport, AuditError> {
        let mut report = ResealReport::default();
        let Some(sealing) = &self.sealing else {
            report.complete = true;
            return Ok(report);
        };
        let target = i64::from(sealing.current_version());
        let select = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE id > $1 \
             AND (key_version IS NULL OR key_version <> $2) ORDER BY id LIMIT $3"
        );
        let mut after = -1_i64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(report);
            }
            let rows = sqlx::query(AssertSqlSafe(select.clone()))
                .bind(after)
                .bind(target)
                .bind(PAGE)
                .fetch_all(&self.pool)
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut tx = self.pool.begin().await?;
            for row in &rows {
                let (event, _) = self.event_from_row(row)?;
                after = to_i64(event.id);
                report.examined += 1;
                let f = sealing.seal_one(&event)?;
                if f.key_version != Some(target) {
                    // Rotated meanwhile: the next pass moves everything.
                    return Ok(report);
                }
                sqlx::query(
                    "UPDATE audit_events SET actor_id = $1, organization = NULL, resource = $2, \
                     resource_key = $6, request_id = NULL, trace_id = NULL, source_ip = NULL, \
                     details = '', sealed = $3, key_version = $4 WHERE id = $5",
                )
                .bind(f.actor_id.as_ref())
                .bind(f.resource.as_deref())
                .bind(f.sealed.as_deref())
                .bind(f.key_version)
                .bind(after)
                .bind(f.resource_key())
                .execute(&mut *tx)
                .await?;
                report.resealed += 1;
            }
            tx.commit().await?;
        }
        if report.resealed > 0 && self.backend == super::Backend::Sqlite {
            // The old page images stay in the write-ahead log until a
            // checkpoint copies them over and the log is truncated.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        report.complete = true;
        Ok(report)
    }
}
