//! eth_createAccessList: the accounts and storage slots a transaction would
//! touch, so a wallet can send it as EIP-2930 with those pre-warmed, and
//! the gas it would use with that list.
//!
//! Runs like eth_estimateGas (every frame put to the policies as a write),
//! against the derived head. What the EVM reads from the state on first
//! touch is exactly what EIP-2929 charges as cold, so the list is recorded
//! at the state reader rather than by watching opcodes.

use super::{
    call::{revert_error, run, Basis},
    jsonrpc::RpcError,
};
use alloy_eips::eip2930::{AccessList, AccessListItem, AccessListResult};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_rpc_types_eth::TransactionRequest;
use sequencer::Sequencer;
use state_transition::{
    revm::{
        context::result::ExecutionResult,
        precompile::{PrecompileSpecId, Precompiles},
        state::AccountInfo,
    },
    SharedGuard, StateError, StateReader,
};
use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
};

/// A list changes the gas, which can change the path a contract takes and
/// so the list; geth stops when it settles, and so do we, within a bound.
const MAX_ROUNDS: usize = 8;

/// Records every account and slot the EVM loads through it.
struct Recording<'a> {
    inner: &'a dyn StateReader,
    touched: RefCell<BTreeMap<Address, BTreeSet<B256>>>,
}

impl StateReader for Recording<'_> {
    fn account(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        self.touched.borrow_mut().entry(address).or_default();
        self.inner.account(address)
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, StateError> {
        self.touched
            .borrow_mut()
            .entry(address)
            .or_default()
            .insert(B256::from(slot));
        self.inner.storage(address, slot)
    }
    fn code(&self, code_hash: B256) -> Result<Option<Bytes>, StateError> {
        self.inner.code(code_hash)
    }
    fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        self.inner.block_hash(number)
    }
}

/// eth_createAccessList for `req` (its `from` already checked).
pub(crate) fn create_access_list(
    seq: &Sequencer,
    req: &TransactionRequest,
    guard: Option<&SharedGuard>,
    at: Option<u64>,
) -> Result<AccessListResult, RpcError> {
    let view = seq.view().map_err(RpcError::internal)?;
    let basis = Basis::new(seq, &view, req, at)?;
    let ctx = &basis.ctx;
    let gas = req.gas.unwrap_or(seq.chain().block_gas_limit);
    let precompiles = Precompiles::new(PrecompileSpecId::from_spec_id(seq.chain().spec));
    // Warm anyway (EIP-2929, EIP-3651): listed without slots they only cost.
    let mut warm: BTreeSet<Address> = [ctx.beneficiary].into();
    warm.extend(req.from);
    if let Some(TxKind::Call(to)) = req.to {
        warm.insert(to);
    }
    let mut request = req.clone();
    let mut list = req.access_list.clone().unwrap_or_default();
    for _ in 0..MAX_ROUNDS {
        request.access_list = Some(list.clone());
        let recording = Recording {
            inner: basis.db(),
            touched: RefCell::default(),
        };
        let result = run(seq, &recording, ctx, &request, gas, guard)?;
        let found = AccessList(
            recording
                .touched
                .into_inner()
                .into_iter()
                .filter(|(a, slots)| {
                    !slots.is_empty() || !(warm.contains(a) || precompiles.contains(a))
                })
                .map(|(address, slots)| AccessListItem {
                    address,
                    storage_keys: slots.into_iter().collect(),
                })
                .collect(),
        );
        if found == list {
            let error = match &result {
                ExecutionResult::Success { .. } => None,
                ExecutionResult::Revert { output, .. } => Some(revert_error(output).message),
                ExecutionResult::Halt { reason, .. } => {
                    Some(format!("execution halted: {reason:?}"))
                }
            };
            return Ok(AccessListResult {
                access_list: list,
                gas_used: U256::from(result.tx_gas_used()),
                error,
            });
        }
        list = found;
    }
    Err(RpcError::server(format!(
        "the access list did not settle in {MAX_ROUNDS} runs: the transaction's path depends on the list itself"
    )))
}
