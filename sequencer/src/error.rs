use state_transition::TxRejection;

/// Sequencer failures.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    /// Derived store failure.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Block log failure (I/O or corruption).
    #[error(transparent)]
    Wal(#[from] crate::wal::WalError),
    /// Genesis file invalid.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// Replaying a logged block did not reproduce what production recorded.
    #[error("replay of block {number} diverged: {reason}")]
    ReplayDiverged {
        /// Block number.
        number: u64,
        /// What differed.
        reason: String,
    },
    /// A logged transaction was rejected on replay.
    #[error("replay of block {number} rejected transaction {index}: {rejection}")]
    ReplayRejected {
        /// Block number.
        number: u64,
        /// Transaction index.
        index: usize,
        /// Why.
        rejection: TxRejection,
    },
    /// The data directory belongs to another chain.
    #[error("data directory belongs to chain {found}, config says {expected}")]
    ChainMismatch {
        /// Chain id in config.
        expected: u64,
        /// Chain id in the store.
        found: u64,
    },
    /// I/O outside the block log.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Execution could not read state (fatal for the block being built).
    #[error("execution state unavailable: {0}")]
    Execution(String),
    /// The sequencer has stopped.
    #[error("sequencer is shut down")]
    Stopped,
}

/// Result alias.
pub type Result<T, E = SequencerError> = std::result::Result<T, E>;
