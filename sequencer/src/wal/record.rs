use alloy_consensus::TxEnvelope;
use alloy_primitives::B256;
use state_transition::BlockContext;

/// One sealed block as the log keeps it: enough to re-execute it exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// Block number.
    pub number: u64,
    /// Execution environment.
    pub context: BlockContext,
    /// Signed transactions in order.
    pub transactions: Vec<TxEnvelope>,
    /// Output hash recorded at production; replay must reproduce it.
    pub output_hash: B256,
    /// Block hash recorded at production.
    pub block_hash: B256,
}
