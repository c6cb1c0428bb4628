//! Intrinsic gas, checked at admission so clients hear "intrinsic gas too
//! low" immediately instead of their transaction silently never executing.

use alloy_consensus::{Transaction, TxEnvelope};

const TX_BASE: u64 = 21_000;
const TX_CREATE: u64 = 32_000;
const ZERO_BYTE: u64 = 4;
const NONZERO_BYTE: u64 = 16;
const ACCESS_LIST_ADDRESS: u64 = 2_400;
const ACCESS_LIST_SLOT: u64 = 1_900;
const INITCODE_WORD: u64 = 2;
/// EIP-7623 (Prague) calldata floor.
const FLOOR_PER_TOKEN: u64 = 10;

/// The minimum gas limit this transaction needs under Prague rules.
pub(crate) fn intrinsic_gas(tx: &TxEnvelope) -> u64 {
    let input = tx.input();
    let zeros = input.iter().filter(|b| **b == 0).count() as u64;
    let nonzeros = input.len() as u64 - zeros;
    let mut gas = TX_BASE + zeros * ZERO_BYTE + nonzeros * NONZERO_BYTE;
    if tx.kind().is_create() {
        gas += TX_CREATE + INITCODE_WORD * (input.len() as u64).div_ceil(32);
    }
    if let Some(list) = tx.access_list() {
        for item in list.iter() {
            gas += ACCESS_LIST_ADDRESS + ACCESS_LIST_SLOT * item.storage_keys.len() as u64;
        }
    }
    let tokens = zeros + nonzeros * 4;
    gas.max(TX_BASE + tokens * FLOOR_PER_TOKEN)
}
