//! Sealing the queue's private columns (witnesses, error texts) with the
//! appliance's data keys, bound to chain, batch and column, and moving them
//! onto the current key before older keys are retired.

use super::{db_err, int, uint, PgJobStore, ResealCount};
use crate::ProverError;
use sqlx::Row;
use std::sync::atomic::{AtomicBool, Ordering};

/// A sealed column's stored value and the data-key version it is under.
type Stored = (Option<Vec<u8>>, Option<i32>);

impl PgJobStore {
    fn context(&self, batch: u64, column: &str) -> Vec<u8> {
        format!("prover_jobs/{}/{batch}/{column}", self.chain_id).into_bytes()
    }

    /// Seals `bytes` for a column; returns the stored value and key version.
    pub(super) fn seal(
        &self,
        batch: u64,
        column: &str,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, Option<i32>), ProverError> {
        match &self.cipher {
            None => Ok((bytes.to_vec(), None)),
            Some(c) => {
                let sealed = c
                    .seal(&self.context(batch, column), bytes)
                    .map_err(|e| ProverError::Store(format!("sealing {column}: {e}")))?;
                Ok((sealed, Some(c.current_version() as i32)))
            }
        }
    }

    pub(super) fn open(
        &self,
        batch: u64,
        column: &str,
        stored: Vec<u8>,
        key: Option<i32>,
    ) -> Result<Vec<u8>, ProverError> {
        match (&self.cipher, key) {
            (_, None) => Ok(stored),
            (Some(c), Some(_)) => c.open(&self.context(batch, column), &stored).map_err(|e| {
                ProverError::Store(format!("{column} of batch {batch} does not open: {e}"))
            }),
            (None, Some(v)) => Err(ProverError::Store(format!(
                "{column} of batch {batch} is sealed (data key v{v}); open the queue with the appliance's data keys"
            ))),
        }
    }

    /// Moves sealed witnesses and errors onto the current data key (before
    /// older keys are retired); stops early when `stop` is set.
    pub fn reseal(&self, stop: &AtomicBool) -> Result<ResealCount, ProverError> {
        let Some(cipher) = self.cipher.clone() else {
            return Ok(ResealCount::default());
        };
        let current = cipher.current_version() as i32;
        let mut count = ResealCount::default();
        let mut after = -1i64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(count);
            }
            let (pool, chain) = (self.pool.clone(), self.chain_id);
            let rows = self.run(async move {
                sqlx::query(
                    "SELECT batch_number, witness, witness_key, last_error, error_key \
                     FROM prover_jobs WHERE chain_id = $1 AND batch_number > $2 \
                     AND (witness_key IS NOT NULL OR error_key IS NOT NULL) \
                     ORDER BY batch_number LIMIT 100",
                )
                .bind(chain)
                .bind(after)
                .fetch_all(&pool)
                .await
            })?;
            let Some(last) = rows.last() else {
                return Ok(count);
            };
            after = last.try_get("batch_number").map_err(db_err)?;
            for row in rows {
                count.examined += 1;
                let batch = uint("batch_number", row.try_get("batch_number").map_err(db_err)?)?;
                let mut changed = false;
                let mut old_keys: [Option<i32>; 2] = [None; 2];
                let mut stored: [Stored; 2] = Default::default();
                for ((out, old_key), (col, key_col)) in stored
                    .iter_mut()
                    .zip(old_keys.iter_mut())
                    .zip([("witness", "witness_key"), ("last_error", "error_key")])
                {
                    let raw: Option<Vec<u8>> = row.try_get(col).map_err(db_err)?;
                    let key: Option<i32> = row.try_get(key_col).map_err(db_err)?;
                    *old_key = key;
                    *out = match raw {
                        Some(raw) if key.is_some_and(|k| k != current) => {
                            let plain = self.open(batch, col, raw, key)?;
                            changed = true;
                            let (sealed, v) = self.seal(batch, col, &plain)?;
                            (Some(sealed), v)
                        }
                        raw => (raw, key),
                    };
                }
                if changed {
                    let (pool, chain) = (self.pool.clone(), self.chain_id);
                    let [(w, wk), (e, ek)] = stored;
                    let b = int(batch)?;
                    // Only if nothing changed the row meanwhile (an export
                    // deleting the witness, a new error): otherwise the next
                    // pass sees the new row.
                    let updated = self.run(async move {
                        sqlx::query(
                            "UPDATE prover_jobs SET witness = $3, witness_key = $4, \
                             last_error = $5, error_key = $6 \
                             WHERE chain_id = $1 AND batch_number = $2 \
                             AND witness_key IS NOT DISTINCT FROM $7 \
                             AND error_key IS NOT DISTINCT FROM $8",
                        )
                        .bind(chain)
                        .bind(b)
                        .bind(w)
                        .bind(wk)
                        .bind(e)
                        .bind(ek)
                        .bind(old_keys[0])
                        .bind(old_keys[1])
                        .execute(&pool)
                        .await
                        .map(|r| r.rows_affected())
                    })?;
                    count.resealed += updated;
                }
            }
        }
    }
}
