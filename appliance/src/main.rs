//! `prividium`: the private-chain appliance binary.
//!
//! Subcommands: `dev` (embedded defaults), `up` (production, from a config
//! file), `replay` (rebuild derived state), `bench` (load generator),
//! `prover worker` (proves from the shared queue on a proving machine), and
//! the operator and counterparty tools.

// A binary: `pub` marks what sibling modules use, nothing is exported.
#![allow(unreachable_pub)]

mod access_setup;
mod audit_trail;
mod backup_plan;
mod chain_files;
mod cli;
mod config;
mod data_dir;
mod disk;
mod keys;
mod node;
mod proving;
mod proving_status;
mod settling;
mod tls;

use clap::{Parser, Subcommand};

// Every request allocates dozens of small buffers (JSON values, audit
// events, policy entities) across the RPC threads; glibc's allocator cost
// about 12 % of the node's CPU per transaction under load (perf,
// scripts/profile-node.sh), mimalloc's thread-local pages a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for
/// them on its arenas, and the kernel then zeroes 2 MiB on the first touch
/// of each: under load (blocks of hundreds of transactions, the store's
/// page buffers) that zeroing was a tenth of the node's CPU (perf,
/// `scripts/profile-node.sh --scenario erc20`), where 4 KiB pages cost it
/// about a fortieth. Failure only leaves the kernel's default.
fn no_transparent_huge_pages() -> std::io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no
    // memory of ours.
    match unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "prividium",
    version,
    about = "On-prem private EVM chain appliance"
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, global = true, env = "PRIVIDIUM_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a development chain with embedded defaults.
    Dev(Box<cli::dev::Args>),
    /// Run the appliance from a configuration file.
    Up(cli::up::Args),
    /// Rebuild derived state from the block log and print the state root.
    Replay(cli::replay::Args),
    /// Load-generate against a running node.
    Bench(loadgen::Args),
    /// Manage API keys for machines.
    #[command(subcommand)]
    Keys(cli::keys::Cmd),
    /// Check, reload and explain access policies.
    #[command(subcommand)]
    Policies(cli::policies::Cmd),
    /// Query, export, prove and verify the audit log; legal holds.
    Audit(cli::audit::Args),
    /// Check a batch proof as a counterparty: exit 0 only if it proves
    /// exactly the given outputs (or the commitment on the settlement
    /// chain) for the pinned program.
    Verify(cli::verify::Args),
    /// Ask the node for a selective disclosure: one balance or storage word
    /// at the end of a settled batch, with Merkle proofs.
    Disclose(cli::disclose::Args),
    /// Check a disclosure with public data only (the file and the
    /// settlement contract); exit 0 only if it holds.
    VerifyDisclosure(cli::verify_disclosure::VerifyArgs),
    /// Prove "balance at least / at most X" over a token-balance
    /// disclosure with the zkVM predicate program: the file holds neither
    /// the balance nor the Merkle proofs.
    ProveDisclosure(cli::disclose::ProveArgs),
    /// The settlement chain: the bridge's key, deploying and registering
    /// the contract, what it holds.
    Settlement(cli::settlement::Args),
    /// Proving machines: `prover worker` proves batches from the node's
    /// shared queue.
    #[command(subcommand)]
    Prover(cli::prover::Cmd),
    /// Check everything the node depends on, one line each; exit 1 if any
    /// check fails.
    Doctor(cli::doctor::Args),
    /// Copy the data directory while the node runs (or is stopped): a
    /// consistent, encrypted point-in-time backup with a manifest of hashes.
    Backup(cli::backup::BackupArgs),
    /// Restore a backup into a new data directory; a damaged or incomplete
    /// backup is refused, naming the file.
    Restore(cli::backup::RestoreArgs),
}

fn main() -> std::process::ExitCode {
    let renamed = cli::legacy_env::adopt();
    let cli = Cli::parse();
    // Only the node was measured; provers and tools keep the kernel's
    // default (the setting is inherited across exec).
    let huge_pages = match cli.cmd {
        Cmd::Dev(_) | Cmd::Up(_) => no_transparent_huge_pages(),
        _ => Ok(()),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            // vaultrs logs every failed KMS call at ERROR; the node reports
            // those itself (sealed, retrying), so its own noise is dropped.
            tracing_subscriber::EnvFilter::try_new(format!("{},rustify=off,vaultrs=off", cli.log))
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    for r in &renamed {
        tracing::warn!("{}", r.warning());
    }
    if let Err(e) = huge_pages {
        tracing::debug!(error = %e, "transparent huge pages left as the kernel sets them");
    }
    // Both ring and aws-lc-rs end up linked; pick one explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.cmd {
            Cmd::Dev(args) => cli::dev::run(*args).await,
            Cmd::Up(args) => cli::up::run(args).await,
            Cmd::Replay(args) => {
                let cipher = keys::at_rest::recorded_cipher(&args.data_dir).await?;
                tokio::task::spawn_blocking(move || cli::replay::run(args, cipher)).await?
            }
            Cmd::Bench(args) => cli::bench::run(args).await,
            Cmd::Keys(args) => cli::keys::run(args).await,
            Cmd::Policies(args) => cli::policies::run(args),
            Cmd::Audit(args) => cli::audit::run(args).await,
            Cmd::Verify(args) => cli::verify::run(args).await,
            Cmd::Disclose(args) => cli::disclose::run(args).await,
            Cmd::VerifyDisclosure(args) => cli::verify_disclosure::verify(args).await,
            Cmd::ProveDisclosure(args) => cli::disclose::prove(args).await,
            Cmd::Settlement(args) => cli::settlement::run(args).await,
            Cmd::Prover(args) => cli::prover::run(args).await,
            Cmd::Doctor(args) => cli::doctor::run(args).await,
            Cmd::Backup(args) => cli::backup::backup(args).await,
            Cmd::Restore(args) => cli::backup::restore(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
