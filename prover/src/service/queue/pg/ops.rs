//! The queue's roles in SQL: what the cutter, the workers and the exporter
//! do to jobs, and what status pages read.

use super::{db_err, int, ledger_key, uint, PgJobStore, CLAIM_RETRY_MS, COLUMNS};
use crate::{
    service::queue::{
        Claimed, CutterQueue, ExporterQueue, Job, Lease, Made, QueueView, Retry, WorkerQueue,
    },
    ProverError,
};
use sqlx::Row;
use storage::{Table, WriteBatch};

impl QueueView for PgJobStore {
    fn last_cut(&self) -> Result<Option<(u64, u64)>, ProverError> {
        let (pool, chain) = (self.pool.clone(), self.chain_id);
        let row: Option<(i64, i64)> = self.run(async move {
            sqlx::query_as(
                "SELECT last_cut_batch, last_cut_block FROM prover_chains WHERE chain_id = $1",
            )
            .bind(chain)
            .fetch_optional(&pool)
            .await
        })?;
        row.map(|(b, n)| Ok((uint("last_cut_batch", b)?, uint("last_cut_block", n)?)))
            .transpose()
    }

    fn exported_through(&self) -> Result<u64, ProverError> {
        let (pool, chain) = (self.pool.clone(), self.chain_id);
        let n: Option<i64> = self.run(async move {
            sqlx::query_scalar("SELECT exported_through FROM prover_chains WHERE chain_id = $1")
                .bind(chain)
                .fetch_optional(&pool)
                .await
        })?;
        uint("exported_through", n.unwrap_or(0))
    }

    fn job(&self, batch: u64) -> Result<Option<Job>, ProverError> {
        let (pool, chain, b) = (self.pool.clone(), self.chain_id, int(batch)?);
        let sql = format!(
            "SELECT {COLUMNS}, error_key FROM prover_jobs WHERE chain_id = $1 AND batch_number = $2"
        );
        let row = self.run(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(chain)
                .bind(b)
                .fetch_optional(&pool)
                .await
        })?;
        row.map(|r| self.row_to_job(&r).and_then(|j| self.checked(j)))
            .transpose()
    }

    fn jobs(&self, from: u64, limit: usize) -> Result<Vec<Job>, ProverError> {
        let (pool, chain, b) = (self.pool.clone(), self.chain_id, int(from)?);
        let limit = int(limit as u64)?;
        let sql = format!(
            "SELECT {COLUMNS}, error_key FROM prover_jobs WHERE chain_id = $1 \
             AND batch_number >= $2 ORDER BY batch_number LIMIT $3"
        );
        let rows = self.run(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(chain)
                .bind(b)
                .bind(limit)
                .fetch_all(&pool)
                .await
        })?;
        rows.iter()
            .map(|r| self.row_to_job(r).and_then(|j| self.checked(j)))
            .collect()
    }

    fn proof(&self, batch: u64) -> Result<Option<Vec<u8>>, ProverError> {
        let (pool, chain, b) = (self.pool.clone(), self.chain_id, int(batch)?);
        let proof: Option<Option<Vec<u8>>> = self.run(async move {
            sqlx::query_scalar(
                "SELECT proof FROM prover_jobs WHERE chain_id = $1 AND batch_number = $2",
            )
            .bind(chain)
            .bind(b)
            .fetch_optional(&pool)
            .await
        })?;
        Ok(proof.flatten())
    }
}

impl CutterQueue for PgJobStore {
    fn insert(&self, job: &Job, witness: &[u8]) -> Result<(), ProverError> {
        let n = job.batch_number;
        if let Some(ledger) = &self.ledger {
            // First, so a batch in the queue is always in the ledger; a
            // failed insert is cut again and overwrites it.
            let mut w = WriteBatch::new();
            w.put(Table::ProverJobs, ledger_key(n), job.outputs.to_vec());
            ledger
                .write(w, true)
                .map_err(|e| ProverError::Store(e.to_string()))?;
        }
        let (witness, witness_key) = self.seal(n, "witness", witness)?;
        let (pool, chain) = (self.pool.clone(), self.chain_id);
        let (batch, first, last, created) = (
            int(n)?,
            int(job.first_block)?,
            int(job.last_block)?,
            int(job.created_ms)?,
        );
        let outputs = job.outputs.to_vec();
        let expected = self.run(async move {
            let mut tx = pool.begin().await?;
            let prev: Option<i64> = sqlx::query_scalar(
                "SELECT last_cut_batch FROM prover_chains WHERE chain_id = $1 FOR UPDATE",
            )
            .bind(chain)
            .fetch_optional(&mut *tx)
            .await?;
            let expected = prev.unwrap_or(0) + 1;
            if batch != expected {
                return Ok(expected);
            }
            sqlx::query(
                "INSERT INTO prover_jobs (chain_id, batch_number, first_block, last_block, \
                 outputs, state, created_ms, witness, witness_key) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8)",
            )
            .bind(chain)
            .bind(batch)
            .bind(first)
            .bind(last)
            .bind(outputs)
            .bind(created)
            .bind(witness)
            .bind(witness_key)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO prover_chains (chain_id, last_cut_batch, last_cut_block) \
                 VALUES ($1, $2, $3) ON CONFLICT (chain_id) DO UPDATE \
                 SET last_cut_batch = EXCLUDED.last_cut_batch, \
                     last_cut_block = EXCLUDED.last_cut_block",
            )
            .bind(chain)
            .bind(batch)
            .bind(last)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(batch)
        })?;
        if expected != batch {
            return Err(ProverError::Store(format!(
                "batch {n} cut, but {expected} is next"
            )));
        }
        Ok(())
    }
}

