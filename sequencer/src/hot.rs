//! The producer's working state: the full state after the last block in the
//! block log, shared read-mostly with admission checks.

use alloy_primitives::{Address, U256};
use parking_lot::RwLock;
use state_transition::MemoryState;
use std::sync::Arc;

/// The head of the block log as the producer sees it.
pub(crate) type ProducedHead = state_transition::ParentBlock;

pub(crate) struct Hot {
    pub(crate) state: MemoryState,
    pub(crate) head: ProducedHead,
}

pub(crate) type SharedHot = Arc<RwLock<Hot>>;

impl Hot {
    pub(crate) fn nonce_and_balance(&self, address: &Address) -> (u64, U256) {
        self.state
            .accounts
            .get(address)
            .map(|a| (a.nonce, a.balance))
            .unwrap_or_default()
    }
}
