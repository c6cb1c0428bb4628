//! Tracing for engineers debugging a payment: `debug_traceTransaction`,
//! `debug_traceBlockByNumber` and `debug_traceCall`, with geth's
//! `callTracer` and `prestateTracer` output, so the tools that read geth's
//! formats read ours.
//!
//! A mined transaction is traced by re-running its block from the state
//! after the block before it (the kept history), the transactions ahead of
//! it untraced. Who may: the `rpc:trace` methods, granted to admins and
//! operators in the shipped policies (a trace shows every frame's input and
//! output, whoever sent it). `debug_traceCall` is put to the call-frame
//! policies first, as `eth_call` is.

mod call_tracer;
mod prestate;

use super::{
    access::RequestCaller,
    call::{self, call_env, evm_error, Basis},
    chain_reads::{resolve, simulation_sender, to_json, view},
    jsonrpc::{code, RpcError},
    params::Params,
    state_reads, RpcState,
};
use crate::request::{RequestContext, REQUEST};
use access_control::policy::ExecMode;
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U64};
use alloy_rpc_types_eth::TransactionRequest;
use call_tracer::CallTracer;
use sequencer::{ChainView, Sequencer};
use serde::Deserialize;
use serde_json::{json, Value};
use state_transition::{
    revm::{
        context::TxEnv,
        handler::{MainnetContext, MainnetEvm},
        primitives::hardfork::SpecId,
        Context, ExecuteCommitEvm, ExecuteEvm, InspectEvm, MainBuilder, MainContext,
    },
    tx_env, BlockContext, BlockState, ChainSpec, StateReader,
};
use std::sync::Arc;

/// The methods this module answers.
pub(super) const METHODS: &[&str] = &[
    "debug_traceTransaction",
    "debug_traceBlockByNumber",
    "debug_traceCall",
];

/// geth's tracer options (`timeout` is accepted and ignored: a trace is
/// one block's work, bounded by the block gas limit).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Options {
    tracer: Option<String>,
    #[serde(default)]
    tracer_config: Value,
    #[allow(dead_code)]
    timeout: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Tracer {
    Call { only_top: bool },
    Prestate,
}

impl Tracer {
    fn of(options: Option<Options>) -> Result<Self, RpcError> {
        let o = options.unwrap_or_default();
        let flag = |name: &str| o.tracer_config.get(name).and_then(Value::as_bool) == Some(true);
        match o.tracer.as_deref() {
            Some("callTracer") => Ok(Tracer::Call {
                only_top: flag("onlyTopCall"),
            }),
            Some("prestateTracer") if flag("diffMode") => Err(RpcError::invalid_params(
                "prestateTracer's diffMode is not served: trace the block after for the new values",
            )),
            Some("prestateTracer") => Ok(Tracer::Prestate),
            Some(other) => Err(RpcError::invalid_params(format!(
                "tracer {other} is not served: use callTracer or prestateTracer"
            ))),
            None => Err(RpcError::invalid_params(
                "name a tracer (callTracer or prestateTracer): the opcode logger is not served",
            )),
        }
    }
}

type Evm<'a> = MainnetEvm<MainnetContext<BlockState<&'a dyn StateReader>>, CallTracer>;

fn evm<'a>(chain: &ChainSpec, ctx: &BlockContext, db: &'a dyn StateReader, call: bool) -> Evm<'a> {
    let mut cfg = chain.cfg_env();
    // A simulated call carries no nonce, as in eth_call.
    cfg.disable_nonce_check = call;
    let state_clear = cfg.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
    Context::mainnet()
        .with_db(BlockState::new(db, state_clear))
        .with_block(ctx.block_env())
        .with_cfg(cfg)
        .build_mainnet_with_inspector(CallTracer::default())
}

/// Runs `env` traced, leaving its effects to commit (or not) to the caller.
fn traced(
    evm: &mut Evm<'_>,
    env: TxEnv,
    tracer: Tracer,
) -> Result<(Value, state_transition::revm::state::EvmState), RpcError> {
    let gas_limit = env.gas_limit;
    let only_top = matches!(tracer, Tracer::Call { only_top: true });
    evm.set_inspector(CallTracer::new(only_top));
    let result = evm.inspect_one_tx(env).map_err(evm_error)?;
    let state = evm.finalize();
    let value = match tracer {
        Tracer::Call { .. } => {
            let mut root = evm
                .inspector
                .take()
                .ok_or_else(|| RpcError::internal("the transaction entered no frame"))?;
            // geth reports the transaction's gas, intrinsic cost included.
            root.gas = U64::from(gas_limit);
            root.gas_used = U64::from(result.tx_gas_used());
            to_json(root)?
        }
        Tracer::Prestate => to_json(
            prestate::prestate(&mut evm.ctx.journaled_state.database, &state)
                .map_err(RpcError::internal)?,
        )?,
    };
    Ok((value, state))
}

