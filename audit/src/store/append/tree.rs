//! The tree state both append paths share: lock it and read its right
//! edge, place a batch as the next leaves, sign and store the new head. The
//! caller's transaction holds all three, so no committed event is ever
//! outside a signed head and two writers (node and CLI) never interleave
//! their leaves.

use super::super::{state_from_row, to_i64, LOCK_STATE, READ_STATE};
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    merkle::{Frontier, Hash},
    AuditError,
};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

/// Opens an append on either driver: locks the tree state, then reads its
/// right edge and the last event time.
pub(super) async fn lock_state<DB>(conn: &mut DB::Connection) -> Result<(Frontier, i64), AuditError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
    i64: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    Vec<u8>: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
{
    sqlx::query::<DB>(LOCK_STATE).execute(&mut *conn).await?;
    let row = sqlx::query::<DB>(READ_STATE).fetch_one(&mut *conn).await?;
    Ok((state_from_row(&row)?.frontier, row.try_get(4)?))
}

/// Closes an append on either driver: signs the new head, stores the tree
/// state and the head. The caller commits.
pub(super) async fn store_head<DB>(
    conn: &mut DB::Connection,
    frontier: &Frontier,
    last_time: i64,
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
    Vec<u8>: for<'q> Encode<'q, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + Type<DB>,
{
    let head = signer.sign(frontier.size(), frontier.root(), now_ms());
    sqlx::query::<DB>(
        "UPDATE audit_state SET tree_size = $1, frontier = $2, last_time_us = $3 WHERE id = 1",
    )
    .bind(to_i64(frontier.size()))
    .bind(frontier.to_bytes())
    .bind(last_time)
    .execute(&mut *conn)
    .await?;
    sqlx::query::<DB>(
        "INSERT INTO audit_tree_heads (tree_size, root, signed_at_ms, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_i64(head.tree_size))
    .bind(head.root.to_vec())
    .bind(to_i64(head.signed_at_ms))
    .bind(head.key_id.clone())
    .bind(head.signature.clone())
    .execute(&mut *conn)
    .await?;
    Ok(head)
}

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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
