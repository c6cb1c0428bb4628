//! The producer's working state: the full state after the last block in the
//! block log, shared read-mostly with admission checks.

use alloy_primitives::{Address, B256, U256};
use parking_lot::RwLock;
use state_transition::{ChainSpec, MemoryState};
use std::sync::Arc;

/// The head of the block log as the producer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducedHead {
    pub(crate) number: u64,
    pub(crate) hash: B256,
    pub(crate) timestamp: u64,
    pub(crate) gas_used: u64,
    pub(crate) base_fee: u64,
}

pub(crate) struct Hot {
    pub(crate) state: MemoryState,
    pub(crate) head: ProducedHead,
}

pub(crate) type SharedHot = Arc<RwLock<Hot>>;

impl ProducedHead {
    /// Base fee of the block that follows this one.
    pub(crate) fn next_base_fee(&self, chain: &ChainSpec) -> u64 {
        if self.number == 0 {
            chain.initial_base_fee()
        } else {
            chain.next_base_fee(self.gas_used, self.base_fee)
        }
    }
}

impl Hot {
    pub(crate) fn nonce_and_balance(&self, address: &Address) -> (u64, U256) {
        self.state
            .accounts
            .get(address)
            .map(|a| (a.nonce, a.balance))
            .unwrap_or_default()
    }
}
