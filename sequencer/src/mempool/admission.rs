//! Admission: what a transaction passes before it enters the pool — the
//! size bound and its decoding, its signer, then the chain's stateless
//! rules (type, chain id, intrinsic gas, gas and fee bounds). The policy
//! pre-check against the produced head is `crate::preflight`.

use super::{intrinsic::intrinsic_gas, MempoolConfig, MempoolError};
use alloy_consensus::{transaction::SignerRecoverable, Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::Address;
use state_transition::{ChainSpec, SUPPORTED_TX_TYPES};

/// Decodes a raw signed transaction, enforcing the size limit.
pub(crate) fn decode(raw: &[u8], limits: &MempoolConfig) -> Result<TxEnvelope, MempoolError> {
    if raw.len() > limits.max_tx_bytes {
        return Err(MempoolError::TooLarge {
            size: raw.len(),
            limit: limits.max_tx_bytes,
        });
    }
    let mut buf = raw;
    let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| MempoolError::Decode(e.to_string()))?;
    if !buf.is_empty() {
        return Err(MempoolError::Decode(
            "trailing bytes after transaction".into(),
        ));
    }
    Ok(tx)
}

/// The transaction's signer.
pub(crate) fn recover(tx: &TxEnvelope) -> Result<Address, MempoolError> {
    tx.recover_signer()
        .map_err(|e| MempoolError::InvalidSignature(e.to_string()))
}

/// Stateless checks against the chain rules; `base_fee` gives the next
/// block's, read only for a transaction that passed the rest.
pub(crate) fn validate(
    tx: &TxEnvelope,
    chain: &ChainSpec,
    base_fee: impl FnOnce() -> u64,
) -> Result<(), MempoolError> {
    if !SUPPORTED_TX_TYPES.contains(&tx.tx_type()) {
        return Err(MempoolError::UnsupportedType);
    }
    if tx.chain_id() != Some(chain.chain_id) {
        return Err(MempoolError::WrongChainId {
            expected: chain.chain_id,
            got: tx.chain_id(),
        });
    }
    let want = intrinsic_gas(tx);
    if tx.gas_limit() < want {
        return Err(MempoolError::IntrinsicGasTooLow {
            have: tx.gas_limit(),
            want,
        });
    }
    if tx.gas_limit() > chain.block_gas_limit {
        return Err(MempoolError::GasLimitTooHigh);
    }
    if let Some(tip) = tx.max_priority_fee_per_gas() {
        if tip > tx.max_fee_per_gas() {
            return Err(MempoolError::TipAboveFeeCap);
        }
    }
    let base_fee = base_fee();
    if tx.max_fee_per_gas() < base_fee as u128 {
        return Err(MempoolError::FeeTooLow {
            max_fee: tx.max_fee_per_gas(),
            base_fee,
        });
    }
    Ok(())
}
