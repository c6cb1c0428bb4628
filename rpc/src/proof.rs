//! eth_getProof (EIP-1186): an account and some of its storage slots,
//! proven against the state root of any kept block, so a
//! counterparty or auditor can check them with any Merkle-Patricia verifier
//! and the block's `stateRoot`.
//!
//! Who may ask: the method is an account read (`rpc:account`), and the
//! account must be one the caller may view (its own wallets and contracts,
//! or everything for admins and auditors). Slot proofs show raw storage, so
//! they also need the right to `eth_getStorageAt`.

use super::{
    access::RequestCaller,
    chain_reads::{account_read, to_json, view},
    jsonrpc::RpcError,
    params::Params,
    state_reads, RpcState,
};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY};
use alloy_rpc_types_eth::{EIP1186AccountProofResponse, EIP1186StorageProof};
use alloy_serde::storage::JsonStorageKey;
use sequencer::StateProof;
use serde_json::Value;

/// Slots one request may ask about: each is a walk of the storage trie and
/// a few hundred bytes of answer.
pub(super) const MAX_SLOTS: usize = 1_024;

/// Answers `eth_getProof(address, slots, block)`.
pub(super) async fn get_proof(
    state: &RpcState,
    rc: &RequestCaller,
    p: &Params,
) -> Result<Value, RpcError> {
    let address: Address = p.at_most(3)?.req(0, "address")?;
    let keys: Vec<JsonStorageKey> = p.req(1, "storage keys")?;
    let block: Option<BlockId> = p.opt(2, "block")?;
    if keys.len() > MAX_SLOTS {
        return Err(RpcError::invalid_params(format!(
            "{} storage keys asked, at most {MAX_SLOTS} per request",
            keys.len()
        )));
    }
    account_read(state, Some(rc), &address).await?;
    if !keys.is_empty() {
        state
            .access
            .check_method(rc, "eth_getStorageAt")
            .map_err(|mut e| {
                e.message = format!("storage proofs show raw storage: {}", e.message);
                e
            })?;
    }
    let wanted = requested_block(state, block)?;
    let slots: Vec<_> = keys.iter().map(JsonStorageKey::as_b256).collect();
    let proof = state_proof_at(state, &address, &slots, wanted)?;
    to_json(eip1186(address, proof, keys))
}

/// Proofs of `address` and `slots` against block `wanted`'s state root
/// (`None`: the latest block).
pub(super) fn state_proof_at(
    state: &RpcState,
    address: &Address,
    slots: &[B256],
    wanted: Option<u64>,
) -> Result<StateProof, RpcError> {
    // The derive stage's tries in memory answer for its latest block
    // without a walk. They move before the block is published to readers
    // (by a whole group of blocks when the stage catches up), so their
    // answer is used only once a view shows that block: a proof must name
    // a block whose stateRoot the caller can fetch. Anything else is walked
    // from the nodes kept for it.
    let proof = state.sequencer.state_proof(address, slots);
    let v = view(state)?;
    let head = v.head().map_err(RpcError::internal)?;
    let wanted = wanted.unwrap_or(head.min(proof.block));
    if wanted > head {
        return Err(RpcError::server(format!(
            "block {wanted} not found (latest {head})"
        )));
    }
    if wanted == proof.block {
        return Ok(proof);
    }
    state_reads::past(&v, wanted)?
        .proof(address, slots)
        .map_err(RpcError::internal)
}

/// The EIP-1186 answer for `proof`, the slots named as the caller named them.
pub(super) fn eip1186(
    address: Address,
    proof: StateProof,
    keys: Vec<JsonStorageKey>,
) -> EIP1186AccountProofResponse {
    // geth's answer for an account that does not exist.
    let (balance, nonce, code_hash) = match proof.account {
        Some(a) => (a.balance, a.nonce, a.code_hash),
        None => (Default::default(), 0, KECCAK256_EMPTY),
    };
    EIP1186AccountProofResponse {
        address,
        balance,
        nonce,
        code_hash,
        storage_hash: proof.storage_root,
        account_proof: proof.account_proof,
        storage_proof: keys
            .into_iter()
            .zip(proof.storage)
            .map(|(key, s)| EIP1186StorageProof::new(key, s.value, s.proof))
            .collect(),
    }
}

/// The block a proof is asked at: `None` for the latest (and the tags that
/// mean it on a chain without reorgs).
fn requested_block(state: &RpcState, block: Option<BlockId>) -> Result<Option<u64>, RpcError> {
    Ok(match block.unwrap_or_default() {
        BlockId::Number(BlockNumberOrTag::Number(n)) => Some(n),
        BlockId::Number(BlockNumberOrTag::Earliest) => Some(0),
        BlockId::Number(_) => None,
        BlockId::Hash(h) => {
            let n = view(state)?
                .block_number(&h.block_hash)
                .map_err(RpcError::internal)?
                .ok_or_else(|| RpcError::server(format!("block {} not found", h.block_hash)))?;
            Some(n)
        }
    })
}
