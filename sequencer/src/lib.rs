//! The private chain's sequencer.
//!
//! Data flow, one module per step:
//! `mempool` (validated transactions, per-sender nonce queues; `preflight`
//! puts each to the submitter's policy guard on the produced head) →
//! `produce` (executes a block with the `state-transition` program at the
//! configured block time) → `wal` (the ordered, fsync'd block log: the only
//! durable record) → `derive` (state, receipts, indexes and the state root,
//! written asynchronously to the [`storage`] backend and rebuildable by
//! replaying the log).
//!
//! Read side: [`ChainView`] answers RPC queries from a consistent snapshot of
//! the derived store, read through the blocks `sealed` holds between their
//! state root and their store commit. [`Sequencer`] wires the stages together.
//!
//! Feature flags: `test-utils` exposes helpers for benches and tests.

mod chain;
mod codec;
mod config;
mod derive;
mod error;
mod genesis;
mod history;
mod hot;
pub mod mempool;
mod node;
mod preflight;
mod produce;
mod sealed;
mod stored;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_support;
pub mod wal;

pub use chain::ChainView;
pub use config::SequencerConfig;
pub use derive::{ReplayReport, SlotProof, StateProof};
pub use error::{Result, SequencerError};
pub use genesis::Genesis;
pub use history::HistoricalState;
pub use mempool::{MempoolConfig, MempoolError};
pub use node::{rebuild, ChainHead, PendingTx, Sequencer, BLOCK_LOG_FILE};
pub use stored::{StoredBlock, StoredTx};
