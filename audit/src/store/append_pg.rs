//! The Postgres append path on a native connection: the batch goes in as
//! one `INSERT … SELECT FROM UNNEST(arrays)` (the `Any` driver has no
//! arrays, and many-row VALUES lists bind slowly), inside the same locked
//! transaction as the state and the signed head.

use super::{
    append::{lock_state, seal_batch, store_head},
    to_i64, EVENT_COLUMNS,
};
use crate::{
    event::StoredEvent,
    head::{HeadSigner, TreeHead},
    AuditError,
};
use sqlx::{AssertSqlSafe, PgPool, Postgres};

pub(super) async fn append(
    pool: &PgPool,
    events: &mut [StoredEvent],
    signer: &HeadSigner,
) -> Result<TreeHead, AuditError> {
    let mut tx = pool.begin().await?;
    let (mut frontier, last_time) = lock_state::<Postgres>(&mut tx).await?;
    let (sealed, last_time) = seal_batch(&mut frontier, last_time, events);
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
    let head = store_head::<Postgres>(&mut tx, &frontier, last_time, signer).await?;
    tx.commit().await?;
    Ok(head)
}
