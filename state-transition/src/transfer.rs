//! Plain ether transfers applied without an EVM.
//!
//! Most of a payment chain's transactions move ether from a wallet to a
//! wallet: no call data, no access list, no code at either end. revm runs
//! such a transaction through its whole handler — a context, a journal with
//! its warm sets, a call frame that finds no code, a finalized state map —
//! to change three balances and a nonce. In the zkVM that machinery cost
//! more cycles than loading the three accounts and hashing the transaction,
//! so the batch program and the block producer apply these transfers here.
//!
//! The shortcut applies only when every rule revm would check plainly
//! passes; anything else (a wrong nonce, too little balance, a fee below
//! the base fee, a contract or precompile at either end, an account playing
//! two parts) returns `None` and goes to revm, which also words the
//! rejection. The three accounts are committed as touched accounts
//! (`BlockState::commit_touched`, the same rules as revm's commit,
//! EIP-161 removal of empty accounts included). `tests/transfer_shortcut.rs` runs every case both ways and
//! compares receipts, diffs and headers.

use crate::{
    error::{StateError, TxRejection},
    guard::{Frame, FrameKind, SharedGuard},
    overlay::BlockState,
    reader::StateReader,
};
use alloy_consensus::{Transaction, TxEnvelope, TxType};
use alloy_primitives::{Address, TxKind, U256};
use revm::{
    context::{Cfg, CfgEnv},
    database_interface::Database,
    primitives::hardfork::SpecId,
    state::AccountInfo,
};

/// Gas a call with no data and no access list uses when its target has no
/// code: the intrinsic cost, which is also EIP-7623's floor for empty data.
pub(crate) const TRANSFER_GAS: u64 = 21_000;

/// The block's rules a transfer is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransferRules {
    chain_id: u64,
    base_fee: u64,
    beneficiary: Address,
    /// EIP-7825's cap (Osaka) or `u64::MAX`.
    tx_gas_cap: u64,
    block_gas_limit: u64,
}

impl TransferRules {
    /// The rules of a block under `cfg`, or `None` where the shortcut's
    /// constants do not hold: before London (no base fee burn) and from
    /// Amsterdam on (EIP-2780 reprices the transfer itself).
    pub(crate) fn new(
        cfg: &CfgEnv,
        base_fee: u64,
        beneficiary: Address,
        gas_limit: u64,
    ) -> Option<Self> {
        let spec = cfg.spec;
        if !spec.is_enabled_in(SpecId::LONDON) || spec.is_enabled_in(SpecId::AMSTERDAM) {
            return None;
        }
        Some(Self {
            chain_id: cfg.chain_id,
            base_fee,
            beneficiary,
            tx_gas_cap: cfg.tx_gas_limit_cap(),
            block_gas_limit: gas_limit,
        })
    }
}

/// Applies `tx` from `sender` as a plain transfer when it is one and would
/// succeed (`Ok(true)`: it used [`TRANSFER_GAS`], logged nothing and
/// created nothing); `Ok(false)` hands it to revm, with the state unchanged. A denial by `guard` of
/// the transaction's one frame rejects it, as the EVM's guard would.
pub(crate) fn apply<R: StateReader>(
    state: &mut BlockState<R>,
    rules: &TransferRules,
    tx: &TxEnvelope,
    sender: Address,
    guard: Option<&SharedGuard>,
) -> Result<bool, TxRejection> {
    let Some(to) = shape(rules, tx, sender) else {
        return Ok(false);
    };
    let Some(fees) = Fees::of(rules, tx) else {
        return Ok(false);
    };
    let Some(changes) =
        balances(state, rules, tx, sender, to, &fees).map_err(TxRejection::State)?
    else {
        return Ok(false);
    };
    if let Some(guard) = guard {
        guard
            .check(&Frame {
                depth: 0,
                kind: FrameKind::Call,
                caller: sender,
                target: to,
                code_address: to,
                value: tx.value(),
                input: &[],
                has_code: false,
            })
            .map_err(TxRejection::Denied)?;
    }
    for (address, info) in changes {
        state.commit_touched(address, info);
    }
    Ok(true)
}

