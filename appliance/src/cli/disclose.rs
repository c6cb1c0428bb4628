//! `prividium disclose` asks a running node for a selective disclosure (one
//! balance or storage word at the end of a settled batch, with Merkle
//! proofs); `prividium verify-disclosure` checks one with public data only:
//! the file and the settlement contract.

use alloy_primitives::{Address, B256, U256};
use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Parser, Subcommand};
use disclosure::{ClaimJson, Comparison, Disclosure, PredicateDisclosure, Statement};
use loadgen::NodeRpc;
use proof::verify_proof_digest;
use serde_json::json;
use std::path::PathBuf;

/// `prividium disclose`.
#[derive(Debug, Parser)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// An account's ETH balance.
    Balance {
        #[command(flatten)]
        common: Common,
    },
    /// An account's balance of a token, read from the token's balances
    /// mapping (its declared storage layout), never by running its code.
    TokenBalance {
        #[command(flatten)]
        common: Common,
        /// The token contract.
        #[arg(long)]
        token: Address,
        /// Storage slot of the token's `mapping(address => uint256)`
        /// balances (BankToken: 3; `solc --storage-layout` shows it).
        #[arg(long)]
        balances_slot: U256,
    },
    /// One storage word of a contract.
    Storage {
        #[command(flatten)]
        common: Common,
        /// The slot (32-byte hex).
        #[arg(long)]
        slot: B256,
    },
}

