//! Deterministic keys, transactions and contexts for tests and benches.
#![allow(missing_docs, unreachable_pub)]

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use state_transition::BlockContext;

pub const TEST_CHAIN_ID: u64 = 7777;

/// The `i`-th deterministic test key.
pub fn test_signer(i: u64) -> PrivateKeySigner {
    let mut key = [0u8; 32];
    key[24..].copy_from_slice(&(i + 1).to_be_bytes());
    key[0] = 0x11;
    PrivateKeySigner::from_bytes(&B256::from(key)).expect("valid key")
}

/// A signed EIP-1559 transfer of `value` wei from key 0 with `nonce`.
pub fn signed_transfer(nonce: u64, value: u64) -> TxEnvelope {
    signed_transfer_from(
        &test_signer(0),
        nonce,
        Address::with_last_byte(0x42),
        value,
        0,
    )
}

pub fn signed_transfer_from(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: u64,
    max_fee: u128,
) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: TEST_CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Eip1559(tx.into_signed(sig))
}

pub fn test_context(number: u64) -> BlockContext {
    BlockContext {
        number,
        timestamp: 1_700_000_000 + number,
        parent_hash: B256::with_last_byte(number as u8),
        beneficiary: Address::ZERO,
        gas_limit: 30_000_000,
        base_fee: 0,
        prevrandao: B256::repeat_byte(0x5a),
    }
}
