//! Method dispatch: one arm per supported Ethereum method.

use super::{
    access::RequestCaller,
    access_list, block_reads, call,
    chain_reads::{block_at, get_logs, resolve, simulation_sender, to_json, view, who},
    filters,
    jsonrpc::{code, RpcError},
    params::Params,
    private::BlockView,
    proof, state_reads, trace, wallet, RpcState,
};
use crate::request::{RequestContext, REQUEST};
use access_control::policy::{gwei_ceil, ExecMode};
use alloy_consensus::{transaction::Recovered, Transaction as _};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{Bytes, B256, U256, U64};
use alloy_rpc_types_eth::{FeeHistory, Filter, Transaction, TransactionRequest};
use audit::{action, Outcome};
use sequencer::{ChainView, StoredBlock};
use serde_json::{json, Value};
use std::sync::Arc;

/// Client version string.
pub(crate) const CLIENT_VERSION: &str = concat!("prividium/v", env!("CARGO_PKG_VERSION"));

fn tx_by_hash(view: &ChainView, hash: &B256) -> Result<Option<(StoredBlock, usize)>, RpcError> {
    let Some((number, index)) = view.tx_location(hash).map_err(RpcError::internal)? else {
        return Ok(None);
    };
    Ok(block_at(view, number)?
        .filter(|b| index < b.txs.len())
        .map(|b| (b, index)))
}

/// The three ways a transaction is run without being sent.
#[derive(Clone, Copy)]
enum Simulation {
    Call,
    EstimateGas,
    AccessList,
}

pub(crate) async fn dispatch(
    state: &Arc<RpcState>,
    rc: Option<&RequestCaller>,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    let p = Params::new(params)?;
    let seq = &state.sequencer;
    let chain_id = seq.chain().chain_id;
    if method.starts_with("prividium_") {
        let rc = who(rc)?;
        if super::admin_keys::METHODS.contains(&method) {
            return super::admin_keys::dispatch(state, rc, method, &p);
        }
        if super::admin_status::METHODS.contains(&method) {
            return super::admin_status::dispatch(state, method, &p).await;
        }
        if super::batches::METHODS.contains(&method) {
            return super::batches::dispatch(state, rc, &p).await;
        }
        if super::disclose::METHODS.contains(&method) {
            return super::disclose::dispatch(state, rc, &p).await;
        }
        return wallet::dispatch(state, rc, method, &p).await;
    }
    match method {
        "eth_chainId" => to_json(U64::from(chain_id)),
        "net_version" => Ok(Value::String(chain_id.to_string())),
        "web3_clientVersion" => Ok(Value::String(CLIENT_VERSION.into())),
        "eth_blockNumber" => to_json(U64::from(seq.head().number)),
        "eth_syncing" => Ok(Value::Bool(false)),
        "eth_accounts" => Ok(Value::Array(Vec::new())),
        "eth_gasPrice" => to_json(U256::from(seq.next_base_fee())),
        "eth_maxPriorityFeePerGas" => to_json(U256::ZERO),
        "eth_feeHistory" => fee_history(state, who(rc)?, &p),
        m if state_reads::METHODS.contains(&m) => state_reads::handle(state, rc, method, &p).await,
        "eth_call" | "eth_estimateGas" | "eth_createAccessList" => {
            let mut req: TransactionRequest = p.at_most(3)?.req(0, "transaction")?;
            if p.opt::<Value>(2, "state overrides")?.is_some() {
                return Err(RpcError::invalid_params(
                    "state overrides are not supported",
                ));
            }
            let v = view(state)?;
            let at = state_reads::requested(&v, p.opt(1, "block")?)?;
            if let Some(n) = at {
                // Refused before any work when that block's state is not kept.
                state_reads::past(&v, n)?;
            }
            let rc = who(rc)?;
            let from = simulation_sender(state, rc, &mut req).await?;
            let is_call = method == "eth_call";
            let simulation = match method {
                "eth_call" => Simulation::Call,
                "eth_estimateGas" => Simulation::EstimateGas,
                _ => Simulation::AccessList,
            };
            let mode = if is_call {
                ExecMode::Read
            } else {
                ExecMode::Write
            };
            // estimateGas and createAccessList re-run the same frames: each
            // is decided once.
            let guard = state.access.guard(rc, mode, from, 0, !is_call);
            let seq = seq.clone();
            // Decisions made while executing carry this request's ids.
            let ctx = RequestContext::current();
            tokio::task::spawn_blocking(move || {
                let run = || match simulation {
                    Simulation::Call => call::call(&seq, &req, Some(&guard), at).and_then(to_json),
                    Simulation::EstimateGas => call::estimate_gas(&seq, &req, Some(&guard), at)
                        .and_then(|g| to_json(U64::from(g))),
                    Simulation::AccessList => {
                        access_list::create_access_list(&seq, &req, Some(&guard), at)
                            .and_then(to_json)
                    }
                };
                match ctx {
                    Some(c) => REQUEST.sync_scope(c, run),
                    None => run(),
                }
            })
            .await
            .map_err(RpcError::internal)?
        }
        "eth_sendRawTransaction" => {
            let raw: Bytes = p.at_most(1)?.req(0, "data")?;
            send_raw(state, who(rc)?, &raw).await
        }
        "eth_getTransactionByHash" => {
            let hash: B256 = p.at_most(1)?.req(0, "hash")?;
            let rc = who(rc)?;
            if let Some((block, index)) = tx_by_hash(&view(state)?, &hash)? {
                return to_json(BlockView::new(state, rc, &block).tx(index));
            }
            match seq.pooled(&hash) {
                Some(tx) if rc.caller.owns(&tx.sender) || state.access.view_all(rc) => {
                    to_json(Transaction {
                        inner: Recovered::new_unchecked(tx.envelope.clone(), tx.sender),
                        block_hash: None,
                        block_number: None,
                        transaction_index: None,
                        effective_gas_price: None,
                        block_timestamp: None,
                    })
                }
                _ => Ok(Value::Null),
            }
        }
        "eth_getTransactionReceipt" => {
            let hash: B256 = p.at_most(1)?.req(0, "hash")?;
            match tx_by_hash(&view(state)?, &hash)? {
                Some((block, index)) => {
                    to_json(BlockView::new(state, who(rc)?, &block).receipt(index))
                }
                None => Ok(Value::Null),
            }
        }
        "eth_getBlockByNumber" | "eth_getBlockByHash" => {
            let v = view(state)?;
            let number =
                block_reads::block_param(&v, p.at_most(2)?, method == "eth_getBlockByHash")?;
            let full: bool = p.opt(1, "full")?.unwrap_or(false);
            let Some(number) = number else {
                return Ok(Value::Null);
            };
            match block_at(&v, number)? {
                Some(block) => {
                    let root = v.state_root(number).map_err(RpcError::internal)?;
                    to_json(BlockView::new(state, who(rc)?, &block).block(root, full))
                }
                None => Ok(Value::Null),
            }
        }
        "eth_getProof" => proof::get_proof(state, who(rc)?, &p).await,
        m if trace::METHODS.contains(&m) => trace::handle(state, who(rc)?, method, &p).await,
        m if block_reads::METHODS.contains(&m) => block_reads::handle(state, who(rc)?, method, &p),
        m if filters::METHODS.contains(&m) => filters::handle(state, who(rc)?, method, &p),
        "eth_subscribe" | "eth_unsubscribe" => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("{method} needs a WebSocket connection: open wss:// on this port and path"),
        )),
        "eth_getLogs" => {
            let filter: Filter = p.at_most(1)?.req(0, "filter")?;
            get_logs(state, who(rc)?, &filter).and_then(to_json)
        }
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("the method {method} does not exist/is not available"),
        )),
    }
}

