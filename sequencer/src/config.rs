use crate::mempool::MempoolConfig;
use state_transition::ChainSpec;
use std::ops::RangeInclusive;
use std::time::Duration;

/// How the sequencer runs.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    /// Chain rules.
    pub chain: ChainSpec,
    /// Target interval between blocks (10 ms – 2 s).
    pub block_time: Duration,
    /// Most transactions in one block.
    pub max_block_txs: usize,
    /// Produce blocks even when there is nothing to include.
    pub empty_blocks: bool,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// Make every Nth derived-store commit durable (bounds replay after a crash).
    pub durable_every: u64,
    /// Seals block-log records at rest (None: plaintext log).
    pub log_cipher: Option<storage::SharedCipher>,
    /// Blocks whose state stays readable behind the head, for reads and
    /// proofs at older blocks (`None`: every block's).
    pub history_keep: Option<u64>,
}

impl SequencerConfig {
    /// Block times (milliseconds) a configuration may ask for: below 10 ms
    /// the per-block fsync dominates; above 2 s receipts wait too long.
    pub const BLOCK_TIME_MS: RangeInclusive<u64> = 10..=2000;
    /// Default block time in milliseconds.
    pub const DEFAULT_BLOCK_TIME_MS: u64 = 100;
    /// Durable-commit cadences (blocks) a configuration may ask for: the
    /// upper bound caps how many blocks a restart replays from the block log.
    pub const DURABLE_EVERY: RangeInclusive<u64> = 1..=4096;
    /// Default cadence: measured faster than every 8 blocks, because each
    /// durable flush rewrites the pages the commits before it dirtied.
    pub const DEFAULT_DURABLE_EVERY: u64 = 64;
    /// Default cap on a block's transactions: with 100 ms blocks it is far
    /// above what this hardware seals per block, so it bounds a block's
    /// production time without limiting throughput.
    pub const DEFAULT_MAX_BLOCK_TXS: usize = 5_000;

    /// Defaults for a chain: 100 ms blocks, no empty blocks.
    pub fn new(chain: ChainSpec) -> Self {
        Self {
            chain,
            block_time: Duration::from_millis(Self::DEFAULT_BLOCK_TIME_MS),
            max_block_txs: Self::DEFAULT_MAX_BLOCK_TXS,
            empty_blocks: false,
            mempool: MempoolConfig::default(),
            durable_every: Self::DEFAULT_DURABLE_EVERY,
            log_cipher: None,
            history_keep: None,
        }
    }
}
