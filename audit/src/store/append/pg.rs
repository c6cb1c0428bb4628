//! The Postgres append path on a native connection: the batch goes in as
//! one `INSERT … SELECT FROM UNNEST(arrays)` (the `Any` driver has no
//! arrays, and many-row VALUES lists bind slowly), inside the same locked
//! transaction as the state and the signed head.

use super::super::{to_i64, AuditDb, EVENT_COLUMNS};
use super::tree::{lock_state, seal_batch, store_head};
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    AuditError,
};
use sqlx::{AssertSqlSafe, PgPool, Postgres};

pub(super) async fn append(
    db: &AuditDb,
    pool: &PgPool,
    events: &mut [StoredEvent],
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError> {
    let mut tx = pool.begin().await?;
    let (mut frontier, last_time) = lock_state::<Postgres>(&mut tx).await?;
    let (leaves_of_batch, last_time) = seal_batch(&mut frontier, last_time, events);
    let n = leaves_of_batch.len();
    let fields = db.row_fields(events)?;
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut leaves = Vec::with_capacity(n);
    let mut sealed = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut resource_keys = Vec::with_capacity(n);
    let mut text: [Vec<Option<&str>>; 11] = Default::default();
    for ((e, f), leaf) in events.iter().zip(&fields).zip(&leaves_of_batch) {
        ids.push(to_i64(e.id));
        times.push(e.time_us);
        leaves.push(leaf.to_vec());
        sealed.push(f.sealed.clone());
        versions.push(f.key_version);
        resource_keys.push(f.resource_key());
        let columns = [
            Some(e.actor_type.as_str()),
            Some(f.actor_id.as_ref()),
            f.organization,
            Some(e.action.as_str()),
            f.resource.as_deref(),
            Some(e.outcome.as_str()),
            e.rule_id.as_deref(),
            f.request_id,
            f.trace_id,
            f.source_ip,
            Some(f.details),
        ];
        for (column, value) in text.iter_mut().zip(columns) {
            column.push(value);
        }
    }
    let sql = format!(
        "INSERT INTO audit_events ({EVENT_COLUMNS}) SELECT * FROM UNNEST($1::bigint[], \
         $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
         $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[], \
         $15::bytea[], $16::bigint[], $17::text[])"
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&ids).bind(&times);
    for column in &text {
        q = q.bind(column);
    }
    q.bind(&leaves)
        .bind(&sealed)
        .bind(&versions)
        .bind(&resource_keys)
        .execute(&mut *tx)
        .await?;
    let head = store_head::<Postgres>(&mut tx, &frontier, last_time, signer).await?;
    tx.commit().await?;
    Ok(head)
}