/// eth_feeHistory. A caller without `view_all` gets `gasUsedRatio` and the
/// tip percentiles of its own transactions only (those its wallets sent or
/// received): cheap to decide, and the block's fullness is not its to know.
fn fee_history(state: &RpcState, rc: &RequestCaller, p: &Params) -> Result<Value, RpcError> {
    let count: U64 = p.at_most(3)?.req(0, "blockCount")?;
    let newest: BlockNumberOrTag = p.req(1, "newestBlock")?;
    let percentiles: Vec<f64> = p.opt(2, "rewardPercentiles")?.unwrap_or_default();
    if percentiles.iter().any(|x| !(0.0..=100.0).contains(x))
        || percentiles.windows(2).any(|w| w[0] > w[1])
    {
        return Err(RpcError::invalid_params(
            "reward percentiles must be ascending within 0..=100",
        ));
    }
    let v = view(state)?;
    let newest = resolve(&v, newest)?;
    let all = state.access.view_all(rc);
    let counted = |t: &&sequencer::StoredTx| {
        all || rc.caller.owns(&t.sender) || t.envelope.to().is_some_and(|to| rc.caller.owns(&to))
    };
    let count = count.to::<u64>().clamp(1, 1024).min(newest + 1);
    let oldest = newest + 1 - count;
    let mut base_fees = Vec::new();
    let mut ratios = Vec::new();
    let mut rewards = Vec::new();
    let mut last = None;
    for n in oldest..=newest {
        let block =
            block_at(&v, n)?.ok_or_else(|| RpcError::server(format!("block {n} not found")))?;
        let base = block.header.base_fee_per_gas.unwrap_or_default();
        base_fees.push(base as u128);
        let gas_used: u64 = if all {
            block.header.gas_used
        } else {
            block.txs.iter().filter(counted).map(|t| t.gas_used).sum()
        };
        ratios.push(gas_used as f64 / block.header.gas_limit.max(1) as f64);
        if !percentiles.is_empty() {
            let mut tips: Vec<u128> = block
                .txs
                .iter()
                .filter(counted)
                .map(|t| t.envelope.effective_tip_per_gas(base).unwrap_or_default())
                .collect();
            tips.sort_unstable();
            rewards.push(
                percentiles
                    .iter()
                    .map(|pct| {
                        if tips.is_empty() {
                            0
                        } else {
                            let i = ((pct / 100.0) * (tips.len() - 1) as f64).round() as usize;
                            tips[i.min(tips.len() - 1)]
                        }
                    })
                    .collect::<Vec<_>>(),
            );
        }
        last = Some(block);
    }
    let next = match &last {
        Some(b) if b.header.number == v.head().map_err(RpcError::internal)? => {
            state.sequencer.next_base_fee()
        }
        Some(b) => b.header.base_fee_per_gas.unwrap_or_default(),
        None => 0,
    };
    base_fees.push(next as u128);
    to_json(FeeHistory {
        base_fee_per_gas: base_fees,
        gas_used_ratio: ratios,
        base_fee_per_blob_gas: Vec::new(),
        blob_gas_used_ratio: Vec::new(),
        oldest_block: oldest,
        reward: (!percentiles.is_empty()).then_some(rewards),
    })
}

