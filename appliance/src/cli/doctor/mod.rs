//! `prividium doctor`: before a start, after a change, or when something
//! is off, one line per check of what the node depends on, and exit 1 if
//! any fails. It reads and asks; it never writes to the data directory or
//! the databases (the audit schema is inspected read-only).

mod checks;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// `prividium doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The production configuration file: checks it and everything it names.
    #[arg(long, env = "PRIVIDIUM_CONFIG", required_unless_present = "data_dir")]
    pub config: Option<PathBuf>,
    /// Without --config: a data directory (`prividium dev`'s), checked with
    /// the settings the node recorded there.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Fail when the TLS certificate expires within this many days.
    #[arg(long, default_value_t = 14)]
    pub cert_min_days: u64,
    /// Fail when the data directory's file system has less free space (GiB).
    #[arg(long, default_value_t = 2)]
    pub min_free_gib: u64,
    /// Fail when an IdP's clock differs from this host's by more (seconds).
    #[arg(long, default_value_t = 30)]
    pub max_clock_skew_secs: u64,
    /// Least balance the settlement signer needs (wei).
    #[arg(long, default_value_t = 10_000_000_000_000_000)]
    pub min_signer_wei: u128,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Works.
    Ok,
    /// Broken: the node would not start, or would serve degraded.
    Fail,
    /// Not configured here.
    Skip,
}

/// One line of the report.
#[derive(Debug)]
pub struct Finding {
    verdict: Verdict,
    name: String,
    detail: String,
}

impl Finding {
    fn new(verdict: Verdict, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            verdict,
            name: name.into(),
            detail: detail.into(),
        }
    }

    fn of(name: impl Into<String>, r: Result<String, String>) -> Self {
        match r {
            Ok(d) => Self::new(Verdict::Ok, name, d),
            Err(d) => Self::new(Verdict::Fail, name, d),
        }
    }
}

/// Runs every check and prints the report; an error when any failed.
pub async fn run(args: Args) -> Result<()> {
    let plan = checks::Plan::read(&args)?;
    let findings = plan.check(&args).await;
    for f in &findings {
        let tag = match f.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        println!("{tag}  {:<22} {}", f.name, f.detail);
    }
    let failed = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    if failed > 0 {
        bail!("{failed} of {} checks failed", findings.len());
    }
    println!("all {} checks passed", findings.len());
    Ok(())
}

/// Reads the configuration file, keeping its semantic problems for the
/// report rather than stopping at them.
fn read_config(path: &std::path::Path) -> Result<(crate::config::Config, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config = crate::config::Config::parse_only(&path.display().to_string(), &text)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let problems = config.problems();
    Ok((config, problems))
}