/// The context block `number` was built in, from its header.
fn context_of(block: &sequencer::StoredBlock) -> BlockContext {
    let h = &block.header;
    BlockContext {
        number: h.number,
        timestamp: h.timestamp,
        parent_hash: h.parent_hash,
        beneficiary: h.beneficiary,
        gas_limit: h.gas_limit,
        base_fee: h.base_fee_per_gas.unwrap_or_default(),
        prevrandao: h.mix_hash,
    }
}

/// Re-runs block `number` from the state before it, tracing each of its
/// transactions (or only the one at `only`).
fn trace_block(
    seq: &Sequencer,
    view: &ChainView,
    number: u64,
    only: Option<usize>,
    tracer: Tracer,
) -> Result<Vec<(B256, Value)>, RpcError> {
    let block = view
        .block(number)
        .map_err(RpcError::internal)?
        .ok_or_else(|| RpcError::server(format!("block {number} not found")))?;
    if block.txs.is_empty() {
        return Ok(Vec::new());
    }
    let parent = state_reads::past(view, number.saturating_sub(1))?;
    let db: &dyn StateReader = &parent;
    let mut evm = evm(seq.chain(), &context_of(&block), db, false);
    let mut out = Vec::new();
    for (i, tx) in block.txs.iter().enumerate() {
        let env = tx_env(&tx.envelope, tx.sender).map_err(RpcError::internal)?;
        if only.is_some_and(|o| o != i) {
            evm.transact_commit(env).map_err(evm_error)?;
            continue;
        }
        let (value, state) = traced(&mut evm, env, tracer)?;
        evm.commit(state);
        out.push((*tx.envelope.tx_hash(), value));
        if only == Some(i) {
            break;
        }
    }
    Ok(out)
}

/// Answers `method` (one of [`METHODS`]).
pub(super) async fn handle(
    state: &Arc<RpcState>,
    rc: &RequestCaller,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    let seq = state.sequencer.clone();
    match method {
        "debug_traceTransaction" => {
            let hash: B256 = p.at_most(2)?.req(0, "hash")?;
            let tracer = Tracer::of(p.opt(1, "options")?)?;
            blocking(move || {
                let v = seq.view().map_err(RpcError::internal)?;
                let (number, index) = v
                    .tx_location(&hash)
                    .map_err(RpcError::internal)?
                    .ok_or_else(|| RpcError::server(format!("transaction {hash} not found")))?;
                let mut traces = trace_block(&seq, &v, number, Some(index), tracer)?;
                traces
                    .pop()
                    .map(|(_, t)| t)
                    .ok_or_else(|| RpcError::internal(format!("{hash} is not in block {number}")))
            })
            .await
        }
        "debug_traceBlockByNumber" => {
            let tag: BlockNumberOrTag = p.at_most(2)?.req(0, "block")?;
            let tracer = Tracer::of(p.opt(1, "options")?)?;
            blocking(move || {
                let v = seq.view().map_err(RpcError::internal)?;
                let number = resolve(&v, tag)?;
                let traces = trace_block(&seq, &v, number, None, tracer)?;
                Ok(Value::Array(
                    traces
                        .into_iter()
                        .map(|(hash, result)| json!({ "txHash": hash, "result": result }))
                        .collect(),
                ))
            })
            .await
        }
        _ => {
            let mut req: TransactionRequest = p.at_most(3)?.req(0, "transaction")?;
            let block: Option<BlockId> = p.opt(1, "block")?;
            let tracer = Tracer::of(p.opt(2, "options")?)?;
            let v = view(state)?;
            let at = state_reads::requested(&v, block)?;
            drop(v);
            let from = simulation_sender(state, rc, &mut req).await?;
            let guard = state.access.guard(rc, ExecMode::Read, from, 0, false);
            blocking(move || {
                // Every frame put to the policies, as eth_call would; a
                // revert is still traced, a denial is the caller's error.
                if let Err(e) = call::call(&seq, &req, Some(&guard), at) {
                    if e.code == code::FORBIDDEN || e.code == code::INTERNAL {
                        return Err(e);
                    }
                }
                let v = seq.view().map_err(RpcError::internal)?;
                let basis = Basis::new(&seq, &v, &req, at)?;
                let gas = req.gas.unwrap_or(seq.chain().block_gas_limit);
                let mut evm = evm(seq.chain(), &basis.ctx, basis.db(), true);
                let env = call_env(&req, gas, seq.chain().chain_id);
                traced(&mut evm, env, tracer).map(|(value, _)| value)
            })
            .await
        }
    }
}

/// Runs `work` off the async workers, as the request (decisions it makes
/// carry the request's ids).
async fn blocking<F>(work: F) -> Result<Value, RpcError>
where
    F: FnOnce() -> Result<Value, RpcError> + Send + 'static,
{
    let ctx = RequestContext::current();
    tokio::task::spawn_blocking(move || match ctx {
        Some(c) => REQUEST.sync_scope(c, work),
        None => work(),
    })
    .await
    .map_err(RpcError::internal)?
}