/// eth_sendRawTransaction: the signer must be one of the caller's wallets
/// (unless a policy lets them act for others); every call frame is checked
/// now against the latest state and again when the block is built. The
/// guard remembers its answers, so a frame that asks the block the same
/// question it asked at admission is not decided (nor audited) twice; a
/// frame that changed with the state, or any frame after a policy reload,
/// is decided afresh.
async fn send_raw(
    state: &Arc<RpcState>,
    rc: &RequestCaller,
    raw: &[u8],
) -> Result<Value, RpcError> {
    use alloy_consensus::transaction::SignerRecoverable;
    let seq = state.sequencer.clone();
    let tx = seq.decode_raw(raw).map_err(RpcError::invalid_params)?;
    let sender = tx
        .recover_signer()
        .map_err(|e| RpcError::server(format!("invalid sender: {e}")))?;
    if !rc.caller.owns(&sender) && !state.access.act_for_others(rc) {
        return Err(RpcError::forbidden(
            format!(
                "signer {sender:#x} is not a wallet of {}",
                rc.caller.principal
            ),
            "wallet-binding",
        ));
    }
    state.access.sync_directory(&state.sequencer).await?;
    let key = rc.caller.key();
    let value_gwei = gwei_ceil(&tx.value());
    let spent = state.access.spend.reserve(key, value_gwei);
    let guard = state.access.guard(rc, ExecMode::Write, sender, spent, true);
    let hash = *tx.tx_hash();
    // Admission runs here, on the request's task (so its decisions carry the
    // request's ids): it is tens of microseconds of CPU, and the locks it
    // takes are held by the producer only briefly. A hop to the blocking
    // pool cost more than the work (two context switches a transaction).
    let result = seq.submit_signed(tx, sender, Some(guard));
    if result.is_err() {
        state.access.spend.release(key, value_gwei);
    }
    // Hash, principal and wallet only: never calldata or amounts; the
    // permits that let it through (see decision_fold).
    let folded = REQUEST.try_with(|c| c.fold.take()).ok();
    let (outcome, why) = match &result {
        Ok(_) => (Outcome::Allow, None),
        Err(sequencer::MempoolError::Denied { rule, .. }) => (Outcome::Deny, Some(rule.clone())),
        Err(e) => (Outcome::Error, Some(e.to_string())),
    };
    let mut event = crate::request::by_caller(&rc.caller, action::TX_SUBMITTED, outcome)
        .resource(format!("tx:{hash:#x}"));
    let (place, allowed_by) = folded.map_or((None, Value::Null), |f| (f.place, f.allowed_by));
    // Built by moving the folded permits in (`json!` would copy them).
    let mut details = serde_json::Map::new();
    details.insert("wallet".into(), json!(sender));
    details.insert("reason".into(), json!(why));
    details.insert("allowed_by".into(), allowed_by);
    event.details = Value::Object(details);
    if outcome == Outcome::Deny {
        event.rule_id = why;
    }
    let _ = state.access.trail.record_reserved(place, event);
    match result {
        Ok(hash) => to_json(hash),
        Err(sequencer::MempoolError::Denied { rule, reason }) => {
            Err(RpcError::forbidden(reason, &rule))
        }
        Err(e @ sequencer::MempoolError::Decode(_)) => Err(RpcError::invalid_params(e)),
        Err(e) => Err(RpcError::server(e)),
    }
}
