//! How far proving has got behind the chain, in blocks, for `/health` and
//! the node's log: an operator must see proving fall behind before a
//! counterparty asks why the latest settled batch is hours old.

use super::queue::{JobState, QueueView};
use crate::ProverError;
use serde::Serialize;

/// Jobs read per query while walking the proven run after the last export.
const PAGE: usize = 256;
/// The walk stops after this many jobs: enough to see any real backlog, and
/// a `/health` probe never reads an unbounded queue.
const WALK_LIMIT: usize = 4_096;

/// The prover's progress, by block number (0: none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProvingProgress {
    /// Last block inside a batch that has been cut and queued.
    pub cut_through: u64,
    /// Last block such that it and every block before it are in proven
    /// (or already exported) batches.
    pub proven_through: u64,
    /// Last block of the last batch whose proof was exported.
    pub exported_through: u64,
    /// Last batch exported (0: none).
    pub exported_batch: u64,
    /// Batches cut but not yet exported.
    pub unexported_batches: u64,
    /// Batches waiting for a worker (among the first 4,096 unexported).
    pub queued_batches: u64,
    /// Batches a worker holds now (same bound).
    pub proving_batches: u64,
}

impl ProvingProgress {
    /// Reads the queue: the last cut, the last export, and the run of
    /// proven batches after it (a later batch proven before an earlier one
    /// does not count until the earlier one is).
    pub fn read(jobs: &dyn QueueView) -> Result<Self, ProverError> {
        let (last_batch, cut_through) = jobs.last_cut()?.unwrap_or((0, 0));
        let exported_batch = jobs.exported_through()?;
        let exported_through = match exported_batch {
            0 => 0,
            n => jobs.job(n)?.map_or(0, |j| j.last_block),
        };
        let mut proven_through = exported_through;
        let (mut queued_batches, mut proving_batches) = (0, 0);
        // The proven run counts only while batches follow each other proven.
        let mut run_unbroken = true;
        let mut next = exported_batch + 1;
        'walk: while next <= last_batch && (next - exported_batch) as usize <= WALK_LIMIT {
            let page = jobs.jobs(next, PAGE)?;
            if page.is_empty() {
                break;
            }
            for job in page {
                if job.batch_number > last_batch
                    || (job.batch_number - exported_batch) as usize > WALK_LIMIT
                {
                    break 'walk;
                }
                run_unbroken &= job.batch_number == next;
                match job.state {
                    JobState::Proven { .. } if run_unbroken => proven_through = job.last_block,
                    JobState::Proven { .. } => {}
                    JobState::Queued { .. } => {
                        queued_batches += 1;
                        run_unbroken = false;
                    }
                    JobState::Proving { .. } => {
                        proving_batches += 1;
                        run_unbroken = false;
                    }
                }
                next = job.batch_number + 1;
            }
        }
        Ok(Self {
            cut_through,
            proven_through,
            exported_through,
            exported_batch,
            unexported_batches: last_batch.saturating_sub(exported_batch),
            queued_batches,
            proving_batches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::queue::{
        CutterQueue, ExporterQueue, Job, KvJobStore, Lease, Made, WorkerQueue,
    };
    use std::sync::Arc;

    fn job(n: u64, first: u64, last: u64) -> Job {
        Job {
            batch_number: n,
            first_block: first,
            last_block: last,
            outputs: Default::default(),
            state: JobState::Queued { not_before_ms: 0 },
            attempts: 0,
            last_error: None,
            created_ms: 0,
        }
    }

    #[test]
    fn a_later_batch_proven_first_does_not_advance_the_proven_block() {
        let jobs = KvJobStore::new(Arc::new(storage::MemoryStore::default()));
        assert_eq!(
            ProvingProgress::read(&jobs).unwrap(),
            ProvingProgress::default()
        );
        for (n, first, last) in [(1, 1, 4), (2, 5, 9), (3, 10, 12)] {
            jobs.insert(&job(n, first, last), b"w").unwrap();
        }
        // Batch 2 is proven before batch 1.
        let (claimed, _) = jobs.claim(Lease::new("a", 0, 60_000)).unwrap().unwrap();
        assert_eq!(claimed.batch_number, 1);
        let (claimed, _) = jobs.claim(Lease::new("b", 0, 60_000)).unwrap().unwrap();
        assert_eq!(claimed.batch_number, 2);
        let p = ProvingProgress::read(&jobs).unwrap();
        assert_eq!((p.queued_batches, p.proving_batches), (1, 2));
        jobs.finish(2, "b", Made::new(b"proof", 10, Some(1)))
            .unwrap();
        let p = ProvingProgress::read(&jobs).unwrap();
        assert_eq!((p.cut_through, p.proven_through), (12, 0));
        assert_eq!(p.unexported_batches, 3);
        assert_eq!((p.queued_batches, p.proving_batches), (1, 1));

        jobs.finish(1, "a", Made::new(b"proof", 10, Some(1)))
            .unwrap();
        let p = ProvingProgress::read(&jobs).unwrap();
        assert_eq!((p.proven_through, p.exported_through), (9, 0));

        jobs.set_exported(1).unwrap();
        let p = ProvingProgress::read(&jobs).unwrap();
        assert_eq!(
            p,
            ProvingProgress {
                cut_through: 12,
                proven_through: 9,
                exported_through: 4,
                exported_batch: 1,
                unexported_batches: 2,
                queued_batches: 1,
                proving_batches: 0,
            }
        );
    }
}
