//! The embedded queue: a table of the appliance's key-value store.

use super::{
    Claimed, CutterQueue, ExporterQueue, Job, JobState, Lease, Made, QueueView, Retry, WorkerQueue,
};
use crate::ProverError;
use parking_lot::Mutex;
use std::sync::Arc;
use storage::{KeyRange, KvStore, Table, WriteBatch};

const LAST_CUT: &[u8] = b"m/last_cut";
const EXPORTED: &[u8] = b"m/exported";

fn key(kind: u8, batch: u64) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&batch.to_be_bytes());
    k
}

fn store_err(e: impl std::fmt::Display) -> ProverError {
    ProverError::Store(e.to_string())
}

/// The embedded queue: a table of the appliance's key-value store (sealed
/// like the rest when encryption is on). One process; claims are serialized.
pub struct KvJobStore {
    store: Arc<dyn KvStore>,
    lock: Mutex<()>,
}

impl std::fmt::Debug for KvJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvJobStore").finish_non_exhaustive()
    }
}

impl KvJobStore {
    /// Uses `store`'s prover table.
    pub fn new(store: Arc<dyn KvStore>) -> Self {
        Self {
            store,
            lock: Mutex::new(()),
        }
    }

    fn put_job(&self, job: &Job, extra: Option<(Vec<u8>, &[u8])>) -> Result<(), ProverError> {
        let mut batch = WriteBatch::new();
        batch.put(
            Table::ProverJobs,
            key(b'j', job.batch_number),
            serde_json::to_vec(job).map_err(store_err)?,
        );
        if let Some((k, v)) = extra {
            batch.put(Table::ProverJobs, k, v.to_vec());
        }
        self.store.write(batch, true).map_err(store_err)
    }

    fn held(&self, batch: u64, worker: &str) -> Result<Job, ProverError> {
        let job = self
            .job(batch)?
            .ok_or_else(|| ProverError::Store(format!("no job for batch {batch}")))?;
        match &job.state {
            JobState::Proving { worker: w, .. } if w == worker => Ok(job),
            _ => Err(ProverError::LeaseLost(batch)),
        }
    }
}

impl QueueView for KvJobStore {
    fn last_cut(&self) -> Result<Option<(u64, u64)>, ProverError> {
        let Some(raw) = self
            .store
            .get(Table::ProverJobs, LAST_CUT)
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&raw).map(Some).map_err(store_err)
    }

    fn exported_through(&self) -> Result<u64, ProverError> {
        if let Some(raw) = self
            .store
            .get(Table::ProverJobs, EXPORTED)
            .map_err(store_err)?
        {
            return serde_json::from_slice(&raw).map_err(store_err);
        }
        // A queue from before exports were tracked: its workers wrote each
        // proof out when they made it, so the leading proven batches are
        // exported already (and must not be exported and audited again).
        let _guard = self.lock.lock();
        let mut through = 0;
        'pages: loop {
            let page = self.jobs(through + 1, 256)?;
            if page.is_empty() {
                break;
            }
            for job in page {
                if job.batch_number != through + 1 || !matches!(job.state, JobState::Proven { .. })
                {
                    break 'pages;
                }
                through = job.batch_number;
            }
        }
        let mut w = WriteBatch::new();
        w.put(
            Table::ProverJobs,
            EXPORTED.to_vec(),
            serde_json::to_vec(&through).map_err(store_err)?,
        );
        self.store.write(w, true).map_err(store_err)?;
        Ok(through)
    }

    fn job(&self, batch: u64) -> Result<Option<Job>, ProverError> {
        match self
            .store
            .get(Table::ProverJobs, &key(b'j', batch))
            .map_err(store_err)?
        {
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(store_err),
            None => Ok(None),
        }
    }

    fn jobs(&self, from: u64, limit: usize) -> Result<Vec<Job>, ProverError> {
        let end = [b'j' + 1];
        self.store
            .range(
                Table::ProverJobs,
                KeyRange::new(&key(b'j', from), Some(&end), limit),
            )
            .map_err(store_err)?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(store_err))
            .collect()
    }

    fn proof(&self, batch: u64) -> Result<Option<Vec<u8>>, ProverError> {
        self.store
            .get(Table::ProverJobs, &key(b'p', batch))
            .map_err(store_err)
    }
}

