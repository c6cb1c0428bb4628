//! The mempool: validated transactions waiting for a block.
//!
//! Input: signed transactions that passed admission checks (see
//! [`Mempool::insert`]). Output: the next executable transactions in arrival
//! order ([`Mempool::best`]), respecting each sender's nonce sequence.
//! Gapped nonces wait until the gap is filled; a same-nonce replacement
//! needs a fee bump of at least [`MempoolConfig::replace_bump_percent`].

pub(crate) mod admission;
mod intrinsic;
mod pool;

pub use pool::{Mempool, PooledTx, TxGuard};

/// Mempool limits.
#[derive(Debug, Clone)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub capacity: usize,
    /// Largest encoded transaction accepted (bytes).
    pub max_tx_bytes: usize,
    /// How far ahead of the account nonce a sender may queue.
    pub max_nonce_gap: u64,
    /// Minimum fee increase for a replacement, in percent.
    pub replace_bump_percent: u128,
}

impl MempoolConfig {
    /// Default capacity: several seconds of the most this node admits, so a
    /// burst queues instead of being refused, while bounding the memory
    /// pooled transactions and their guards hold.
    pub const DEFAULT_CAPACITY: usize = 100_000;
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            max_tx_bytes: 128 * 1024,
            max_nonce_gap: 1_024,
            replace_bump_percent: 10,
        }
    }
}

/// Why a transaction was not admitted. Messages follow geth's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// Bytes are not a valid EIP-2718 transaction.
    #[error("invalid transaction encoding: {0}")]
    Decode(String),
    /// Encoded size over the limit.
    #[error("oversized data: transaction of {size} bytes exceeds limit of {limit}")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Unsupported transaction type.
    #[error("transaction type not supported")]
    UnsupportedType,
    /// Wrong or missing chain id.
    #[error("invalid chain id for signer: expected {expected}, got {got:?}")]
    WrongChainId {
        /// Our chain id.
        expected: u64,
        /// The transaction's.
        got: Option<u64>,
    },
    /// Signature invalid.
    #[error("invalid sender: {0}")]
    InvalidSignature(String),
    /// Nonce already used.
    #[error("nonce too low: next nonce {expected}, tx nonce {got}")]
    NonceTooLow {
        /// Account nonce.
        expected: u64,
        /// Transaction nonce.
        got: u64,
    },
    /// Nonce too far ahead.
    #[error("nonce too high: next nonce {expected}, tx nonce {got}")]
    NonceTooHigh {
        /// Account nonce.
        expected: u64,
        /// Transaction nonce.
        got: u64,
    },
    /// Cannot pay.
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}")]
    InsufficientFunds {
        /// Balance.
        balance: alloy_primitives::U256,
        /// value + gas * max fee.
        cost: alloy_primitives::U256,
    },
    /// Gas limit below intrinsic gas.
    #[error("intrinsic gas too low: have {have}, want {want}")]
    IntrinsicGasTooLow {
        /// Gas limit.
        have: u64,
        /// Needed.
        want: u64,
    },
    /// Gas limit above the block gas limit.
    #[error("exceeds block gas limit")]
    GasLimitTooHigh,
    /// Fee below base fee.
    #[error("transaction underpriced: max fee per gas {max_fee} less than base fee {base_fee}")]
    FeeTooLow {
        /// Offered.
        max_fee: u128,
        /// Current base fee.
        base_fee: u64,
    },
    /// Priority fee above max fee.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Replacement without enough bump.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// Same transaction again.
    #[error("already known")]
    AlreadyKnown,
    /// Pool at capacity.
    #[error("txpool is full")]
    PoolFull,
    /// A call frame was refused by policy.
    #[error("denied by policy rule {rule}: {reason}")]
    Denied {
        /// Stable id of the deciding rule.
        rule: String,
        /// Explanation.
        reason: String,
    },
}
