//! eth_call and eth_estimateGas: execute against the derived head without
//! committing anything.

use super::jsonrpc::{code, RpcError};
use super::state_reads;
use alloy_primitives::{Bytes, TxKind, U256};
use alloy_rpc_types_eth::TransactionRequest;
use sequencer::{ChainView, HistoricalState, Sequencer};
use state_transition::{
    revm::context::{
        result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction},
        TxEnv,
    },
    BlockContext, BlockExecutor, SharedGuard, StateError, StateReader,
};

/// Gas for calls that don't say (geth uses the block gas limit too).
pub(super) fn call_env(req: &TransactionRequest, gas: u64, chain_id: u64) -> TxEnv {
    let gas_price = req.gas_price.or(req.max_fee_per_gas).unwrap_or(0);
    TxEnv {
        tx_type: if req.max_fee_per_gas.is_some() {
            2
        } else if req.access_list.as_ref().is_some_and(|l| !l.0.is_empty()) {
            1
        } else {
            0
        },
        caller: req.from.unwrap_or_default(),
        gas_limit: gas,
        gas_price,
        kind: req.to.unwrap_or(TxKind::Create),
        value: req.value.unwrap_or_default(),
        data: req.input.input().cloned().unwrap_or_default(),
        nonce: 0,
        chain_id: Some(chain_id),
        access_list: req.access_list.clone().unwrap_or_default(),
        gas_priority_fee: req.max_priority_fee_per_gas,
        ..Default::default()
    }
}

/// What a simulation runs against, read once per request (estimateGas runs
/// many times against it): the derived head, or the state after an older
/// kept block; either way as if in the block after it.
pub(super) struct Basis<'a> {
    view: &'a ChainView,
    past: Option<HistoricalState<'a>>,
    pub(super) ctx: BlockContext,
}

impl<'a> Basis<'a> {
    /// The basis for `req` at block `at` (`None`: the head).
    pub(super) fn new(
        seq: &Sequencer,
        view: &'a ChainView,
        req: &TransactionRequest,
        at: Option<u64>,
    ) -> Result<Self, RpcError> {
        let past = at.map(|n| state_reads::past(view, n)).transpose()?;
        let number = match &past {
            Some(h) => h.block(),
            None => view.head().map_err(RpcError::internal)?,
        };
        let block = view
            .block(number)
            .map_err(RpcError::internal)?
            .ok_or_else(|| RpcError::internal(format!("block {number} missing")))?;
        let priced = req.gas_price.is_some() || req.max_fee_per_gas.is_some();
        // An unpriced call runs at base fee zero, as geth does, so reads
        // need no balance.
        let base_fee = match (&past, priced) {
            (_, false) => 0,
            (None, true) => seq.next_base_fee(),
            (Some(_), true) => seq.chain().next_base_fee(
                block.header.gas_used,
                block.header.base_fee_per_gas.unwrap_or_default(),
            ),
        };
        let ctx = BlockContext {
            number: number + 1,
            timestamp: block.header.timestamp,
            parent_hash: block.hash,
            beneficiary: block.header.beneficiary,
            gas_limit: seq.chain().block_gas_limit,
            base_fee,
            prevrandao: block.hash,
        };
        Ok(Self { view, past, ctx })
    }

    /// The state to run against.
    pub(super) fn db(&self) -> &dyn StateReader {
        match &self.past {
            Some(h) => h,
            None => self.view,
        }
    }
}

/// Runs the call against `db` (the head's view, or a reader wrapping it);
/// with a guard, every call frame is put to the policies (a denial anywhere
/// is the caller's error, with the rule id).
pub(super) fn run<R: StateReader>(
    seq: &Sequencer,
    db: R,
    ctx: &BlockContext,
    req: &TransactionRequest,
    gas: u64,
    guard: Option<&SharedGuard>,
) -> Result<ExecutionResult<HaltReason>, RpcError> {
    let chain = seq.chain();
    let mut cfg = chain.cfg_env();
    cfg.disable_nonce_check = true;
    let mut exec = BlockExecutor::with_env(cfg, ctx.block_env(), ctx.clone(), db);
    let env = call_env(req, gas, chain.chain_id);
    match guard {
        None => exec.transact_env(env).map_err(evm_error),
        Some(g) => match exec.transact_env_guarded(env, g).map_err(evm_error)? {
            Ok(r) => Ok(r),
            Err(denial) => Err(RpcError::forbidden(denial.reason, &denial.rule)),
        },
    }
}