impl WorkerQueue for PgJobStore {
    fn claim(&self, lease: Lease<'_>) -> Result<Option<Claimed>, ProverError> {
        let (pool, chain, w) = (self.pool.clone(), self.chain_id, lease.worker.to_string());
        let (now, until) = (int(lease.now_ms)?, int(lease.until_ms())?);
        let sql = format!(
            "UPDATE prover_jobs SET state = 'proving', worker = $2, lease_until_ms = $4, \
             attempts = attempts + 1 \
             WHERE chain_id = $1 AND batch_number = ( \
                 SELECT batch_number FROM prover_jobs WHERE chain_id = $1 \
                 AND ((state = 'queued' AND not_before_ms <= $3) \
                   OR (state = 'proving' AND lease_until_ms <= $3)) \
                 ORDER BY batch_number LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {COLUMNS}, error_key, witness, witness_key"
        );
        let row = self.run(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(chain)
                .bind(w)
                .bind(now)
                .bind(until)
                .fetch_optional(&pool)
                .await
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let n = uint("batch_number", row.try_get("batch_number").map_err(db_err)?)?;
        let opened = self.row_to_job(&row).and_then(|job| {
            let job = self.checked(job)?;
            let raw: Option<Vec<u8>> = row.try_get("witness").map_err(db_err)?;
            let raw =
                raw.ok_or_else(|| ProverError::Store(format!("witness of batch {n} missing")))?;
            let key = row.try_get("witness_key").map_err(db_err)?;
            Ok((job, self.open(n, "witness", raw, key)?))
        });
        match opened {
            Ok(found) => Ok(Some(found)),
            Err(e) => {
                // Claimed but unusable here (keys not reloaded after a
                // rotation, say): hand it back now rather than hold it for
                // the whole lease.
                let why = e.to_string();
                let retry = Retry::new(&why, lease.now_ms, CLAIM_RETRY_MS);
                let _ = self.requeue(n, Some(lease.worker), retry);
                Err(e)
            }
        }
    }

    fn finish(&self, batch: u64, worker: &str, made: Made<'_>) -> Result<(), ProverError> {
        let (pool, chain, w) = (self.pool.clone(), self.chain_id, worker.to_string());
        let (b, ms) = (int(batch)?, int(made.proving_ms)?);
        let cycles = made.cycles.map(int).transpose()?;
        let proof = made.proof.to_vec();
        let updated = self.run(async move {
            sqlx::query(
                "UPDATE prover_jobs SET state = 'proven', proof = $4, proving_ms = $5, \
                 cycles = $6, last_error = NULL, error_key = NULL \
                 WHERE chain_id = $1 AND batch_number = $2 \
                 AND state = 'proving' AND worker = $3",
            )
            .bind(chain)
            .bind(b)
            .bind(w)
            .bind(proof)
            .bind(ms)
            .bind(cycles)
            .execute(&pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.held(batch, updated)
    }

    fn fail(&self, batch: u64, worker: &str, retry: Retry<'_>) -> Result<(), ProverError> {
        let updated = self.requeue(batch, Some(worker), retry)?;
        self.held(batch, updated)
    }
}

impl ExporterQueue for PgJobStore {
    fn reject(&self, batch: u64, retry: Retry<'_>) -> Result<(), ProverError> {
        match self.requeue(batch, None, retry)? {
            1 => Ok(()),
            _ => Err(ProverError::Store(format!("batch {batch} is not proven"))),
        }
    }

    fn set_exported(&self, batch: u64) -> Result<(), ProverError> {
        let (pool, chain, b) = (self.pool.clone(), self.chain_id, int(batch)?);
        self.run(async move {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE prover_chains SET exported_through = $2 WHERE chain_id = $1")
                .bind(chain)
                .bind(b)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE prover_jobs SET witness = NULL, witness_key = NULL \
                 WHERE chain_id = $1 AND batch_number = $2",
            )
            .bind(chain)
            .bind(b)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
    }
}
