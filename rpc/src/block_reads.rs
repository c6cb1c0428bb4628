//! Per-block reads that indexers and explorers make: a block's transaction
//! and uncle counts, a transaction by its position, and all receipts of a
//! block. Each answers from the caller's view of the block: positions,
//! counts and receipts are those of the transactions it may see, so a
//! position never reveals that a hidden transaction sits before it.

use super::{
    access::RequestCaller,
    chain_reads::{block_at, resolve, to_json, view},
    jsonrpc::RpcError,
    params::Params,
    private::BlockView,
    RpcState,
};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U64};
use sequencer::ChainView;
use serde_json::Value;

/// The methods this module answers.
pub(super) const METHODS: &[&str] = &[
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getUncleCountByBlockNumber",
    "eth_getUncleCountByBlockHash",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getBlockReceipts",
];

/// Answers `method` (one of [`METHODS`]); an unknown block is `null`, as
/// geth and anvil answer.
pub(super) fn handle(
    state: &RpcState,
    rc: &RequestCaller,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    let v = view(state)?;
    let number = match method {
        "eth_getBlockReceipts" => match p.at_most(1)?.req::<BlockId>(0, "block")? {
            BlockId::Hash(h) => v.block_number(&h.block_hash).map_err(RpcError::internal)?,
            BlockId::Number(tag) => Some(resolve(&v, tag)?),
        },
        _ => {
            let most = if method.ends_with("AndIndex") { 2 } else { 1 };
            block_param(&v, p.at_most(most)?, method.contains("Hash"))?
        }
    };
    let Some(block) = number.map(|n| block_at(&v, n)).transpose()?.flatten() else {
        return Ok(Value::Null);
    };
    if method.starts_with("eth_getUncleCount") {
        // Blocks of this chain have no ommers.
        return to_json(U64::ZERO);
    }
    let seen = BlockView::new(state, rc, &block);
    match method {
        "eth_getBlockTransactionCountByNumber" | "eth_getBlockTransactionCountByHash" => {
            to_json(U64::from(seen.tx_count()))
        }
        "eth_getBlockReceipts" => to_json(seen.receipts()),
        _ => {
            let position: U64 = p.req(1, "index")?;
            let tx = usize::try_from(position)
                .ok()
                .and_then(|i| seen.nth_visible(i))
                .and_then(|i| seen.tx(i));
            to_json(tx)
        }
    }
}

/// The block named by the first parameter: a hash when `by_hash`, else a
/// number or tag. `None` for an unknown hash; a number past the head is
/// left for the block lookup to miss.
pub(super) fn block_param(
    v: &ChainView,
    p: &Params,
    by_hash: bool,
) -> Result<Option<u64>, RpcError> {
    if by_hash {
        let hash: B256 = p.req(0, "hash")?;
        v.block_number(&hash).map_err(RpcError::internal)
    } else {
        let tag: BlockNumberOrTag = p.req(0, "block")?;
        resolve(v, tag).map(Some)
    }
}