impl CutterQueue for KvJobStore {
    fn insert(&self, job: &Job, witness: &[u8]) -> Result<(), ProverError> {
        let _guard = self.lock.lock();
        let expected = self.last_cut()?.map_or(1, |(n, _)| n + 1);
        if job.batch_number != expected {
            return Err(ProverError::Store(format!(
                "batch {} cut, but {expected} is next",
                job.batch_number
            )));
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Table::ProverJobs,
            key(b'j', job.batch_number),
            serde_json::to_vec(job).map_err(store_err)?,
        );
        batch.put(
            Table::ProverJobs,
            key(b'w', job.batch_number),
            witness.to_vec(),
        );
        batch.put(
            Table::ProverJobs,
            LAST_CUT,
            serde_json::to_vec(&(job.batch_number, job.last_block)).map_err(store_err)?,
        );
        if job.batch_number == 1 {
            // A queue that tracks exports from its start (see
            // `exported_through` for one that did not).
            batch.put(
                Table::ProverJobs,
                EXPORTED,
                serde_json::to_vec(&0u64).map_err(store_err)?,
            );
        }
        self.store.write(batch, true).map_err(store_err)
    }
}

impl WorkerQueue for KvJobStore {
    fn claim(&self, lease: Lease<'_>) -> Result<Option<Claimed>, ProverError> {
        let now_ms = lease.now_ms;
        let _guard = self.lock.lock();
        let mut from = 1;
        loop {
            let page = self.jobs(from, 256)?;
            let Some(last) = page.last() else {
                return Ok(None);
            };
            from = last.batch_number + 1;
            let due = page.into_iter().find(|j| match &j.state {
                JobState::Queued { not_before_ms } => *not_before_ms <= now_ms,
                JobState::Proving { lease_until_ms, .. } => *lease_until_ms <= now_ms,
                JobState::Proven { .. } => false,
            });
            if let Some(mut job) = due {
                let witness = self
                    .store
                    .get(Table::ProverJobs, &key(b'w', job.batch_number))
                    .map_err(store_err)?
                    .ok_or_else(|| {
                        ProverError::Store(format!("witness of batch {} missing", job.batch_number))
                    })?;
                job.attempts += 1;
                job.state = JobState::Proving {
                    worker: lease.worker.to_string(),
                    lease_until_ms: lease.until_ms(),
                };
                self.put_job(&job, None)?;
                return Ok(Some((job, witness)));
            }
        }
    }

    fn finish(&self, batch: u64, worker: &str, made: Made<'_>) -> Result<(), ProverError> {
        let _guard = self.lock.lock();
        let mut job = self.held(batch, worker)?;
        job.state = JobState::Proven {
            proving_ms: made.proving_ms,
            cycles: made.cycles,
            worker: worker.to_string(),
        };
        job.last_error = None;
        self.put_job(&job, Some((key(b'p', batch), made.proof)))
    }

    fn fail(&self, batch: u64, worker: &str, retry: Retry<'_>) -> Result<(), ProverError> {
        let _guard = self.lock.lock();
        let mut job = self.held(batch, worker)?;
        retry.requeue(&mut job);
        self.put_job(&job, None)
    }
}

impl ExporterQueue for KvJobStore {
    fn reject(&self, batch: u64, retry: Retry<'_>) -> Result<(), ProverError> {
        let _guard = self.lock.lock();
        let mut job = self
            .job(batch)?
            .ok_or_else(|| ProverError::Store(format!("no job for batch {batch}")))?;
        if !matches!(job.state, JobState::Proven { .. }) {
            return Err(ProverError::Store(format!("batch {batch} is not proven")));
        }
        retry.requeue(&mut job);
        let mut batch_w = WriteBatch::new();
        batch_w.put(
            Table::ProverJobs,
            key(b'j', batch),
            serde_json::to_vec(&job).map_err(store_err)?,
        );
        batch_w.delete(Table::ProverJobs, key(b'p', batch));
        self.store.write(batch_w, true).map_err(store_err)
    }