#[derive(Debug, ClapArgs)]
struct Common {
    /// The account the fact is about.
    #[arg(long)]
    account: Address,
    /// The settled batch at whose end the fact holds.
    #[arg(long)]
    batch: u64,
    /// The node's JSON-RPC URL.
    #[arg(long)]
    rpc: String,
    /// PEM of the CA the node's certificate is issued by (default: the
    /// system's roots).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Environment variable with the caller's bearer credential (an OIDC
    /// access token or an API key) for a principal the policies allow to
    /// `disclose`.
    #[arg(long, default_value = "PRIVIDIUM_TOKEN")]
    token_env: String,
    /// Write the disclosure here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Asks the node; writes the disclosure JSON.
pub async fn run(args: Args) -> Result<()> {
    let (common, request) = match &args.what {
        What::Balance { common } => (common, json!({"kind": "balance"})),
        What::TokenBalance {
            common,
            token,
            balances_slot,
        } => (
            common,
            json!({"kind": "token-balance", "token": token, "balancesSlot": balances_slot}),
        ),
        What::Storage { common, slot } => (common, json!({"kind": "storage", "slot": slot})),
    };
    let mut request = request;
    request["account"] = json!(common.account);
    request["batch"] = json!(common.batch);
    let Ok(token) = std::env::var(&common.token_env) else {
        bail!("set {} to your access token or API key", common.token_env);
    };
    let node = NodeRpc::new(
        &common.rpc,
        Some(format!("Bearer {}", token.trim())),
        common.ca_cert.as_deref(),
        1,
    )?;
    let answer = node.call("prividium_disclose", json!([request])).await?;
    // Checked here too: what is handed on must verify.
    let d: Disclosure = serde_json::from_value(answer).context("the node's answer")?;
    disclosure::check(&d).context("the node's disclosure does not verify")?;
    let text = serde_json::to_string_pretty(&d)? + "\n";
    match &common.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    eprintln!(
        "{}",
        describe(&d.statement, d.anchor.batch, d.anchor.chain_id)
    );
    Ok(())
}

/// `prividium prove-disclosure`.
#[derive(Debug, Parser)]
pub struct ProveArgs {
    /// A token-balance disclosure (from `prividium disclose token-balance`):
    /// its proofs are the predicate program's private input.
    pub file: PathBuf,
    /// Prove that the balance is at least this.
    #[arg(long, conflicts_with = "at_most", required_unless_present = "at_most")]
    pub at_least: Option<U256>,
    /// Prove that the balance is at most this.
    #[arg(long)]
    pub at_most: Option<U256>,
    /// The predicate program built by `prover/guest/build.sh --predicate`.
    #[arg(long, default_value = "disclosure/guest/out/predicate-program.elf")]
    pub guest_elf: PathBuf,
    /// Where to write the predicate disclosure (it holds no balance and no
    /// Merkle proof: only the claim and the zkVM proof).
    #[arg(long)]
    pub out: PathBuf,
}

/// Proves the predicate over `file`'s proofs; refuses a false statement.
pub async fn prove(args: ProveArgs) -> Result<()> {
    tokio::task::spawn_blocking(move || prove_blocking(&args)).await?
}

fn prove_blocking(args: &ProveArgs) -> Result<()> {
    let raw =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let exact = Disclosure::parse(&raw)?;
    let (comparison, threshold) = match (args.at_least, args.at_most) {
        (Some(x), None) => (Comparison::AtLeast, x),
        (None, Some(x)) => (Comparison::AtMost, x),
        _ => bail!("give one of --at-least and --at-most"),
    };
    let input = disclosure::predicate_input(&exact, comparison, threshold)?;
    // The program runs this same function: a statement it refuses here has
    // no proof there either, so no minutes are spent finding that out.
    let claim = disclosure::predicate::evaluate(&input)
        .map_err(|e| anyhow::anyhow!("the predicate program refuses: {e}"))?;
    let claim_json = ClaimJson::from_claim(&claim)?;
    let (program_id, proof) = prove_claim(&args.guest_elf, &input, &claim)?;
    let file = PredicateDisclosure {
        format: disclosure::PREDICATE_FORMAT.into(),
        claim: claim_json,
        program_id,
        proof: proof.into(),
    };
    std::fs::write(&args.out, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}

/// Proves `input` with the predicate program and checks the proof; the
/// program id and the proof file's bytes.
#[cfg(feature = "zkvm")]
fn prove_claim(
    elf: &std::path::Path,
    input: &disclosure::predicate::PredicateInput,
    claim: &disclosure::predicate::Claim,
) -> Result<(B256, Vec<u8>)> {
    use prover::ZkBackend;
    let elf = std::fs::read(elf).with_context(|| {
        format!(
            "reading {} (build it: prover/guest/build.sh --predicate)",
            elf.display()
        )
    })?;
    let started = std::time::Instant::now();
    let backend = prover::OpenVmBackend::new(&elf, prover::OpenVmConfig::default())?;
    let keygen = started.elapsed();
    let witness = alloy_rlp::encode(input);
    let run = backend.execute(&witness)?;
    if run.digest != claim.digest() {
        bail!(
            "the predicate program revealed {}, not the claim's digest {}",
            run.digest,
            claim.digest()
        );
    }
    let started = std::time::Instant::now();
    let proof = backend.prove(&witness)?;
    let proving = started.elapsed();
    let started = std::time::Instant::now();
    verify_proof_digest(&proof, claim.digest(), backend.program_id())?;
    eprintln!(
        "proved: program {}, {} cycles, keys {:.1} s, proof {:.1} s, {} bytes, verified in {} ms",
        backend.program_id(),
        run.cycles.unwrap_or_default(),
        keygen.as_secs_f64(),
        proving.as_secs_f64(),
        proof.len(),
        started.elapsed().as_millis()
    );
    Ok((backend.program_id(), proof))
}

#[cfg(not(feature = "zkvm"))]
fn prove_claim(
    _: &std::path::Path,
    _: &disclosure::predicate::PredicateInput,
    _: &disclosure::predicate::Claim,
) -> Result<(B256, Vec<u8>)> {
    bail!("this build has no zkVM: rebuild with the `zkvm` feature")
}

pub(super) fn describe(s: &Statement, batch: u64, chain: u64) -> String {
    let end = format!("at the end of batch {batch} of chain {chain}");
    match s {
        Statement::Balance { account, value } => {
            format!("{account} held {value} wei {end}")
        }
        Statement::TokenBalance {
            account,
            token,
            balances_slot,
            value,
        } => format!(
            "{account} held {value} units of token {token} (balances mapping at slot {balances_slot}) {end}"
        ),
        Statement::Storage {
            account,
            slot,
            value,
        } => format!("storage slot {slot} of {account} was {value} {end}"),
    }
}
