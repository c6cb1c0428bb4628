//! Appending a batch: one transaction that locks the tree state, inserts the
//! events as the next leaves, and stores the new signed head, so no committed
//! event is ever outside a signed head and two writers (node and CLI) never
//! interleave their leaves.

use super::{state_from_row, to_i64, AuditDb};
use crate::{
    event::{AuditEvent, StoredEvent},
    head::{HeadSigner, TreeHead},
    merkle::Hash,
    AuditError,
};
use sqlx::AssertSqlSafe;
use std::fmt::Write;

/// Rows per INSERT statement: 14 parameters each stays well under SQLite's
/// 32,766 and Postgres's 65,535 parameter limits.
const ROWS_PER_INSERT: usize = 1_000;

impl AuditDb {
    /// Appends `events` (each with the microsecond time it happened) and
    /// returns the signed head that now covers them.
    pub async fn append(
        &self,
        events: &[(AuditEvent, i64)],
        signer: &HeadSigner,
    ) -> Result<TreeHead, AuditError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes the write lock on both databases (a row lock
        // on Postgres, the reserved lock on SQLite) before the state is read.
        sqlx::query("UPDATE audit_state SET tree_size = tree_size WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT tree_size, frontier, pruned_to, checkpoint FROM audit_state WHERE id = 1",
        )
        .fetch_one(&mut *tx)
        .await?;
        let mut frontier = state_from_row(&row)?.frontier;
        let mut sealed: Vec<(StoredEvent, Hash)> = Vec::with_capacity(events.len());
        for (event, time_us) in events {
            let stored = StoredEvent::seal(frontier.size(), *time_us, event);
            let leaf = stored.leaf_hash();
            frontier.push(leaf);
            sealed.push((stored, leaf));
        }
        for chunk in sealed.chunks(ROWS_PER_INSERT) {
            // Only placeholders are generated; every value is bound.
            let sql = insert_sql(chunk.len());
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (e, leaf) in chunk {
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
        sqlx::query("UPDATE audit_state SET tree_size = $1, frontier = $2 WHERE id = 1")
            .bind(to_i64(frontier.size()))
            .bind(frontier.to_bytes())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO audit_tree_heads (tree_size, root, signed_at_ms, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5)",
        )
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

fn insert_sql(rows: usize) -> String {
    let mut sql = format!(
        "INSERT INTO audit_events ({}) VALUES ",
        super::EVENT_COLUMNS
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..14 {
            let sep = if c == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}${}", r * 14 + c + 1);
        }
        sql.push(')');
    }
    sql
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
