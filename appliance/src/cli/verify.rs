//! `prividium verify`: a counterparty checks a batch proof with public data
//! only (the proof file, the outputs file and the pinned program id).

use alloy_primitives::B256;
use anyhow::{Context, Result};
use clap::Parser;
use prover::OutputsFile;
use std::{path::PathBuf, time::Instant};

/// Arguments.
#[derive(Debug, Parser)]
pub struct Args {
    /// `batch-N.proof`.
    #[arg(long)]
    pub proof: PathBuf,
    /// `batch-N.json` (the public outputs).
    #[arg(long)]
    pub outputs: PathBuf,
    /// The program id the verifier pins (published with each release).
    #[arg(long = "image-id")]
    pub image_id: B256,
}

/// Verifies; an error (non-zero exit) unless the proof is valid for exactly
/// these outputs and this program.
pub fn run(args: Args) -> Result<()> {
    let proof =
        std::fs::read(&args.proof).with_context(|| format!("reading {}", args.proof.display()))?;
    let raw = std::fs::read(&args.outputs)
        .with_context(|| format!("reading {}", args.outputs.display()))?;
    let file: OutputsFile = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not a batch outputs file", args.outputs.display()))?;
    let outputs = file.outputs();
    let started = Instant::now();
    prover::verify_proof(&proof, &outputs, args.image_id)
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
        args.image_id,
        started.elapsed().as_millis()
    );
    Ok(())
}
