//! Proves every batch of the private chain.
//!
//! Data flow: derived blocks → [`ProverState::witness_batch`] (the batch's
//! witness: Merkle-Patricia proofs for what it touched) → a [`ZkBackend`]
//! runs the state-transition batch program on it (natively, or as a RISC-V
//! guest inside the zkVM) → a proof of the batch's [`BatchOutputs`], written
//! as the files the [`proof`] crate reads and verifies.
//!
//! [`BatchOutputs`]: state_transition::BatchOutputs

mod backend;
mod cycles;
mod error;
#[cfg(feature = "openvm")]
mod openvm;
mod service;
mod witness;

pub use backend::{Execution, NativeBackend, ZkBackend};
pub use cycles::{BatchShape, CycleModel};
pub use error::ProverError;
#[cfg(feature = "openvm")]
pub use openvm::{
    profile_guest, FunctionCycles, GuestProfile, OpenVmBackend, OpenVmConfig,
    BACKEND as OPENVM_BACKEND,
};
pub use service::{
    AuditSource, BatchPolicy, ChainSource, CheckpointStore, Claimed, Cutter, CutterQueue,
    ExportedProof, Exporter, ExporterQueue, Job, JobState, JobStore, KvJobStore, Lease, Made,
    PgJobStore, ProofObserver, ProverService, ProvingProgress, QueueView, ResealCount, Retry,
    Worker, WorkerQueue, DEFAULT_MAX_CYCLES,
};
pub use witness::{ChainBlock, PreparedBatch, ProverState};
