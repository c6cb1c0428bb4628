//! The chain as the derived store keeps it: what derive writes, what the
//! read side answers from, and what `codec` encodes.

use alloy_consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{Address, B256};

/// A transaction as stored with its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTx {
    /// Signed transaction.
    pub envelope: TxEnvelope,
    /// Recovered signer.
    pub sender: Address,
    /// Receipt.
    pub receipt: ReceiptEnvelope,
    /// Gas used by this transaction.
    pub gas_used: u64,
    /// Deployed contract, for creations.
    pub contract_address: Option<Address>,
    /// Price paid per gas.
    pub effective_gas_price: u128,
}

/// A derived block: header, hash and transactions with receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// Header as hashed.
    pub header: Header,
    /// Block hash.
    pub hash: B256,
    /// Transactions in order.
    pub txs: Vec<StoredTx>,
}
