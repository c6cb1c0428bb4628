use crate::error::TxRejection;
use alloc::vec::Vec;
use alloy_consensus::{Transaction, TxEnvelope, TxType};
use alloy_primitives::Address;
use revm::context::TxEnv;

/// Transaction types this chain executes: legacy, EIP-2930 and EIP-1559.
///
/// Blob (4844) transactions have no meaning without a beacon chain, and
/// set-code (7702) delegation is left out until policies can reason about it.
pub const SUPPORTED_TX_TYPES: [TxType; 3] = [TxType::Legacy, TxType::Eip2930, TxType::Eip1559];

/// Builds revm's transaction environment from a signed transaction and its
/// recovered signer.
pub fn tx_env(tx: &TxEnvelope, caller: Address) -> Result<TxEnv, TxRejection> {
    let ty = tx.tx_type();
    if !SUPPORTED_TX_TYPES.contains(&ty) {
        return Err(TxRejection::UnsupportedType(ty as u8));
    }
    Ok(TxEnv {
        tx_type: ty as u8,
        caller,
        gas_limit: tx.gas_limit(),
        // revm reads `gas_price` as max fee per gas for 1559 transactions.
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: Vec::new(),
        max_fee_per_blob_gas: 0,
        authorization_list: Vec::new(),
    })
}
