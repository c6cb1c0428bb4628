use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH};
use alloy_eips::eip1559::{calc_next_block_base_fee, BaseFeeParams};
use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256, U256};
use revm::{
    context::{BlockEnv, CfgEnv},
    primitives::hardfork::SpecId,
};

/// How gas is priced on this chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeMode {
    /// EIP-1559 base fee, starting at `initial_base_fee` wei.
    Eip1559 {
        /// Base fee of the first block.
        initial_base_fee: u64,
    },
    /// Base fee fixed at zero: gas is metered but free (typical for private chains).
    Zero,
}

/// The rules every block of the chain follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// EVM hardfork rules (Prague by default).
    pub spec: SpecId,
    /// Fee market.
    pub fee_mode: FeeMode,
    /// Gas limit of every block.
    pub block_gas_limit: u64,
}

impl ChainSpec {
    /// revm configuration for this chain.
    pub fn cfg_env(&self) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        cfg
    }

    /// Base fee of the block after one with the given usage.
    pub fn next_base_fee(&self, parent_gas_used: u64, parent_base_fee: u64) -> u64 {
        match self.fee_mode {
            FeeMode::Zero => 0,
            FeeMode::Eip1559 { .. } => calc_next_block_base_fee(
                parent_gas_used,
                self.block_gas_limit,
                parent_base_fee,
                BaseFeeParams::ethereum(),
            ),
        }
    }

    /// Base fee of block 1 (the first block after genesis).
    pub fn initial_base_fee(&self) -> u64 {
        match self.fee_mode {
            FeeMode::Zero => 0,
            FeeMode::Eip1559 { initial_base_fee } => initial_base_fee,
        }
    }
}

/// Everything about a block that is fixed before its transactions run.
///
/// This is what the block log records next to the transactions, so replay
/// sees exactly the environment production saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// Block number.
    pub number: u64,
    /// Unix seconds.
    pub timestamp: u64,
    /// Hash of the previous block.
    pub parent_hash: B256,
    /// Fee recipient.
    pub beneficiary: Address,
    /// Gas limit.
    pub gas_limit: u64,
    /// Base fee (wei).
    pub base_fee: u64,
    /// PREVRANDAO value.
    pub prevrandao: B256,
}

impl BlockContext {
    /// revm's block environment.
    pub fn block_env(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number),
            beneficiary: self.beneficiary,
            timestamp: U256::from(self.timestamp),
            gas_limit: self.gas_limit,
            basefee: self.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(self.prevrandao),
            ..Default::default()
        }
    }
}

/// What the next block's context depends on from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentBlock {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Unix seconds.
    pub timestamp: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Base fee (wei).
    pub base_fee: u64,
}

impl ParentBlock {
    /// The parent facts of a sealed header.
    pub fn of(header: &Header, hash: B256) -> Self {
        Self {
            number: header.number,
            hash,
            timestamp: header.timestamp,
            gas_used: header.gas_used,
            base_fee: header.base_fee_per_gas.unwrap_or_default(),
        }
    }

    /// Base fee of the block that follows this one.
    pub fn next_base_fee(&self, chain: &ChainSpec) -> u64 {
        if self.number == 0 {
            chain.initial_base_fee()
        } else {
            chain.next_base_fee(self.gas_used, self.base_fee)
        }
    }
}

impl BlockContext {
    /// The context of the block after `parent`: everything but the time and
    /// fee recipient follows from the parent and the chain rules, so the
    /// prover re-derives it instead of trusting it.
    pub fn child_of(
        chain: &ChainSpec,
        parent: &ParentBlock,
        timestamp: u64,
        beneficiary: Address,
    ) -> Self {
        Self {
            number: parent.number + 1,
            timestamp,
            parent_hash: parent.hash,
            beneficiary,
            gas_limit: chain.block_gas_limit,
            base_fee: parent.next_base_fee(chain),
            // No beacon chain: derive it from the parent so it is deterministic.
            prevrandao: keccak256(parent.hash),
        }
    }
}

/// A block header with its hash.
///
/// The state root is committed separately (derived asynchronously, then per
/// batch in the proof), so the hashed header carries a zero state root and the
/// block's output hash in `extra_data`: the hash still binds every
/// transaction, receipt and state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    /// The header as hashed.
    pub header: Header,
    /// keccak256 of the header's RLP.
    pub hash: B256,
}

impl SealedHeader {
    /// Builds and hashes the header of an executed block.
    pub fn seal(
        ctx: &BlockContext,
        transactions_root: B256,
        receipts_root: B256,
        logs_bloom: Bloom,
        gas_used: u64,
        output_hash: B256,
    ) -> Self {
        let header = Header {
            parent_hash: ctx.parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: ctx.beneficiary,
            state_root: B256::ZERO,
            transactions_root,
            receipts_root,
            logs_bloom,
            difficulty: U256::ZERO,
            number: ctx.number,
            gas_limit: ctx.gas_limit,
            gas_used,
            timestamp: ctx.timestamp,
            extra_data: Bytes::copy_from_slice(output_hash.as_slice()),
            mix_hash: ctx.prevrandao,
            nonce: Default::default(),
            base_fee_per_gas: Some(ctx.base_fee),
            withdrawals_root: None,
            blob_gas_used: None,
            excess_blob_gas: None,
            parent_beacon_block_root: None,
            requests_hash: None,
            block_access_list_hash: None,
            slot_number: None,
        };
        let hash = header.hash_slow();
        Self { header, hash }
    }
}
