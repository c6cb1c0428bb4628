//! `prividium verify`: a counterparty checks a batch proof with public data
//! only: either the outputs file and the pinned program id, or the
//! commitment the settlement contract holds for the proof.

use alloy_primitives::{Address, B256};
use anyhow::{bail, Context, Result};
use clap::Parser;
use gateway_bridge::{EvmSettlement, SendPolicy};
use proof::{verify_proof, OutputsFile};
use std::{path::PathBuf, time::Instant};

/// Arguments.
#[derive(Debug, Parser)]
pub struct Args {
    /// `batch-N.proof`.
    #[arg(long)]
    pub proof: PathBuf,
    /// `batch-N.json` (the batch's full outputs, as the bank's auditors
    /// receive them).
    #[arg(long, required_unless_present = "settlement_rpc")]
    pub outputs: Option<PathBuf>,
    /// The program id the verifier pins (published with each release);
    /// with --settlement-rpc it must also be the settled batch's program.
    #[arg(long = "image-id", required_unless_present = "settlement_rpc")]
    pub image_id: Option<B256>,
    /// Check against the settlement chain instead of an outputs file.
    #[arg(long, requires_all = ["contract", "batch"], conflicts_with = "outputs")]
    pub settlement_rpc: Option<String>,
    /// The PrividiumSettlement contract.
    #[arg(long)]
    pub contract: Option<Address>,
    /// The batch number the proof is claimed to be for.
    #[arg(long)]
    pub batch: Option<u64>,
    /// The private chain's id (optional: the contract knows the proof).
    #[arg(long)]
    pub chain_id: Option<u64>,
}

/// Verifies; an error (non-zero exit) unless the proof is valid for exactly
/// these outputs (or the settled commitment) and this program.
pub async fn run(args: Args) -> Result<()> {
    let proof =
        std::fs::read(&args.proof).with_context(|| format!("reading {}", args.proof.display()))?;
    match (&args.settlement_rpc, &args.outputs, args.image_id) {
        (Some(rpc), _, pinned) => from_settlement(&args, rpc, &proof, pinned).await,
        (None, Some(outputs), Some(image_id)) => from_file(outputs, &proof, image_id),
        _ => bail!("give --outputs and --image-id, or --settlement-rpc, --contract and --batch"),
    }
}

fn from_file(outputs: &PathBuf, proof: &[u8], image_id: B256) -> Result<()> {
    let raw = std::fs::read(outputs).with_context(|| format!("reading {}", outputs.display()))?;
    let file: OutputsFile = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not a batch outputs file", outputs.display()))?;
    let outputs = file.outputs();
    let started = Instant::now();
    verify_proof(proof, &outputs, image_id)
        .with_context(|| format!("batch {} does NOT verify", outputs.batch_number))?;
    println!(
        "valid: batch {} of chain {} (blocks {}-{}), state root {} -> {}, outputs digest {}, program {} ({} ms)",
        outputs.batch_number,
        outputs.chain_id,
        outputs.first_block,
        outputs.last_block,
        outputs.prev_state_root,
        outputs.new_state_root,
        outputs.digest(),
        image_id,
        started.elapsed().as_millis()
    );
    Ok(())
}

async fn from_settlement(args: &Args, rpc: &str, proof: &[u8], pinned: Option<B256>) -> Result<()> {
    let (Some(contract), Some(batch)) = (args.contract, args.batch) else {
        bail!("--settlement-rpc needs --contract and --batch");
    };
    let client = EvmSettlement::new(rpc, contract, None, SendPolicy::default())?;
    let started = Instant::now();
    let verified = gateway_bridge::verify_settled(&client, proof, batch, args.chain_id)
        .await
        .with_context(|| format!("batch {batch} does NOT verify against {contract}"))?;
    let b = &verified.batch;
    if let Some(pinned) = pinned {
        if b.program_id != pinned {
            bail!(
                "batch {batch} was proven with program {}, not the pinned {pinned}",
                b.program_id
            );
        }
    }
    let o = &b.outputs;
    println!(
        "valid: batch {} of chain {}, state commitment {} -> {}, private commitment {}, outputs digest {}, program {} ({} ms)",
        o.batch_number,
        verified.chain_id,
        o.prev_commitment,
        o.new_commitment,
        o.private_commitment,
        b.outputs_digest,
        b.program_id,
        started.elapsed().as_millis()
    );
    Ok(())
}
