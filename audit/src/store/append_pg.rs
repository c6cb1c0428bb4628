//! The Postgres append path on a native connection: the batch goes in as
//! one `INSERT … SELECT FROM UNNEST(arrays)` (the `Any` driver has no
//! arrays, and many-row VALUES lists bind slowly), inside the same locked
//! transaction as the state and the signed head.

use super::{
    append::{now_ms, seal_batch, INSERT_HEAD, LOCK_STATE, READ_STATE, WRITE_STATE},
    to_i64, EVENT_COLUMNS,
};
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    merkle::Frontier,
    AuditError,
};
use sqlx::{AssertSqlSafe, PgPool, Row};

pub(super) async fn append(
    pool: &PgPool,
    events: &mut [StoredEvent],
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError> {
    let mut tx = pool.begin().await?;
    sqlx::query(LOCK_STATE).execute(&mut *tx).await?;
    let row = sqlx::query(READ_STATE).fetch_one(&mut *tx).await?;
    let size: i64 = row.try_get(0)?;
    let edge: Vec<u8> = row.try_get(1)?;
    let mut frontier = Frontier::from_parts(size as u64, &edge).ok_or_else(|| {
        AuditError::Corrupt("audit_state frontier does not match its size".into())
    })?;
    let (sealed, last_time) = seal_batch(&mut frontier, row.try_get(4)?, events);
    let n = sealed.len();
    let sealed: Vec<_> = events.iter().zip(sealed).collect();
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut leaves = Vec::with_capacity(n);
    let mut text: [Vec<Option<&str>>; 11] = Default::default();
    for (e, leaf) in &sealed {
        ids.push(to_i64(e.id));
        times.push(e.time_us);
        leaves.push(leaf.to_vec());
        let fields = [
            Some(e.actor_type.as_str()),
            Some(e.actor_id.as_str()),
            e.organization.as_deref(),
            Some(e.action.as_str()),
            e.resource.as_deref(),
            Some(e.outcome.as_str()),
            e.rule_id.as_deref(),
            e.request_id.as_deref(),
            e.trace_id.as_deref(),
            e.source_ip.as_deref(),
            Some(e.details.as_str()),
        ];
        for (column, value) in text.iter_mut().zip(fields) {
            column.push(value);
        }
    }
    let sql = format!(
        "INSERT INTO audit_events ({EVENT_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], \
         $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[])"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&ids).bind(&times);
    for column in &text {
        q = q.bind(column);
    }
    q.bind(&leaves).execute(&mut *tx).await?;
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
