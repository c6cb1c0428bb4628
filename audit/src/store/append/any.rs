//! The SQLite append path, on the `Any` pool: the batch goes in as
//! many-row INSERTs of anonymous parameters, inside the locked transaction
//! that also stores the state and the signed head.

use super::super::{to_i64, AuditDb, EVENT_COLUMNS};
use super::tree::{lock_state, seal_batch, store_head};
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    AuditError,
};
use sqlx::{Any, AssertSqlSafe};

/// Rows per SQLite INSERT (~160k events/s into a small table at 100 rows,
/// measured with `examples/append_probe.rs`).
const SQLITE_ROWS_PER_INSERT: usize = 100;

pub(super) async fn append(
    db: &AuditDb,
    events: &mut [StoredEvent],
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError> {
    let mut tx = db.pool.begin().await?;
    let (mut frontier, last_time) = lock_state::<Any>(&mut tx).await?;
    let (leaves, last_time) = seal_batch(&mut frontier, last_time, events);
    let fields = events
        .iter()
        .map(|e| db.row_fields(e))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = SQLITE_ROWS_PER_INSERT;
    for ((chunk, chunk_fields), chunk_leaves) in events
        .chunks(rows)
        .zip(fields.chunks(rows))
        .zip(leaves.chunks(rows))
    {
        // Only placeholders are generated; every value is bound.
        let sql = insert_sql(chunk.len());
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for ((e, f), leaf) in chunk.iter().zip(chunk_fields).zip(chunk_leaves) {
            q = q
                .bind(to_i64(e.id))
                .bind(e.time_us)
                .bind(e.actor_type.as_str())
                .bind(f.actor_id.as_ref())
                .bind(f.organization)
                .bind(e.action.as_str())
                .bind(f.resource.as_deref())
                .bind(e.outcome.as_str())
                .bind(e.rule_id.as_deref())
                .bind(f.request_id)
                .bind(f.trace_id)
                .bind(f.source_ip)
                .bind(f.details)
                .bind(&leaf[..])
                .bind(f.sealed.as_deref())
                .bind(f.key_version);
        }
        q.execute(&mut *tx).await?;
    }
    let head = store_head::<Any>(&mut tx, &frontier, last_time, signer).await?;
    tx.commit().await?;
    Ok(head)
}

/// A many-row INSERT with anonymous parameters: SQLite looks named ones
/// (`$n`) up by a linear search per bind, which is quadratic per statement.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; 16].join(", "));
    format!(
        "INSERT INTO audit_events ({}) VALUES {}",
        EVENT_COLUMNS,
        vec![row; rows].join(", ")
    )
}
