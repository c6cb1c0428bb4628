//! What can go wrong between the appliance and the settlement chain.

use alloy_primitives::B256;

/// Errors of the settlement bridge and of counterparty verification.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The settlement node could not be reached or answered badly.
    #[error("settlement node: {0}")]
    Rpc(String),
    /// The settlement contract refused the call; the reason is decoded from
    /// the contract's custom error when it has one.
    #[error("settlement contract refused: {0}")]
    Reverted(String),
    /// A transaction was sent but not mined in time.
    #[error("transaction {hash} not mined after {secs} s")]
    NotMined {
        /// The transaction.
        hash: B256,
        /// How long the bridge waited.
        secs: u64,
    },
    /// The chain is not registered with the settlement contract.
    #[error("chain {0} is not registered with the settlement contract")]
    UnknownChain(u64),
    /// A proven batch does not follow on from what is settled.
    #[error("batch {batch}: {reason}")]
    Diverged {
        /// The batch that does not fit.
        batch: u64,
        /// Why.
        reason: String,
    },
    /// A batch's files are missing, unreadable or inconsistent.
    #[error("proven batch {batch}: {reason}")]
    BadBatch {
        /// The batch.
        batch: u64,
        /// Why.
        reason: String,
    },
    /// The signer key could not be loaded, created or used.
    #[error("settlement signer: {0}")]
    Signer(String),
    /// Counterparty verification failed.
    #[error("verification failed: {0}")]
    Verification(String),
    /// The proof does not check.
    #[error(transparent)]
    Proof(#[from] proof::ProofError),
}

impl BridgeError {
    /// Whether the same step may succeed later without anyone acting: the
    /// settlement node was unreachable or slow to mine. Every other error
    /// (a revert, an unregistered chain, a batch that does not follow on,
    /// a bad proof or signer) repeats until an operator fixes its cause;
    /// the bridge still retries, in case they have, but says so louder.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Rpc(_) | Self::NotMined { .. })
    }

    pub(crate) fn rpc(e: impl std::fmt::Display) -> Self {
        Self::Rpc(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_or_slow_node_is_worth_retrying_unattended() {
        assert!(BridgeError::rpc("connection refused").is_retryable());
        let slow = BridgeError::NotMined {
            hash: B256::ZERO,
            secs: 60,
        };
        assert!(slow.is_retryable());
        for needs_operator in [
            BridgeError::Reverted("BatchOutOfOrder".into()),
            BridgeError::UnknownChain(7),
            BridgeError::Diverged {
                batch: 3,
                reason: "state root differs".into(),
            },
            BridgeError::Signer("no key".into()),
        ] {
            assert!(!needs_operator.is_retryable(), "{needs_operator}");
        }
    }
}
