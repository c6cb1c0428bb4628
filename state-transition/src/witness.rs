//! What the batch program reads: everything needed to re-execute a batch and
//! nothing it has to trust.
//!
//! The witness is RLP so the RISC-V guest decodes it with the same `no_std`
//! code the host encodes it with. Every value in it is checked by the program
//! (trie nodes by hash from the previous root, code by its hash, headers by
//! the hash chain, signatures by recovery); a witness that lies makes the
//! program fail, it cannot change the outputs.

use crate::{BatchError, ChainSpec, FeeMode};
use alloc::vec::Vec;
use alloy_consensus::{Header, TxEnvelope};
use alloy_primitives::{keccak256, Address, Bytes, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use revm::primitives::hardfork::SpecId;

/// The chain rules as the witness carries them (and the outputs commit to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct ChainParams {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// revm hardfork id.
    pub spec: u8,
    /// 0: zero base fee; 1: EIP-1559.
    pub fee_mode: u8,
    /// First base fee under EIP-1559 (0 otherwise).
    pub initial_base_fee: u64,
    /// Gas limit of every block.
    pub block_gas_limit: u64,
}

impl ChainParams {
    /// The parameters of `spec`.
    pub fn of(spec: &ChainSpec) -> Self {
        let (fee_mode, initial_base_fee) = match spec.fee_mode {
            FeeMode::Zero => (0, 0),
            FeeMode::Eip1559 { initial_base_fee } => (1, initial_base_fee),
        };
        Self {
            chain_id: spec.chain_id,
            spec: spec.spec as u8,
            fee_mode,
            initial_base_fee,
            block_gas_limit: spec.block_gas_limit,
        }
    }

    /// The chain spec these parameters describe.
    pub fn spec(&self) -> Result<ChainSpec, BatchError> {
        let spec = SpecId::try_from_u8(self.spec).ok_or(BatchError::BadChainParams)?;
        let fee_mode = match self.fee_mode {
            0 => FeeMode::Zero,
            1 => FeeMode::Eip1559 {
                initial_base_fee: self.initial_base_fee,
            },
            _ => return Err(BatchError::BadChainParams),
        };
        Ok(ChainSpec {
            chain_id: self.chain_id,
            spec,
            fee_mode,
            block_gas_limit: self.block_gas_limit,
        })
    }

    /// Commitment to the rules, published so verifiers can pin them.
    pub fn hash(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }
}

/// One block of the batch: what the sequencer chose; everything else about
/// the block follows from its parent and the chain rules.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct WitnessBlock {
    /// Unix seconds (not before the parent's).
    pub timestamp: u64,
    /// Fee recipient.
    pub beneficiary: Address,
    /// Signed transactions in block order.
    pub transactions: Vec<TxEnvelope>,
}

/// The audit log's signed tree head the batch is bound to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct AuditHead {
    /// Number of events in the audit log.
    pub size: u64,
    /// RFC 6962 root over them.
    pub root: B256,
}

/// Input of the batch program.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BatchWitness {
    /// Chain rules.
    pub chain: ChainParams,
    /// Sequence number of the batch (the first batch is 1).
    pub batch_number: u64,
    /// State root before the batch.
    pub prev_state_root: B256,
    /// Headers before the batch, oldest first; the last is the parent of the
    /// batch's first block. Older ones are present only as far back as
    /// BLOCKHASH reaches.
    pub ancestors: Vec<Header>,
    /// The batch's blocks in order.
    pub blocks: Vec<WitnessBlock>,
    /// Merkle-Patricia nodes (state and storage tries) on every touched path.
    pub nodes: Vec<Bytes>,
    /// Code of every contract the batch runs.
    pub codes: Vec<Bytes>,
    /// Audit tree head committed with the batch.
    pub audit: AuditHead,
}

impl BatchWitness {
    /// Serialized form (the guest's input).
    pub fn encode(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Parses a serialized witness; trailing bytes are an error.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, BatchError> {
        let witness = <Self as alloy_rlp::Decodable>::decode(&mut bytes)
            .map_err(|_| BatchError::BadWitnessEncoding)?;
        if !bytes.is_empty() {
            return Err(BatchError::BadWitnessEncoding);
        }
        Ok(witness)
    }
}
