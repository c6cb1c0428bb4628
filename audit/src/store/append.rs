//! Appending a batch: one transaction that locks the tree state, inserts the
//! events as the next leaves, and stores the new signed head, so no committed
//! event is ever outside a signed head and two writers (node and CLI) never
//! interleave their leaves.

use super::{state_from_row, to_i64, AuditDb};
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    merkle::{Frontier, Hash},
    AuditError,
};
use sqlx::{AssertSqlSafe, Row};

/// Rows per SQLite INSERT (~160k events/s into a small table at 100 rows,
/// measured with `examples/append_probe.rs`).
const SQLITE_ROWS_PER_INSERT: usize = 100;

pub(super) const LOCK_STATE: &str = "UPDATE audit_state SET tree_size = tree_size WHERE id = 1";
pub(super) const READ_STATE: &str =
    "SELECT tree_size, frontier, pruned_to, checkpoint, last_time_us FROM audit_state WHERE id = 1";
pub(super) const WRITE_STATE: &str =
    "UPDATE audit_state SET tree_size = $1, frontier = $2, last_time_us = $3 WHERE id = 1";
pub(super) const INSERT_HEAD: &str = "INSERT INTO audit_tree_heads \
    (tree_size, root, signed_at_ms, key_id, signature) VALUES ($1, $2, $3, $4, $5)";

/// Places `events` as the next leaves after `frontier`; returns their leaf
/// hashes and the last time.
pub(super) fn seal_batch(
    frontier: &mut Frontier,
    mut last_time: i64,
    events: &mut [StoredEvent],
) -> (Vec<Hash>, i64) {
    let mut leaves = Vec::with_capacity(events.len());
    for e in events {
        // Times never decrease in log order (events queued microseconds
        // apart by different threads, or a clock stepped back): a time
        // range is then an id range, which queries rely on.
        last_time = last_time.max(e.time_us);
        e.time_us = last_time;
        e.id = frontier.size();
        let leaf = e.leaf_hash();
        frontier.push(leaf);
        leaves.push(leaf);
    }
    (leaves, last_time)
}

impl AuditDb {
    /// Appends `events` (from [`StoredEvent::pending`]; their ids are
    /// assigned here) and returns the signed head that now covers them.
    pub async fn append(
        &self,
        events: &mut [StoredEvent],
        signer: &HeadSigner,
    ) -> Result<TreeHead, AuditError> {
        // Postgres appends on its native pool; what follows is SQLite.
        if let Some(pg) = &self.pg {
            return super::append_pg::append(pg, events, signer).await;
        }
        let mut tx = self.pool.begin().await?;
        // Writing first takes the write lock on both databases (a row lock
        // on Postgres, the reserved lock on SQLite) before the state is read.
        sqlx::query(LOCK_STATE).execute(&mut *tx).await?;
        let row = sqlx::query(READ_STATE).fetch_one(&mut *tx).await?;
        let mut frontier = state_from_row(&row)?.frontier;
        let (leaves, last_time) = seal_batch(&mut frontier, row.try_get(4)?, events);
        let rows = SQLITE_ROWS_PER_INSERT;
        for (chunk, chunk_leaves) in events.chunks(rows).zip(leaves.chunks(rows)) {
            // Only placeholders are generated; every value is bound.
            let sql = insert_sql(chunk.len());
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (e, leaf) in chunk.iter().zip(chunk_leaves) {
                q = q
                    .bind(to_i64(e.id))
                    .bind(e.time_us)
                    .bind(e.actor_type.as_str())
                    .bind(e.actor_id.as_str())
                    .bind(e.organization.as_deref())
                    .bind(e.action.as_str())
                    .bind(e.resource.as_deref())
                    .bind(e.outcome.as_str())
                    .bind(e.rule_id.as_deref())
                    .bind(e.request_id.as_deref())
                    .bind(e.trace_id.as_deref())
                    .bind(e.source_ip.as_deref())
                    .bind(e.details.as_str())
                    .bind(&leaf[..]);
            }
            q.execute(&mut *tx).await?;
        }
        let head = signer.sign(frontier.size(), frontier.root(), now_ms());
        sqlx::query(WRITE_STATE)
            .bind(to_i64(frontier.size()))
            .bind(frontier.to_bytes())
            .bind(last_time)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_HEAD)
            .bind(to_i64(head.tree_size))
            .bind(head.root.to_vec())
            .bind(to_i64(head.signed_at_ms))
            .bind(head.key_id.clone())
            .bind(head.signature.clone())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(head)
    }
}

/// A many-row INSERT with anonymous parameters: SQLite looks named ones
/// (`$n`) up by a linear search per bind, which is quadratic per statement.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; 14].join(", "));
    format!(
        "INSERT INTO audit_events ({}) VALUES {}",
        super::EVENT_COLUMNS,
        vec![row; rows].join(", ")
    )
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