/// The recipient, when `tx` has the shape of a plain transfer and passes
/// the checks that need no state.
fn shape(rules: &TransferRules, tx: &TxEnvelope, sender: Address) -> Option<Address> {
    // Call data first: it turns away every call into a contract at once.
    if !tx.input().is_empty()
        || !matches!(
            tx.tx_type(),
            TxType::Legacy | TxType::Eip2930 | TxType::Eip1559
        )
    {
        return None;
    }
    let TxKind::Call(to) = tx.kind() else {
        return None;
    };
    let plain = tx.access_list().is_none_or(|list| list.is_empty());
    let gas = tx.gas_limit();
    let fits = (TRANSFER_GAS..=rules.tx_gas_cap.min(rules.block_gas_limit)).contains(&gas);
    // Precompiles (0x01.., BLS at 0x0b.., P256 at 0x100) all sit below
    // 2^16: none of those addresses is a wallet anyone holds a key to.
    let low = to.0[..18].iter().all(|b| *b == 0);
    let distinct = to != sender && to != rules.beneficiary && sender != rules.beneficiary;
    (plain
        && fits
        && !low
        && distinct
        && tx.chain_id() == Some(rules.chain_id)
        && tx.nonce() != u64::MAX)
        .then_some(to)
}

/// Prices of one transfer, when its fee fields are valid for the block.
struct Fees {
    /// What the sender must hold: gas limit × max fee + value.
    max_spend: U256,
    /// What the sender pays for gas: 21,000 × effective price.
    paid: U256,
    /// What the beneficiary receives: 21,000 × (effective price − base fee).
    tip: U256,
}

impl Fees {
    fn of(rules: &TransferRules, tx: &TxEnvelope) -> Option<Self> {
        let base_fee = u128::from(rules.base_fee);
        let max_fee = tx.max_fee_per_gas();
        if max_fee < base_fee {
            return None;
        }
        let price = match tx.max_priority_fee_per_gas() {
            Some(tip) if tip > max_fee => return None,
            Some(tip) => max_fee.min(base_fee.saturating_add(tip)),
            None => max_fee,
        };
        let gas = U256::from(TRANSFER_GAS);
        // In u128, as revm multiplies: a product past u128 is refused there
        // whatever the balance, so it must not be accepted here.
        let gas_cost = u128::from(tx.gas_limit()).checked_mul(max_fee)?;
        let max_spend = U256::from(gas_cost).checked_add(tx.value())?;
        Some(Self {
            max_spend,
            paid: gas * U256::from(price),
            tip: gas * U256::from(price - base_fee),
        })
    }
}

/// The three accounts after the transfer, when neither end holds code and
/// the sender's nonce and balance allow it.
fn balances<R: StateReader>(
    state: &mut BlockState<R>,
    rules: &TransferRules,
    tx: &TxEnvelope,
    sender: Address,
    to: Address,
    fees: &Fees,
) -> Result<Option<[(Address, AccountInfo); 3]>, StateError> {
    let mut from = state.basic(sender)?.unwrap_or_default();
    if !from.is_code_hash_empty_or_zero()
        || from.nonce != tx.nonce()
        || from.balance < fees.max_spend
    {
        return Ok(None);
    }
    let mut dest = state.basic(to)?.unwrap_or_default();
    if !dest.is_code_hash_empty_or_zero() {
        return Ok(None);
    }
    let mut beneficiary = state.basic(rules.beneficiary)?.unwrap_or_default();
    // max_spend covers both, so neither subtraction can fail.
    from.balance -= fees.paid + tx.value();
    from.nonce += 1;
    let (Some(credited), Some(rewarded)) = (
        dest.balance.checked_add(tx.value()),
        beneficiary.balance.checked_add(fees.tip),
    ) else {
        return Ok(None);
    };
    dest.balance = credited;
    beneficiary.balance = rewarded;
    Ok(Some([
        (sender, from),
        (to, dest),
        (rules.beneficiary, beneficiary),
    ]))
}
