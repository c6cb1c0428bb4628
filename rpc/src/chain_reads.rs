//! What the method modules share: the derived chain as of a request
//! (a view, a tag resolved, a block), the caller a method needs, the checks
//! before an account read or a simulation, and log queries decided per
//! log. Nothing here dispatches, so every method module may use it.

use super::{
    access::RequestCaller,
    jsonrpc::{code, RpcError},
    private::BlockView,
    RpcState,
};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::Address;
use alloy_rpc_types_eth::{Filter, FilterBlockOption, Log, TransactionRequest};
use sequencer::{ChainView, StoredBlock};
use serde::Serialize;
use serde_json::Value;

pub(super) fn to_json<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(RpcError::internal)
}

pub(super) fn view(state: &RpcState) -> Result<ChainView, RpcError> {
    state.sequencer.view().map_err(RpcError::internal)
}

/// Resolves a block tag or number to a number at or below the head.
pub(super) fn resolve(view: &ChainView, tag: BlockNumberOrTag) -> Result<u64, RpcError> {
    let head = view.head().map_err(RpcError::internal)?;
    Ok(match tag {
        BlockNumberOrTag::Earliest => 0,
        BlockNumberOrTag::Number(n) => n,
        // Blocks are final once derived: there are no reorgs on this chain.
        _ => head,
    })
}

pub(super) fn block_at(view: &ChainView, number: u64) -> Result<Option<StoredBlock>, RpcError> {
    view.block(number).map_err(RpcError::internal)
}

pub(super) fn who(rc: Option<&RequestCaller>) -> Result<&RequestCaller, RpcError> {
    rc.ok_or_else(|| RpcError::new(code::UNAUTHORIZED, "unauthorized: missing bearer token"))
}

/// Checks an account read: the directory first catches up with the chain
/// so a contract the caller just deployed counts as theirs.
pub(super) async fn account_read(
    state: &RpcState,
    rc: Option<&RequestCaller>,
    address: &Address,
) -> Result<(), RpcError> {
    let rc = who(rc)?;
    if !rc.caller.owns(address) {
        state.access.sync_directory(&state.sequencer).await?;
    }
    state.access.check_account(rc, address)
}

/// The sender a simulated transaction runs as: `from`, or when clients
/// omit it (they often do for reads) the caller's own first wallet, never
/// an arbitrary address; one of the caller's wallets unless it may act for
/// others. The directory catches up first, so a contract the caller just
/// deployed counts as theirs in the frames.
pub(super) async fn simulation_sender(
    state: &RpcState,
    rc: &RequestCaller,
    req: &mut TransactionRequest,
) -> Result<Address, RpcError> {
    let from = match req.from.or_else(|| rc.caller.wallets.first().copied()) {
        Some(f) => f,
        None => {
            return Err(RpcError::invalid_params(
                "`from` is required: bind a wallet first (prividium_siweChallenge)",
            ))
        }
    };
    req.from = Some(from);
    if !rc.caller.owns(&from) && !state.access.act_for_others(rc) {
        return Err(RpcError::forbidden(
            format!("{from:#x} is not a wallet of {}", rc.caller.principal),
            "wallet-binding",
        ));
    }
    state.access.sync_directory(&state.sequencer).await?;
    Ok(from)
}

pub(super) fn get_logs(
    state: &RpcState,
    rc: &RequestCaller,
    filter: &Filter,
) -> Result<Vec<Log>, RpcError> {
    let v = view(state)?;
    let (from, to) = match &filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let n = v
                .block_number(hash)
                .map_err(RpcError::internal)?
                .ok_or_else(|| RpcError::server(format!("unknown block {hash}")))?;
            (n, n)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let from = resolve(&v, from_block.unwrap_or(BlockNumberOrTag::Latest))?;
            let to = resolve(&v, to_block.unwrap_or(BlockNumberOrTag::Latest))?;
            (from, to.min(v.head().map_err(RpcError::internal)?))
        }
    };
    if from <= to && to - from + 1 > state.limits.max_log_range {
        return Err(RpcError::new(
            code::LIMIT,
            format!(
                "block range {from}..={to} exceeds limit of {} blocks",
                state.limits.max_log_range
            ),
        ));
    }
    logs_between(state, rc, filter, from, to)
}

/// The logs of blocks `from..=to` that match `filter` and that the caller
/// may see, with the caller's positions; more than `max_logs` is refused.
pub(super) fn logs_between(
    state: &RpcState,
    rc: &RequestCaller,
    filter: &Filter,
    from: u64,
    to: u64,
) -> Result<Vec<Log>, RpcError> {
    let v = view(state)?;
    let mut out = Vec::new();
    for number in from..=to {
        let Some(block) = block_at(&v, number)? else {
            continue;
        };
        if !filter.matches_bloom(block.header.logs_bloom) {
            continue;
        }
        // Positions are the caller's: every log of the block is decided
        // (one summarized audit event per kind), not only matching ones.
        let view = BlockView::new(state, rc, &block);
        for index in 0..block.txs.len() {
            for log in view.logs(index) {
                if filter.matches(&log.inner) {
                    out.push(log);
                    if out.len() > state.limits.max_logs {
                        return Err(RpcError::new(
                            code::LIMIT,
                            format!(
                                "query returned more than {} logs; narrow the range",
                                state.limits.max_logs
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(out)
}
