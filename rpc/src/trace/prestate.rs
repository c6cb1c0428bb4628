//! geth's `prestateTracer` (default mode): every account a transaction
//! touched as it was just before the transaction — balance, nonce, code and
//! the storage slots it read or wrote.

use alloy_primitives::{Address, Bytes, B256, KECCAK256_EMPTY, U256};
use serde::Serialize;
use state_transition::revm::{state::EvmState, Database};
use std::collections::BTreeMap;

/// One account before the transaction, as geth writes it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct PreAccount {
    balance: U256,
    #[serde(skip_serializing_if = "is_zero")]
    nonce: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<Bytes>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    storage: BTreeMap<B256, B256>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The accounts in `touched` (the transaction's state, not yet committed)
/// as `db` holds them before it.
pub(crate) fn prestate<DB: Database>(
    db: &mut DB,
    touched: &EvmState,
) -> Result<BTreeMap<Address, PreAccount>, DB::Error> {
    let mut out = BTreeMap::new();
    for (address, account) in touched {
        let before = db.basic(*address)?;
        let code = match &before {
            Some(info) if info.code_hash != KECCAK256_EMPTY && info.code_hash != B256::ZERO => {
                Some(db.code_by_hash(info.code_hash)?.original_bytes())
            }
            _ => None,
        };
        let storage = account
            .storage
            .iter()
            .map(|(slot, value)| (B256::from(*slot), B256::from(value.original_value)))
            .collect();
        out.insert(
            *address,
            PreAccount {
                balance: before.as_ref().map_or(U256::ZERO, |i| i.balance),
                nonce: before.as_ref().map_or(0, |i| i.nonce),
                code,
                storage,
            },
        );
    }
    Ok(out)
}
