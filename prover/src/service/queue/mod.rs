//! The durable proving queue: one job per batch, its witness and, once
//! proven, its proof.
//!
//! Jobs are written when a batch is cut and survive restarts; a worker
//! claims a job under a lease, so a worker that dies (or hangs past the
//! lease) loses it to the next claim. Failures are retried with backoff.
//!
//! Each stage of the service sees the queue only through its role:
//! [`CutterQueue`] (the cutter appends batches), [`WorkerQueue`] (workers
//! claim, finish and fail jobs), [`ExporterQueue`] (the exporter marks
//! proofs exported or sends refused ones back), all over [`QueueView`]
//! (reads for status and progress). [`JobStore`] is all of them, what a
//! backend implements: [`KvJobStore`] (embedded) and [`PgJobStore`]
//! (shared by worker processes on other machines).

mod kv;
mod pg;

pub use kv::KvJobStore;
pub use pg::{PgJobStore, ResealCount};

use crate::ProverError;
use alloy_primitives::Bytes;
use serde::{Deserialize, Serialize};

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (not before `not_before_ms` after a failure).
    Queued {
        /// Earliest retry time (unix ms).
        not_before_ms: u64,
    },
    /// A worker holds it until the lease ends.
    Proving {
        /// Who.
        worker: String,
        /// Lease end (unix ms).
        lease_until_ms: u64,
    },
    /// Done; the proof is stored.
    Proven {
        /// Wall time of the proof.
        proving_ms: u64,
        /// RISC-V instructions.
        cycles: Option<u64>,
        /// The worker that proved it.
        #[serde(default)]
        worker: String,
    },
}

/// One batch to prove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Batch number.
    pub batch_number: u64,
    /// First block.
    pub first_block: u64,
    /// Last block.
    pub last_block: u64,
    /// ABI-encoded public outputs (as the native run computed them).
    pub outputs: Bytes,
    /// State.
    #[serde(flatten)]
    pub state: JobState,
    /// Proving attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the batch was cut (unix ms).
    pub created_ms: u64,
}

/// A claim's terms: who takes the job, when, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    /// The worker claiming.
    pub worker: &'a str,
    /// Now (unix ms).
    pub now_ms: u64,
    /// How long the claim holds without a finish or a failure.
    pub lease_ms: u64,
}

/// A proof made under a lease.
#[derive(Debug, Clone, Copy)]
pub struct Made<'a> {
    /// The proof envelope.
    pub proof: &'a [u8],
    /// Wall time of the proof.
    pub proving_ms: u64,
    /// RISC-V instructions, where the backend counts them.
    pub cycles: Option<u64>,
}

/// Why an attempt failed (or its proof was refused), and when the batch is
/// due again.
#[derive(Debug, Clone, Copy)]
pub struct Retry<'a> {
    /// What went wrong, kept as the job's `last_error`.
    pub error: &'a str,
    /// Now (unix ms).
    pub now_ms: u64,
    /// Wait before the next claim.
    pub retry_ms: u64,
}

impl<'a> Lease<'a> {
    /// `worker` claims at `now_ms` for `lease_ms`.
    pub fn new(worker: &'a str, now_ms: u64, lease_ms: u64) -> Self {
        Self {
            worker,
            now_ms,
            lease_ms,
        }
    }

    /// When the claim runs out (unix ms).
    pub fn until_ms(&self) -> u64 {
        self.now_ms.saturating_add(self.lease_ms)
    }
}

impl<'a> Made<'a> {
    /// `proof`, made in `proving_ms` over `cycles`.
    pub fn new(proof: &'a [u8], proving_ms: u64, cycles: Option<u64>) -> Self {
        Self {
            proof,
            proving_ms,
            cycles,
        }
    }
}

impl<'a> Retry<'a> {
    /// Failed with `error` at `now_ms`; due again `retry_ms` later.
    pub fn new(error: &'a str, now_ms: u64, retry_ms: u64) -> Self {
        Self {
            error,
            now_ms,
            retry_ms,
        }
    }

    /// When the batch may be claimed again (unix ms).
    pub fn due_ms(&self) -> u64 {
        self.now_ms.saturating_add(self.retry_ms)
    }

    /// Sends `job` back to the queue with this failure.
    fn requeue(&self, job: &mut Job) {
        job.state = JobState::Queued {
            not_before_ms: self.due_ms(),
        };
        job.last_error = Some(self.error.to_string());
    }
}

/// A claimed job with its witness.
pub type Claimed = (Job, Vec<u8>);

/// What every role may read.
pub trait QueueView: Send + Sync {
    /// The last batch cut: (batch number, last block).
    fn last_cut(&self) -> Result<Option<(u64, u64)>, ProverError>;
    /// The last batch whose proof was exported (0: none yet).
    fn exported_through(&self) -> Result<u64, ProverError>;
    /// One job.
    fn job(&self, batch: u64) -> Result<Option<Job>, ProverError>;
    /// Up to `limit` jobs from batch `from` on.
    fn jobs(&self, from: u64, limit: usize) -> Result<Vec<Job>, ProverError>;
    /// A stored proof.
    fn proof(&self, batch: u64) -> Result<Option<Vec<u8>>, ProverError>;
}

/// The cutter's side: appending batches.
pub trait CutterQueue: QueueView {
    /// Stores a newly cut batch (must be the next number).
    fn insert(&self, job: &Job, witness: &[u8]) -> Result<(), ProverError>;
}

/// A worker's side: claiming a job and settling it.
pub trait WorkerQueue: Send + Sync {
    /// Takes the oldest job that is due, with its witness.
    fn claim(&self, lease: Lease<'_>) -> Result<Option<Claimed>, ProverError>;
    /// Records a proof (only the lease holder may).
    fn finish(&self, batch: u64, worker: &str, made: Made<'_>) -> Result<(), ProverError>;
    /// Puts a job back after a failure (only the lease holder may).
    fn fail(&self, batch: u64, worker: &str, retry: Retry<'_>) -> Result<(), ProverError>;
}

/// The exporter's side: settling proven jobs in batch order.
pub trait ExporterQueue: QueueView {
    /// Puts a proven job back in the queue, dropping its proof (the
    /// exporter refused it).
    fn reject(&self, batch: u64, retry: Retry<'_>) -> Result<(), ProverError>;
    /// Records that `batch` (the next one) was exported; its witness, the
    /// batch's private data, is no longer needed and is deleted.
    fn set_exported(&self, batch: u64) -> Result<(), ProverError>;
}

/// The whole queue: what a backend implements.
pub trait JobStore: CutterQueue + WorkerQueue + ExporterQueue {}

impl<T: CutterQueue + WorkerQueue + ExporterQueue> JobStore for T {}
