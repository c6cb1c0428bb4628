//! The proving queue in Postgres, shared by the node (which cuts batches and
//! exports proofs) and any number of worker processes on proving machines.
//!
//! A claim takes the oldest due job with `FOR UPDATE SKIP LOCKED`, so
//! workers never wait on each other and never get the same job. Witnesses
//! (the batch's private data) and error texts are sealed with the
//! appliance's data keys, bound to chain, batch and column; a witness is
//! deleted once its proof is exported. Outputs and proofs are public (they
//! are what counterparties receive) and stored as they are.

use super::jobs::{Job, JobState, JobStore};
use crate::ProverError;
use alloy_primitives::Bytes;
use sqlx::{postgres::PgPoolOptions, PgPool, Row};
use std::sync::Arc;
use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};
use storage::{KvStore, SharedCipher, Table, WriteBatch};

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS prover_chains (
    chain_id BIGINT PRIMARY KEY,
    last_cut_batch BIGINT NOT NULL,
    last_cut_block BIGINT NOT NULL,
    exported_through BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS prover_jobs (
    chain_id BIGINT NOT NULL,
    batch_number BIGINT NOT NULL,
    first_block BIGINT NOT NULL,
    last_block BIGINT NOT NULL,
    outputs BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'proving', 'proven')),
    worker TEXT,
    not_before_ms BIGINT NOT NULL DEFAULT 0,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    proving_ms BIGINT,
    cycles BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error BYTEA,
    error_key INTEGER,
    created_ms BIGINT NOT NULL,
    witness BYTEA,
    witness_key INTEGER,
    proof BYTEA,
    PRIMARY KEY (chain_id, batch_number)
);
CREATE INDEX IF NOT EXISTS prover_jobs_open
    ON prover_jobs (chain_id, batch_number) WHERE state <> 'proven';
";

/// How long a claimed job that could not be opened waits before the next
/// claim (time for the worker to reload its keys).
const CLAIM_RETRY_MS: u64 = 10_000;

/// Serializes schema creation across processes starting at once.
const SCHEMA_LOCK: i64 = 0x7072_6f76_6572; // "prover"

const COLUMNS: &str = "batch_number, first_block, last_block, outputs, state, worker, \
     not_before_ms, lease_until_ms, proving_ms, cycles, attempts, last_error, created_ms";

/// A sealed column's stored value and the data-key version it is under.
type Stored = (Option<Vec<u8>>, Option<i32>);

/// Rows moved onto the current data key by [`PgJobStore::reseal`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealCount {
    /// Rows holding sealed values.
    pub examined: u64,
    /// Rows re-sealed.
    pub resealed: u64,
}

/// The Postgres queue of one chain.
pub struct PgJobStore {
    pool: PgPool,
    // sqlx needs a tokio reactor; the queue is called from plain threads
    // (cutter, workers) and from async tasks alike, so it keeps its own.
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    chain_id: i64,
    cipher: Option<SharedCipher>,
    ledger: Option<Arc<dyn KvStore>>,
}

impl std::fmt::Debug for PgJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJobStore")
            .field("chain_id", &self.chain_id)
            .field("sealed", &self.cipher.is_some())
            .finish_non_exhaustive()
    }
}

fn db_err(e: impl std::fmt::Display) -> ProverError {
    ProverError::Store(format!("postgres: {e}"))
}

/// A stored count or number, which must not be negative.
fn uint(name: &str, v: i64) -> Result<u64, ProverError> {
    u64::try_from(v).map_err(|_| ProverError::Store(format!("{name} = {v} in the queue")))
}

fn int(v: u64) -> Result<i64, ProverError> {
    i64::try_from(v).map_err(|_| ProverError::Store(format!("{v} out of range")))
}

