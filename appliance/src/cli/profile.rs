//! `prividium prover profile`: where the batch program spends its cycles on
//! one witness, by function, from a sampled run in the zkVM's interpreter
//! (no proof). The figures behind each cut to the program's cycle count.
//!
//! ```sh
//! prover/guest/build.sh --frame-pointers
//! prividium prover profile prover/corpus/erc20-100.witness
//! ```

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Arguments of `prividium prover profile`.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// A batch witness (`*.witness`, e.g. from prover/corpus).
    witness: PathBuf,
    /// The guest to run: by default the frame-pointer build
    /// (`prover/guest/build.sh --frame-pointers`), whose call stacks give
    /// inclusive cycles; the proven guest gives self cycles only.
    #[arg(long, default_value = "prover/guest/out/batch-program-profile.elf")]
    guest_elf: PathBuf,
    /// Instructions between samples (a prime, so loops do not alias).
    #[arg(long, default_value_t = 997)]
    period: u64,
    /// Functions listed, by inclusive and by self cycles.
    #[arg(long, default_value_t = 40)]
    top: usize,
}

/// Runs the subcommand.
pub async fn run(args: ProfileArgs) -> Result<()> {
    if args.period == 0 {
        bail!("--period must be at least 1");
    }
    tokio::task::spawn_blocking(move || profile(&args)).await?
}

#[cfg(feature = "zkvm")]
fn profile(args: &ProfileArgs) -> Result<()> {
    let elf = std::fs::read(&args.guest_elf)
        .with_context(|| format!("reading guest {}", args.guest_elf.display()))?;
    let witness = std::fs::read(&args.witness)
        .with_context(|| format!("reading {}", args.witness.display()))?;
    let decoded = state_transition::BatchWitness::decode(&witness)
        .with_context(|| format!("{} is not a batch witness", args.witness.display()))?;
    let transactions: usize = decoded.blocks.iter().map(|b| b.transactions.len()).sum();
    let profile = prover::profile_guest(&elf, &witness, args.period)?;
    let total = profile.total_cycles.max(1) as f64;
    println!("program {}", profile.program_id);
    println!(
        "{}: {} transactions, {} cycles ({} per transaction), sampled every {} instructions{}",
        args.witness.display(),
        transactions,
        profile.total_cycles,
        profile.total_cycles / transactions.max(1) as u64,
        profile.period,
        if profile.frame_pointers {
            ""
        } else {
            " (no frame pointers: inclusive cycles see one caller)"
        }
    );
    let row = |f: &prover::FunctionCycles| {
        println!(
            "{:>6.2}% {:>6.2}% {:>12} {:>12}  {}",
            100.0 * f.inclusive_cycles as f64 / total,
            100.0 * f.self_cycles as f64 / total,
            f.inclusive_cycles,
            f.self_cycles,
            f.name
        );
    };
    println!("\nby inclusive cycles\n  incl%  self%    inclusive         self  function");
    profile.functions.iter().take(args.top).for_each(row);
    let mut by_self: Vec<&prover::FunctionCycles> = profile.functions.iter().collect();
    by_self.sort_by_key(|f| std::cmp::Reverse(f.self_cycles));
    println!("\nby self cycles\n  incl%  self%    inclusive         self  function");
    by_self.into_iter().take(args.top).for_each(row);
    println!("\nframeless leaves by caller\n  cycle%       cycles  leaf <- caller");
    for (leaf, caller, cycles) in profile.leaf_callers.iter().take(args.top) {
        println!(
            "{:>7.2}% {:>12}  {leaf} <- {caller}",
            100.0 * *cycles as f64 / total,
            cycles
        );
    }
    Ok(())
}

#[cfg(not(feature = "zkvm"))]
fn profile(_: &ProfileArgs) -> Result<()> {
    bail!("this build has no zkVM: rebuild with the `zkvm` feature")
}