    fn set_exported(&self, batch: u64) -> Result<(), ProverError> {
        let _guard = self.lock.lock();
        let mut w = WriteBatch::new();
        w.put(
            Table::ProverJobs,
            EXPORTED.to_vec(),
            serde_json::to_vec(&batch).map_err(store_err)?,
        );
        w.delete(Table::ProverJobs, key(b'w', batch));
        self.store.write(w, true).map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Bytes;

    fn job(n: u64) -> Job {
        Job {
            batch_number: n,
            first_block: n * 10 - 9,
            last_block: n * 10,
            outputs: Bytes::from(vec![n as u8; 4]),
            state: JobState::Queued { not_before_ms: 0 },
            attempts: 0,
            last_error: None,
            created_ms: 1,
        }
    }

    #[test]
    fn jobs_are_claimed_in_order_leased_retried_and_survive_reopening() {
        let raw: Arc<dyn KvStore> = Arc::new(storage::MemoryStore::default());
        let q = KvJobStore::new(raw.clone());
        assert_eq!(q.last_cut().unwrap(), None);
        q.insert(&job(1), b"w1").unwrap();
        q.insert(&job(2), b"w2").unwrap();
        assert!(
            q.insert(&job(2), b"again").is_err(),
            "numbers are contiguous"
        );
        assert_eq!(q.last_cut().unwrap(), Some((2, 20)));

        let (j, w) = q.claim(Lease::new("a", 1_000, 500)).unwrap().unwrap();
        assert_eq!((j.batch_number, w.as_slice()), (1, &b"w1"[..]));
        let (j2, _) = q.claim(Lease::new("b", 1_000, 500)).unwrap().unwrap();
        assert_eq!(j2.batch_number, 2);
        assert!(
            q.claim(Lease::new("c", 1_000, 500)).unwrap().is_none(),
            "both leased"
        );

        // A failure goes back with backoff; an expired lease is taken over.
        q.fail(1, "a", Retry::new("boom", 1_100, 1_000)).unwrap();
        assert!(q.claim(Lease::new("c", 1_200, 500)).unwrap().is_none());
        let (j, _) = q.claim(Lease::new("c", 2_100, 500)).unwrap().unwrap();
        assert_eq!((j.batch_number, j.attempts), (1, 2));
        assert_eq!(j.last_error.as_deref(), Some("boom"));
        let (j, _) = q.claim(Lease::new("d", 5_000, 500)).unwrap().unwrap();
        assert_eq!(j.batch_number, 1, "c's lease ran out");
        assert!(matches!(
            q.finish(1, "c", Made::new(b"p", 1, None)),
            Err(ProverError::LeaseLost(1))
        ));
        q.finish(1, "d", Made::new(b"proof", 900, Some(5))).unwrap();
        assert_eq!(q.proof(1).unwrap().as_deref(), Some(&b"proof"[..]));

        let reopened = KvJobStore::new(raw.clone());
        assert_eq!(
            reopened.job(1).unwrap().unwrap().state,
            JobState::Proven {
                proving_ms: 900,
                cycles: Some(5),
                worker: "d".into(),
            }
        );
        assert_eq!(reopened.jobs(1, 10).unwrap().len(), 2);

        // Export deletes the witness; a refused proof sends the job back.
        assert_eq!(reopened.exported_through().unwrap(), 0);
        reopened
            .reject(1, Retry::new("bad proof", 6_000, 0))
            .unwrap();
        assert_eq!(reopened.proof(1).unwrap(), None);
        let (j, w) = reopened
            .claim(Lease::new("e", 6_000, 500))
            .unwrap()
            .unwrap();
        assert_eq!((j.batch_number, w.as_slice()), (1, &b"w1"[..]));
        reopened
            .finish(1, "e", Made::new(b"proof2", 1, None))
            .unwrap();
        reopened.set_exported(1).unwrap();
        assert_eq!(reopened.exported_through().unwrap(), 1);
        assert_eq!(
            raw.get(Table::ProverJobs, &key(b'w', 1)).unwrap(),
            None,
            "an exported batch's witness is gone"
        );
    }

    #[test]
    fn a_queue_from_before_export_tracking_is_not_exported_again() {
        let raw: Arc<dyn KvStore> = Arc::new(storage::MemoryStore::default());
        let q = KvJobStore::new(raw.clone());
        for n in 1..=3 {
            q.insert(&job(n), b"w").unwrap();
        }
        for n in 1..=2 {
            q.claim(Lease::new("old", 1, 500)).unwrap().unwrap();
            q.finish(n, "old", Made::new(b"p", 1, None)).unwrap();
        }
        // What an older release left: proofs written out by the workers,
        // no export mark.
        let mut w = WriteBatch::new();
        w.delete(Table::ProverJobs, EXPORTED.to_vec());
        raw.write(w, true).unwrap();
        let upgraded = KvJobStore::new(raw);
        assert_eq!(upgraded.exported_through().unwrap(), 2);
        assert_eq!(upgraded.exported_through().unwrap(), 2, "kept");
    }
}