impl PgJobStore {
    /// Connects to `url` (creating the tables when missing) for the queue of
    /// chain `chain_id`; with `cipher`, witnesses and errors are sealed.
    pub fn connect(
        url: &str,
        chain_id: u64,
        cipher: Option<SharedCipher>,
    ) -> Result<Self, ProverError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("prover-pg")
            .enable_all()
            .build()
            .map_err(db_err)?;
        let handle = rt.handle().clone();
        let url = url.to_string();
        let pool = match wait_on(&handle, async move {
            PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&url)
                .await
        }) {
            Ok(pool) => pool,
            Err(e) => {
                rt.shutdown_background(); // see Drop
                return Err(e);
            }
        };
        let store = Self {
            pool,
            rt: Some(rt),
            handle,
            chain_id: int(chain_id)?,
            cipher,
            ledger: None,
        };
        let pool = store.pool.clone();
        store.run(async move {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *tx)
                .await?;
            sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
            tx.commit().await
        })?;
        Ok(store)
    }

    /// The node's own record of each batch's outputs, kept where workers
    /// cannot write: a worker holds the data keys and may write to the
    /// queue, so outputs read back from it are trusted only if they are what
    /// this node cut.
    pub fn with_ledger(mut self, ledger: Arc<dyn KvStore>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// `job` as read from the queue, if its outputs are those in the ledger.
    fn checked(&self, job: Job) -> Result<Job, ProverError> {
        let Some(ledger) = &self.ledger else {
            return Ok(job);
        };
        let n = job.batch_number;
        let kept = ledger
            .get(Table::ProverJobs, &ledger_key(n))
            .map_err(|e| ProverError::Store(e.to_string()))?;
        if kept.as_deref() != Some(&job.outputs[..]) {
            return Err(ProverError::Store(format!(
                "the outputs of batch {n} in the queue are not the ones this node cut; \
                 the queue was altered by one of its users"
            )));
        }
        Ok(job)
    }

    /// Runs a query future on the queue's runtime and waits for it; callable
    /// from any thread, async or not.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
    ) -> Result<T, ProverError> {
        wait_on(&self.handle, fut)
    }

    fn context(&self, batch: u64, column: &str) -> Vec<u8> {
        format!("prover_jobs/{}/{batch}/{column}", self.chain_id).into_bytes()
    }

    /// Seals `bytes` for a column; returns the stored value and key version.
    fn seal(
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

    fn open(
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

    fn row_to_job(&self, row: &sqlx::postgres::PgRow) -> Result<Job, ProverError> {
        let get_u64 = |name: &str| -> Result<u64, ProverError> {
            uint(name, row.try_get(name).map_err(db_err)?)
        };
        let batch = get_u64("batch_number")?;
        let state: String = row.try_get("state").map_err(db_err)?;
        let worker: Option<String> = row.try_get("worker").map_err(db_err)?;
        let state = match state.as_str() {
            "queued" => JobState::Queued {
                not_before_ms: get_u64("not_before_ms")?,
            },
            "proving" => JobState::Proving {
                worker: worker.unwrap_or_default(),
                lease_until_ms: get_u64("lease_until_ms")?,
            },
            "proven" => JobState::Proven {
                proving_ms: get_u64("proving_ms")?,
                cycles: row
                    .try_get::<Option<i64>, _>("cycles")
                    .map_err(db_err)?
                    .map(|c| uint("cycles", c))
                    .transpose()?,
                worker: worker.unwrap_or_default(),
            },
            other => return Err(ProverError::Store(format!("batch {batch}: state {other}"))),
        };
        let last_error = match row
            .try_get::<Option<Vec<u8>>, _>("last_error")
            .map_err(db_err)?
        {
            // An error text only informs: one that does not open (sealed by
            // a worker under a key since retired) must not make the job
            // unreadable, or the batch could never be proven or exported.
            Some(raw) => {
                let key = row.try_get("error_key").map_err(db_err)?;
                Some(match self.open(batch, "last_error", raw, key) {
                    Ok(text) => String::from_utf8_lossy(&text).into_owned(),
                    Err(e) => format!("(error text unreadable: {e})"),
                })
            }
            None => None,
        };
        let attempts: i32 = row.try_get("attempts").map_err(db_err)?;
        Ok(Job {
            batch_number: batch,
            first_block: get_u64("first_block")?,
            last_block: get_u64("last_block")?,
            outputs: Bytes::from(row.try_get::<Vec<u8>, _>("outputs").map_err(db_err)?),
            state,
            attempts: attempts.max(0) as u32,
            last_error,
            created_ms: get_u64("created_ms")?,
        })
    }

    /// Fails with `LeaseLost` when `batch` exists but the update matched
    /// nothing (another worker holds it now).
    fn held(&self, batch: u64, updated: u64) -> Result<(), ProverError> {
        if updated == 1 {
            return Ok(());
        }
        match self.job(batch)? {
            Some(_) => Err(ProverError::LeaseLost(batch)),
            None => Err(ProverError::Store(format!("no job for batch {batch}"))),
        }
    }

    /// Puts a job back in the queue with `error`, due after `retry_ms`: one
    /// `worker` holds (a failed attempt), or proven (a refused proof, which
    /// is dropped). Returns the rows updated.
    fn requeue(
        &self,
        batch: u64,
        worker: Option<&str>,
        error: &str,
        now_ms: u64,
        retry_ms: u64,
    ) -> Result<u64, ProverError> {
        let (err, err_key) = self.seal(batch, "last_error", error.as_bytes())?;
        let (pool, chain, worker) = (self.pool.clone(), self.chain_id, worker.map(String::from));
        let (b, due) = (int(batch)?, int(now_ms.saturating_add(retry_ms))?);
        self.run(async move {
            sqlx::query(
                "UPDATE prover_jobs SET state = 'queued', not_before_ms = $3, \
                 last_error = $4, error_key = $5, \
                 proof = CASE WHEN state = 'proven' THEN NULL ELSE proof END \
                 WHERE chain_id = $1 AND batch_number = $2 AND CASE \
                     WHEN $6::TEXT IS NULL THEN state = 'proven' \
                     ELSE state = 'proving' AND worker = $6 END",
            )
            .bind(chain)
            .bind(b)
            .bind(due)
            .bind(err)
            .bind(err_key)
            .bind(worker)
            .execute(&pool)
            .await
            .map(|r| r.rows_affected())
        })
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

    /// Closes the connections.
    pub fn close(&self) {
        let pool = self.pool.clone();
        let _ = self.run(async move {
            pool.close().await;
            Ok(())
        });
    }
}

/// Spawns `fut` on `handle` and blocks this thread until it is done (never
/// `block_on`, which refuses to run inside another runtime).
fn wait_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    fut: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, ProverError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| db_err("query task ended without an answer"))?
        .map_err(db_err)
}

