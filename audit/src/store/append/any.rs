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
use sqlx::{pool::PoolConnection, Any, AssertSqlSafe, Connection};
use std::sync::{Arc, OnceLock};

/// Rows per SQLite INSERT (~160k events/s into a small table at 100 rows,
/// measured with `examples/append_probe.rs`).
const SQLITE_ROWS_PER_INSERT: usize = 100;

pub(super) async fn append(
    db: &AuditDb,
    events: &mut [StoredEvent],
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError> {
    let mut conn = db.appender.as_ref().unwrap_or(&db.pool).acquire().await?;
    let appended = append_on(&mut conn, db, events, signer).await;
    if appended.is_err() {
        // On a full disk, an I/O error or out of memory SQLite may roll the
        // whole transaction back by itself (always, with no statement
        // journal), and the driver's record of an open transaction is then
        // wrong: later appends would nest as savepoints that never commit.
        // A failed append's connection is never used again.
        conn.close_on_drop();
    }
    appended
}

async fn append_on(
    conn: &mut PoolConnection<Any>,
    db: &AuditDb,
    events: &mut [StoredEvent],
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError> {
    let mut tx = Connection::begin(&mut **conn).await?;
    let (mut frontier, last_time) = lock_state::<Any>(&mut tx).await?;
    let (leaves, last_time) = seal_batch(&mut frontier, last_time, events);
    let fields = db.row_fields(events)?;
    let rows = SQLITE_ROWS_PER_INSERT;
    for ((chunk, chunk_fields), chunk_leaves) in events
        .chunks(rows)
        .zip(fields.chunks(rows))
        .zip(leaves.chunks(rows))
    {
        // Only placeholders are generated; every value is bound.
        let sql: Arc<str> = if chunk.len() == rows {
            full_insert()
        } else {
            insert_sql(chunk.len()).into()
        };
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
                .bind(f.key_version)
                .bind(f.resource_key());
        }
        q.execute(&mut *tx).await?;
    }
    let head = store_head::<Any>(&mut tx, &frontier, last_time, signer).await?;
    tx.commit().await?;
    Ok(head)
}

/// The INSERT of a full chunk, built once (it is some 6 kB of text).
fn full_insert() -> Arc<str> {
    static SQL: OnceLock<Arc<str>> = OnceLock::new();
    SQL.get_or_init(|| insert_sql(SQLITE_ROWS_PER_INSERT).into())
        .clone()
}

/// A many-row INSERT with anonymous parameters: SQLite looks named ones
/// (`$n`) up by a linear search per bind, which is quadratic per statement.
///
/// `OR FAIL`: a conflicting row (only another writer's id could collide)
/// stops the statement with an error, without undoing the rows before it;
/// the append then fails and its whole transaction is rolled back, exactly
/// as with the default `ABORT`. What `ABORT` costs is a statement journal —
/// every changed page copied aside in case this one statement must be
/// undone — a tenth of the writer's time under load (perf), for an undo the
/// transaction's rollback already gives. SQLite keeps that journal anyway
/// when a function is evaluated in the row or in an index expression (it
/// could fail midway), which is why the resource's indexed prefix is bound
/// here as a value (migration 0005) rather than computed by `substr`.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; 17].join(", "));
    format!(
        "INSERT OR FAIL INTO audit_events ({}) VALUES {}",
        EVENT_COLUMNS,
        vec![row; rows].join(", ")
    )
}