pub(super) fn revert_error(output: &Bytes) -> RpcError {
    let reason = decode_revert_reason(output);
    let mut e = RpcError::new(
        code::EXECUTION_REVERTED,
        match reason {
            Some(r) => format!("execution reverted: {r}"),
            None => "execution reverted".to_string(),
        },
    );
    e.data = Some(serde_json::Value::String(output.to_string()));
    e
}

/// Decodes `Error(string)` revert data.
pub(crate) fn decode_revert_reason(output: &[u8]) -> Option<String> {
    const ERROR_SELECTOR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    let data = output.strip_prefix(&ERROR_SELECTOR)?;
    let len = U256::from_be_slice(data.get(32..64)?).to::<usize>();
    let bytes = data.get(64..64usize.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

pub(super) fn evm_error(e: EVMError<StateError, InvalidTransaction>) -> RpcError {
    match e {
        EVMError::Database(db) => RpcError::internal(db),
        other => RpcError::server(other),
    }
}

/// eth_call.
pub(crate) fn call(
    seq: &Sequencer,
    req: &TransactionRequest,
    guard: Option<&SharedGuard>,
    at: Option<u64>,
) -> Result<Bytes, RpcError> {
    let view = seq.view().map_err(RpcError::internal)?;
    let basis = Basis::new(seq, &view, req, at)?;
    let gas = req.gas.unwrap_or(seq.chain().block_gas_limit);
    match run(seq, basis.db(), &basis.ctx, req, gas, guard)? {
        ExecutionResult::Success { output, .. } => Ok(output.into_data()),
        ExecutionResult::Revert { output, .. } => Err(revert_error(&output)),
        ExecutionResult::Halt { reason, .. } => {
            Err(RpcError::server(format!("execution halted: {reason:?}")))
        }
    }
}

/// eth_estimateGas: the smallest gas limit that succeeds, by binary search.
/// Every run is guarded: with less gas a contract can take paths (and reach
/// frames) the first run never did. A memoizing guard decides each distinct
/// frame once; a denial in any run is the caller's error.
pub(crate) fn estimate_gas(
    seq: &Sequencer,
    req: &TransactionRequest,
    guard: Option<&SharedGuard>,
    at: Option<u64>,
) -> Result<u64, RpcError> {
    let view = seq.view().map_err(RpcError::internal)?;
    let basis = Basis::new(seq, &view, req, at)?;
    let (db, ctx) = (basis.db(), &basis.ctx);
    let cap = req.gas.unwrap_or(seq.chain().block_gas_limit);
    let used = match run(seq, db, ctx, req, cap, guard)? {
        ExecutionResult::Success { gas, .. } => gas.tx_gas_used(),
        ExecutionResult::Revert { output, .. } => return Err(revert_error(&output)),
        ExecutionResult::Halt { reason, .. } => {
            return Err(RpcError::server(format!(
                "gas required exceeds allowance ({cap}): {reason:?}"
            )))
        }
    };
    // Refunds and the 63/64 rule mean `used` may not be enough as a limit.
    let succeeds = |gas: u64| -> Result<bool, RpcError> {
        match run(seq, db, ctx, req, gas, guard) {
            Ok(r) => Ok(r.is_success()),
            // Too little gas for the intrinsic cost is just "not enough".
            Err(e) if e.code == code::FORBIDDEN || e.code == code::INTERNAL => Err(e),
            Err(_) => Ok(false),
        }
    };
    if succeeds(used)? {
        return Ok(used);
    }
    let mut lo = used.saturating_sub(1);
    let mut hi = cap;
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if succeeds(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::decode_revert_reason;

    #[test]
    fn decodes_error_string_revert_data() {
        let data = alloy_primitives::hex::decode(
            "08c379a0\
             0000000000000000000000000000000000000000000000000000000000000020\
             0000000000000000000000000000000000000000000000000000000000000004\
             6e6f706500000000000000000000000000000000000000000000000000000000",
        )
        .unwrap();
        assert_eq!(decode_revert_reason(&data).as_deref(), Some("nope"));
        assert_eq!(decode_revert_reason(&data[..40]), None);
    }
}
