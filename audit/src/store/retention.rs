//! Retention: old events are pruned from the front of the log, never from a
//! period under legal hold, and only up to a signed head whose right edge is
//! kept as the checkpoint the rest of the log verifies from.

use super::{state_from_row, to_i64, AuditDb, LOCK_STATE, READ_STATE};
use crate::{merkle::Leaves, AuditError};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A legal hold: events in `[from_us, to_us)` are kept whatever the
/// retention period says, until released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Hold id.
    pub id: i64,
    /// Start of the held period (µs).
    pub from_us: i64,
    /// End of the held period (µs, exclusive).
    pub to_us: i64,
    /// Why (case reference).
    pub reason: String,
    /// Who placed it.
    pub placed_by: String,
    /// When (µs).
    pub placed_us: i64,
    /// When released (µs), if it was.
    pub released_us: Option<i64>,
}

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Events removed by this run.
    pub pruned: u64,
    /// The log now starts at this event (the checkpoint's tree size).
    pub starts_at: u64,
    /// Why pruning stopped where it did.
    pub stopped_by: String,
}

impl AuditDb {
    /// Places a hold; returns its id.
    pub async fn place_hold(
        &self,
        from_us: i64,
        to_us: i64,
        reason: &str,
        by: &str,
    ) -> Result<i64, AuditError> {
        if from_us >= to_us {
            return Err(AuditError::Invalid(
                "a hold must end after it starts".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(AuditError::Invalid("a hold needs a reason".into()));
        }
        let row = sqlx::query(
            "INSERT INTO audit_holds (from_us, to_us, reason, placed_by, placed_us) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(from_us)
        .bind(to_us)
        .bind(reason.to_owned())
        .bind(by.to_owned())
        .bind(crate::time::now_us())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Releases hold `id`; false when there is no such active hold.
    pub async fn release_hold(&self, id: i64) -> Result<bool, AuditError> {
        let done = sqlx::query(
            "UPDATE audit_holds SET released_us = $1 WHERE id = $2 AND released_us IS NULL",
        )
        .bind(crate::time::now_us())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// All holds, active and released.
    pub async fn holds(&self) -> Result<Vec<Hold>, AuditError> {
        let rows = sqlx::query(
            "SELECT id, from_us, to_us, reason, placed_by, placed_us, released_us \
             FROM audit_holds ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Hold {
                    id: r.try_get(0)?,
                    from_us: r.try_get(1)?,
                    to_us: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    placed_by: r.try_get(4)?,
                    placed_us: r.try_get(5)?,
                    released_us: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Removes events older than `cutoff_us`, stopping at the first event an
    /// active hold covers and rounding down to a signed head.
    pub async fn prune(&self, cutoff_us: i64) -> Result<PruneReport, AuditError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(LOCK_STATE).execute(&mut *tx).await?;
        let state = state_from_row(&sqlx::query(READ_STATE).fetch_one(&mut *tx).await?)?;
        let start = state.checkpoint.size();
        let first_young: Option<i64> =
            sqlx::query("SELECT MIN(id) FROM audit_events WHERE time_us >= $1")
                .bind(cutoff_us)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let first_held: Option<i64> = sqlx::query(
            "SELECT MIN(e.id) FROM audit_events e JOIN audit_holds h \
             ON e.time_us >= h.from_us AND e.time_us < h.to_us WHERE h.released_us IS NULL",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let young = first_young.map_or(state.tree_size, |i| i as u64);
        let held = first_held.map_or(u64::MAX, |i| i as u64);
        let (limit, mut stopped_by) = if held < young {
            (held, format!("legal hold covering event {held}"))
        } else {
            (young, "retention period".to_owned())
        };
        let head: Option<i64> =
            sqlx::query("SELECT MAX(tree_size) FROM audit_tree_heads WHERE tree_size <= $1")
                .bind(to_i64(limit))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let to = head.map_or(0, |h| h as u64);
        if to <= start {
            tx.rollback().await?;
            if to < limit {
                stopped_by = "no signed head inside the prunable range yet".into();
            }
            return Ok(PruneReport {
                pruned: 0,
                starts_at: start,
                stopped_by,
            });
        }
        // The checkpoint must reproduce the signed root at `to`; a log that
        // does not is not pruned (that would destroy the evidence).
        let leaves = super::fetch_leaf_hashes(&mut *tx, start, to).await?;
        let mut checkpoint = state.checkpoint.clone();
        leaves.iter().for_each(|l| checkpoint.push(*l));
        let signed: Vec<u8> = sqlx::query("SELECT root FROM audit_tree_heads WHERE tree_size = $1")
            .bind(to_i64(to))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let computed = Leaves::after(state.checkpoint, leaves).root(to)?;
        if signed != computed || checkpoint.root() != computed {
            return Err(AuditError::Corrupt(format!(
                "events before {to} do not match their signed head; not pruning (run `prividium audit verify`)"
            )));
        }
        sqlx::query("DELETE FROM audit_events WHERE id < $1")
            .bind(to_i64(to))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM audit_tree_heads WHERE tree_size < $1")
            .bind(to_i64(to))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE audit_state SET pruned_to = $1, checkpoint = $2 WHERE id = 1")
            .bind(to_i64(to))
            .bind(checkpoint.to_bytes())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PruneReport {
            pruned: to - start,
            starts_at: to,
            stopped_by,
        })
    }
}
