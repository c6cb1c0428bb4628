//! `prividium bench`: the load generator (the `loadgen` crate) against a
//! node, or any JSON-RPC endpoint such as anvil. Exits non-zero when the
//! endpoint rejected transactions, after printing what was measured.

use anyhow::{bail, Result};

/// Runs the load and prints the report.
pub async fn run(args: loadgen::Args) -> Result<()> {
    let json = args.json;
    let report = loadgen::run(args).await?;
    println!("{}", report.render(json));
    if report.rejected() > 0 {
        bail!("{} transactions were rejected", report.rejected());
    }
    Ok(())
}
