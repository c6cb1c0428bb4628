use crate::mempool::MempoolConfig;
use state_transition::ChainSpec;
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
    /// Allowed block time range.
    pub const BLOCK_TIME_RANGE: (Duration, Duration) =
        (Duration::from_millis(10), Duration::from_secs(2));

    /// Defaults for a chain: 100 ms blocks, no empty blocks.
    pub fn new(chain: ChainSpec) -> Self {
        Self {
            chain,
            block_time: Duration::from_millis(100),
            max_block_txs: 5_000,
            empty_blocks: false,
            mempool: MempoolConfig::default(),
            durable_every: 64,
            log_cipher: None,
            history_keep: None,
        }
    }
}
