//! The appliance's one state-transition program.
//!
//! Role: execute blocks of signed Ethereum transactions with revm against a
//! [`StateReader`], producing receipts, a [`StateDiff`] and a per-block output
//! hash. The sequencer runs it natively; the prover compiles the same source
//! for RISC-V and runs it inside the zkVM, so this crate is `no_std` + `alloc`
//! and holds only types and pure functions.
//!
//! Inputs: a [`ChainSpec`], a [`BlockContext`], a state reader, transactions.
//! Outputs: [`BlockOutcome`] (receipts, diff, roots, output hash).
//!
//! Feature flags: `std` (default) enables std in revm and alloy; without it the
//! crate builds for `riscv32im` targets.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod batch;
mod block;
mod diff;
mod engine;
mod error;
mod executor;
mod guard;
pub mod mpt;
mod outputs;
mod overlay;
mod reader;
mod root;
mod rooted;
mod transfer;
mod tx_env;
mod witness;

pub use batch::{
    execute_batch, execute_batch_with, AccountDelta, BatchOverlay, OverlayState, TrieState,
};
pub use block::{BlockContext, ChainSpec, FeeMode, ParentBlock, SealedHeader};
pub use diff::{AccountChange, StateDiff};
pub use error::{BatchError, StateError, TxRejection};
pub use executor::{BlockExecutor, BlockOutcome, ExecutedTx};
pub use guard::{
    created_contracts, AccountRead, CallGuard, CreatedContract, Denial, Frame, FrameKind,
    GuardInspector, ReadKind, SharedGuard,
};
pub use outputs::{state_commitment, BatchOutputs, SettledOutputs, OUTPUTS_LEN, SETTLED_LEN};
pub use overlay::BlockState;
pub use reader::{MemoryState, StateReader, BLOCK_HASH_WINDOW};
pub use root::{account_leaf, state_root, storage_root, TrieAccountInput};
pub use rooted::RootedState;
pub use tx_env::{tx_env, SUPPORTED_TX_TYPES};
pub use witness::{AuditHead, BatchWitness, ChainParams, WitnessBlock};

/// Re-exported so callers name the exact revm/alloy versions this program runs.
pub use alloy_consensus;
pub use alloy_primitives;
pub use revm;
