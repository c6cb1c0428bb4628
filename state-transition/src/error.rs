use crate::mpt::TrieError;
use alloc::string::String;
use core::fmt;

/// A failure of the state backend underneath execution.
///
/// Fatal for the block being built: a missing witness entry or an I/O error
/// means the result would not be trustworthy, so execution stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The backend (disk store, witness) could not answer.
    Backend(String),
    /// A value the execution needed is absent from the witness.
    MissingWitness(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend(msg) => write!(f, "state backend error: {msg}"),
            Self::MissingWitness(what) => write!(f, "missing from witness: {what}"),
        }
    }
}

impl core::error::Error for StateError {}
impl revm::database_interface::DBErrorMarker for StateError {}

/// Why a transaction could not be included in a block.
///
/// The wording follows what Ethereum clients recognise (geth's messages), so
/// ethers/viem/web3.py surface a familiar error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxRejection {
    /// Nonce below the account's current nonce.
    NonceTooLow {
        /// Account nonce.
        expected: u64,
        /// Transaction nonce.
        got: u64,
    },
    /// Nonce above the account's current nonce (not executable yet).
    NonceTooHigh {
        /// Account nonce.
        expected: u64,
        /// Transaction nonce.
        got: u64,
    },
    /// Balance does not cover value + gas * fee.
    InsufficientFunds,
    /// Gas limit below the intrinsic cost.
    IntrinsicGasTooLow,
    /// Max fee below the block's base fee.
    FeeTooLow,
    /// Signed for another chain.
    WrongChainId,
    /// Transaction type not accepted by this chain.
    UnsupportedType(u8),
    /// Gas limit exceeds what is left in the block.
    BlockGasExhausted,
    /// Signature could not be recovered.
    InvalidSignature,
    /// Any other validation failure reported by revm.
    Invalid(String),
    /// The state backend failed (fatal for the block).
    State(StateError),
    /// A call frame was refused by the host's [`CallGuard`](crate::CallGuard).
    Denied(crate::Denial),
}

impl TxRejection {
    /// True when the failure is not the transaction's fault and the block must stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::State(_))
    }
}

impl fmt::Display for TxRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonceTooLow { expected, got } => {
                write!(f, "nonce too low: next nonce {expected}, tx nonce {got}")
            }
            Self::NonceTooHigh { expected, got } => {
                write!(f, "nonce too high: next nonce {expected}, tx nonce {got}")
            }
            Self::InsufficientFunds => f.write_str("insufficient funds for gas * price + value"),
            Self::IntrinsicGasTooLow => f.write_str("intrinsic gas too low"),
            Self::FeeTooLow => f.write_str("max fee per gas less than block base fee"),
            Self::WrongChainId => f.write_str("invalid chain id for signer"),
            Self::UnsupportedType(t) => write!(f, "transaction type {t} not supported"),
            Self::BlockGasExhausted => f.write_str("gas limit reached"),
            Self::InvalidSignature => f.write_str("invalid transaction signature"),
            Self::Invalid(msg) => write!(f, "invalid transaction: {msg}"),
            Self::State(e) => write!(f, "{e}"),
            Self::Denied(d) => write!(f, "denied by policy rule {}: {}", d.rule, d.reason),
        }
    }
}

impl core::error::Error for TxRejection {}

/// Why a batch could not be proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The witness bytes are not a valid encoding.
    BadWitnessEncoding,
    /// Unknown hardfork or fee mode.
    BadChainParams,
    /// A batch has at least one block.
    EmptyBatch,
    /// No parent header, or ancestors that do not chain by hash.
    BrokenAncestry,
    /// A block's time is before its parent's.
    TimeWentBack(u64),
    /// A transaction's signature does not recover.
    InvalidSignature {
        /// Block number.
        block: u64,
        /// Index in the block.
        index: usize,
    },
    /// A transaction was not valid where the block log put it.
    Rejected {
        /// Block number.
        block: u64,
        /// Index in the block.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The witness lacks or misstates a trie node, account or code.
    Witness(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadWitnessEncoding => f.write_str("witness is not valid RLP"),
            Self::BadChainParams => f.write_str("unknown hardfork or fee mode"),
            Self::EmptyBatch => f.write_str("a batch needs at least one block"),
            Self::BrokenAncestry => f.write_str("ancestor headers do not chain"),
            Self::TimeWentBack(n) => write!(f, "block {n} is older than its parent"),
            Self::InvalidSignature { block, index } => {
                write!(f, "transaction {index} of block {block}: bad signature")
            }
            Self::Rejected {
                block,
                index,
                reason,
            } => write!(f, "transaction {index} of block {block} rejected: {reason}"),
            Self::Witness(what) => write!(f, "witness: {what}"),
        }
    }
}

impl core::error::Error for BatchError {}

impl From<TrieError> for BatchError {
    fn from(e: TrieError) -> Self {
        Self::Witness(alloc::format!("{e:?}"))
    }
}
