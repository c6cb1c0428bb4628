//! The proving queue in Postgres, shared by the node (which cuts batches and
//! exports proofs) and any number of worker processes on proving machines.
//!
//! A claim takes the oldest due job with `FOR UPDATE SKIP LOCKED`, so
//! workers never wait on each other and never get the same job. Witnesses
//! (the batch's private data) and error texts are sealed with the
//! appliance's data keys, bound to chain, batch and column; a witness is
//! deleted once its proof is exported. Outputs and proofs are public (they
//! are what counterparties receive) and stored as they are.

mod ops;
mod sealing;

use super::{Job, JobState, QueueView, Retry};
use crate::ProverError;
use alloy_primitives::Bytes;
use sqlx::{postgres::PgPoolOptions, PgPool, Row};
use std::{future::Future, sync::Arc, time::Duration};
use storage::{KvStore, SharedCipher, Table};

/// The tables, created when missing.
const SCHEMA: &str = include_str!("schema.sql");

/// How long a claimed job that could not be opened waits before the next
/// claim (time for the worker to reload its keys).
const CLAIM_RETRY_MS: u64 = 10_000;

/// Serializes schema creation across processes starting at once.
const SCHEMA_LOCK: i64 = 0x7072_6f76_6572; // "prover"

const COLUMNS: &str = "batch_number, first_block, last_block, outputs, state, worker, \
     not_before_ms, lease_until_ms, proving_ms, cycles, attempts, last_error, created_ms";

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

    /// Puts a job back in the queue as `retry` says: one
    /// `worker` holds (a failed attempt), or proven (a refused proof, which
    /// is dropped). Returns the rows updated.
    fn requeue(
        &self,
        batch: u64,
        worker: Option<&str>,
        retry: Retry<'_>,
    ) -> Result<u64, ProverError> {
        let (err, err_key) = self.seal(batch, "last_error", retry.error.as_bytes())?;
        let (pool, chain, worker) = (self.pool.clone(), self.chain_id, worker.map(String::from));
        let (b, due) = (int(batch)?, int(retry.due_ms())?);
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