fn ledger_key(batch: u64) -> Vec<u8> {
    let mut k = b"o".to_vec();
    k.extend_from_slice(&batch.to_be_bytes());
    k
}

impl Drop for PgJobStore {
    fn drop(&mut self) {
        // Dropping a runtime inside an async task panics; the last holder of
        // the queue may well be one.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl JobStore for PgJobStore {
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

    fn claim(
        &self,
        worker: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> Result<Option<(Job, Vec<u8>)>, ProverError> {
        let (pool, chain, w) = (self.pool.clone(), self.chain_id, worker.to_string());
        let worker = worker.to_string();
        let (now, until) = (int(now_ms)?, int(now_ms.saturating_add(lease_ms))?);
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
                let _ = self.requeue(
                    n,
                    Some(worker.as_str()),
                    &e.to_string(),
                    now_ms,
                    CLAIM_RETRY_MS,
                );
                Err(e)
            }
        }
    }

    fn finish(
        &self,
        batch: u64,
        worker: &str,
        proof: &[u8],
        proving_ms: u64,
        cycles: Option<u64>,
    ) -> Result<(), ProverError> {
        let (pool, chain, w) = (self.pool.clone(), self.chain_id, worker.to_string());
        let (b, ms, cycles) = (int(batch)?, int(proving_ms)?, cycles.map(int).transpose()?);
        let proof = proof.to_vec();
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

    fn fail(
        &self,
        batch: u64,
        worker: &str,
        error: &str,
        now_ms: u64,
        retry_ms: u64,
    ) -> Result<(), ProverError> {
        let updated = self.requeue(batch, Some(worker), error, now_ms, retry_ms)?;
        self.held(batch, updated)
    }

    fn reject(
        &self,
        batch: u64,
        error: &str,
        now_ms: u64,
        retry_ms: u64,
    ) -> Result<(), ProverError> {
        match self.requeue(batch, None, error, now_ms, retry_ms)? {
            1 => Ok(()),
            _ => Err(ProverError::Store(format!("batch {batch} is not proven"))),
        }
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
