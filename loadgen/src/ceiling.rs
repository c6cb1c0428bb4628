//! This machine's ceiling for a scenario: the work no node can skip for a
//! transaction, measured in the same run as the load: decoding it and
//! recovering its signer, and executing it. The cores divided by that time
//! is the most any node could sustain here; a node's share of it says how
//! much of its CPU goes to everything else (TLS, JSON, policy, audit,
//! durability, roots).

use crate::{scenario::Prepared, LoadgenError, Result};
use alloy_consensus::{transaction::SignerRecoverable, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, U256};
use state_transition::{
    revm::{primitives::hardfork::SpecId, state::AccountInfo},
    BlockContext, BlockExecutor, ChainSpec, FeeMode, MemoryState,
};
use std::time::{Duration, Instant};

/// Transactions per block of the replica: about what a 100 ms block holds
/// flat out, so per-block costs are amortized as on the node.
const BLOCK_TXS: usize = 1_000;

/// What the ceiling measurement found (single thread, per transaction).
#[derive(Debug, serde::Serialize)]
pub(super) struct Ceiling {
    pub(super) recover_us_per_tx: f64,
    pub(super) execute_us_per_tx: f64,
    pub(super) cores: usize,
    /// cores / (recover + execute).
    pub(super) tps: f64,
}

fn context(chain: &ChainSpec, number: u64) -> BlockContext {
    BlockContext {
        number,
        timestamp: 1_700_000_000 + number,
        parent_hash: B256::ZERO,
        beneficiary: Address::ZERO,
        gas_limit: chain.block_gas_limit,
        base_fee: 0,
        prevrandao: B256::ZERO,
    }
}

/// Executes `txs` as one block on `state` and applies the result; returns
/// the time spent in execution alone (not sealing or applying).
fn run_block(
    chain: &ChainSpec,
    state: &mut MemoryState,
    number: u64,
    txs: Vec<(TxEnvelope, Address)>,
) -> Result<Duration> {
    let mut exec = BlockExecutor::new(chain, context(chain, number), &*state);
    let mut spent = Duration::ZERO;
    for (tx, sender) in txs {
        let hash = *tx.tx_hash();
        let t = Instant::now();
        let r = exec.execute(tx, sender);
        spent += t.elapsed();
        r.map_err(|e| LoadgenError::Ceiling(format!("replica rejected {hash}: {e}")))?;
    }
    let outcome = exec.finish();
    state.apply(&outcome.diff);
    Ok(spent)
}

/// Replays the scenario's setup in memory (untimed), then times decoding
/// and recovering every measured transaction, and executing them in blocks.
pub(super) fn measure(p: &Prepared) -> Result<Ceiling> {
    let chain = ChainSpec {
        chain_id: p.chain_id,
        spec: SpecId::PRAGUE,
        fee_mode: FeeMode::Zero,
        block_gas_limit: 1_000_000_000,
    };
    let mut state = MemoryState::default();
    state.accounts.insert(
        p.funder,
        AccountInfo {
            balance: U256::from(u128::MAX),
            nonce: p.funder_nonce,
            ..Default::default()
        },
    );
    // One block per setup transaction: minting to a thousand holders at a
    // time fills a block.
    let mut number = 1;
    for tx in &p.setup {
        run_block(&chain, &mut state, number, vec![(tx.clone(), p.funder)]).map_err(
            |e| match e {
                LoadgenError::Ceiling(why) => {
                    LoadgenError::Ceiling(format!("replaying the setup: {why}"))
                }
                other => other,
            },
        )?;
        number += 1;
    }

    let started = Instant::now();
    let mut decoded = Vec::with_capacity(p.txs.len());
    for (hash, raw) in &p.txs {
        let unreadable = |e: &dyn std::fmt::Display| LoadgenError::Ceiling(format!("{hash}: {e}"));
        let tx = TxEnvelope::decode_2718(&mut raw.as_ref()).map_err(|e| unreadable(&e))?;
        let sender = tx.recover_signer().map_err(|e| unreadable(&e))?;
        decoded.push((tx, sender));
        if decoded.last().map(|(tx, _)| tx.tx_hash()) != Some(hash) {
            return Err(unreadable(&"decoded to a different hash"));
        }
    }
    let recover = started.elapsed();

    let mut execute = Duration::ZERO;
    let mut rest = decoded.into_iter().peekable();
    while rest.peek().is_some() {
        let block: Vec<_> = rest.by_ref().take(BLOCK_TXS).collect();
        execute += run_block(&chain, &mut state, number, block)?;
        number += 1;
    }
    let n = p.txs.len().max(1) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let recover_us_per_tx = recover.as_secs_f64() * 1e6 / n;
    let execute_us_per_tx = execute.as_secs_f64() * 1e6 / n;
    Ok(Ceiling {
        recover_us_per_tx,
        execute_us_per_tx,
        cores,
        tps: cores as f64 * 1e6 / (recover_us_per_tx + execute_us_per_tx),
    })
}
