//! Account and storage reads, at the head or at any older block whose state
//! is kept (the derive stage's trie nodes, see `sequencer::HistoricalState`).
//! A compliance officer asking for a balance at the end of last quarter,
//! and any tool reading at a pinned block, get the value as of that block.

use super::{
    access::RequestCaller,
    chain_reads::{account_read, to_json, view},
    jsonrpc::RpcError,
    params::Params,
    RpcState,
};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, U256, U64};
use sequencer::{ChainView, HistoricalState};
use serde_json::Value;
use state_transition::revm::state::AccountInfo;

/// The methods this module answers.
pub(super) const METHODS: &[&str] = &[
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
];

/// The block a state read names: `None` for the head (the latest tags, or
/// a number at or past the head; blocks are final once derived).
pub(super) fn requested(view: &ChainView, id: Option<BlockId>) -> Result<Option<u64>, RpcError> {
    let head = view.head().map_err(RpcError::internal)?;
    let number = match id.unwrap_or_default() {
        BlockId::Number(BlockNumberOrTag::Number(n)) => n,
        BlockId::Number(BlockNumberOrTag::Earliest) => 0,
        BlockId::Number(_) => return Ok(None),
        BlockId::Hash(h) => view
            .block_number(&h.block_hash)
            .map_err(RpcError::internal)?
            .ok_or_else(|| RpcError::server(format!("block {} not found", h.block_hash)))?,
    };
    Ok((number < head).then_some(number))
}

/// The state after `number`, or a clear error when it is not kept.
pub(super) fn past(view: &ChainView, number: u64) -> Result<HistoricalState<'_>, RpcError> {
    match view.state_at(number).map_err(RpcError::internal)? {
        Some(state) => Ok(state),
        None => Err(RpcError::server(
            match view.history_from().map_err(RpcError::internal)? {
                Some(from) => {
                    format!("state at block {number} is not kept: history starts at block {from}")
                }
                None => format!("state at block {number} is not kept: this store keeps no history"),
            },
        )),
    }
}

/// Where a read is answered from.
enum At<'a> {
    Head(&'a ChainView),
    Past(HistoricalState<'a>),
}

impl<'a> At<'a> {
    fn of(view: &'a ChainView, id: Option<BlockId>) -> Result<Self, RpcError> {
        Ok(match requested(view, id)? {
            None => At::Head(view),
            Some(n) => At::Past(past(view, n)?),
        })
    }

    fn account(&self, address: &Address) -> Result<Option<AccountInfo>, RpcError> {
        match self {
            At::Head(v) => v.account_info(address),
            At::Past(h) => h.account_info(address),
        }
        .map_err(RpcError::internal)
    }

    fn slot(&self, address: &Address, slot: &U256) -> Result<U256, RpcError> {
        match self {
            At::Head(v) => v.storage_slot(address, slot),
            At::Past(h) => h.storage_slot(address, slot),
        }
        .map_err(RpcError::internal)
    }
}

/// Answers `method` (one of [`METHODS`]).
pub(super) async fn handle(
    state: &RpcState,
    rc: Option<&RequestCaller>,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    if method == "eth_getStorageAt" {
        let address: Address = p.at_most(3)?.req(0, "address")?;
        let slot: U256 = p.req(1, "slot")?;
        let v = view(state)?;
        let value = At::of(&v, p.opt(2, "block")?)?.slot(&address, &slot)?;
        return to_json(B256::from(value));
    }
    let address: Address = p.at_most(2)?.req(0, "address")?;
    let block: Option<BlockId> = p.opt(1, "block")?;
    let v = view(state)?;
    account_read(state, rc, &address).await?;
    if method == "eth_getTransactionCount"
        && block == Some(BlockId::Number(BlockNumberOrTag::Pending))
    {
        return to_json(U64::from(state.sequencer.pending_nonce(&address)));
    }
    let info = At::of(&v, block)?.account(&address)?;
    match method {
        "eth_getBalance" => to_json(info.map(|i| i.balance).unwrap_or_default()),
        "eth_getTransactionCount" => to_json(U64::from(info.map(|i| i.nonce).unwrap_or_default())),
        _ => {
            let code = match info {
                Some(i) => v.code_by_hash(&i.code_hash).map_err(RpcError::internal)?,
                None => None,
            };
            to_json(code.unwrap_or_default())
        }
    }
}
