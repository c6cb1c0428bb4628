//! `prividium verify-disclosure`: checks a disclosure of either kind with
//! public data only, the file and the settlement contract. An exact
//! disclosure's Merkle proofs are checked here; a predicate disclosure's
//! zkVM proof against the published predicate program. Either way the
//! state it speaks of must be the one settled for its batch.

use super::disclose::describe;
use alloy_primitives::{Address, B256, U256};
use anyhow::{bail, Context, Result};
use clap::Parser;
use disclosure::{AnyDisclosure, PredicateDisclosure, Statement};
use gateway_bridge::{EvmSettlement, SendPolicy, SettlementClient};
use std::{path::PathBuf, time::Instant};

/// The predicate program id published for this release.
const PUBLISHED_PREDICATE_ID: &str = include_str!("../../../disclosure/guest/PROGRAM_ID");

/// `prividium verify-disclosure`.
#[derive(Debug, Parser)]
pub struct VerifyArgs {
    /// The disclosure file.
    pub file: PathBuf,
    /// Settlement chain JSON-RPC URL.
    #[arg(long)]
    pub settlement_rpc: String,
    /// The PrividiumSettlement contract the chain settles on.
    #[arg(long)]
    pub contract: Address,
    /// Accept a token balance only from this balances slot (the layout the
    /// verifier accepts for the token).
    #[arg(long)]
    pub balances_slot: Option<U256>,
    /// Accept the fact only if the proven account's code has this hash
    /// (the audited build of the token).
    #[arg(long)]
    pub code_hash: Option<B256>,
    /// Accept a predicate proof from this program (default: the one
    /// published with this release, `disclosure/guest/PROGRAM_ID`).
    #[arg(long)]
    pub program_id: Option<B256>,
}

/// Verifies; an error (non-zero exit) unless every proof holds and the
/// state root is the one settled for the batch.
pub async fn verify(args: VerifyArgs) -> Result<()> {
    let raw =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let (description, anchor, commitment) = match AnyDisclosure::parse(&raw)? {
        AnyDisclosure::Exact(d) => {
            let fact = disclosure::check(&d).context("the disclosure does NOT verify")?;
            let slot = match &fact.statement {
                Statement::TokenBalance { balances_slot, .. } => Some(*balances_slot),
                _ => None,
            };
            pins(&args, slot, fact.code_hash)?;
            let a = fact.anchor;
            let description = format!(
                "{} (state root {}, code hash {})",
                describe(&fact.statement, a.batch, a.chain_id),
                a.state_root,
                fact.code_hash
            );
            (description, (a.chain_id, a.batch), fact.commitment)
        }
        AnyDisclosure::Predicate(p) => predicate(&args, &p)?,
    };
    let (chain, batch) = anchor;
    let client = EvmSettlement::new(
        &args.settlement_rpc,
        args.contract,
        None,
        SendPolicy::default(),
    )?;
    let Some(settled) = client.batch(chain, batch).await? else {
        bail!(
            "the disclosure does NOT verify: batch {batch} of chain {chain} is not settled on {}",
            args.contract
        );
    };
    if settled.outputs.new_commitment != commitment {
        bail!(
            "the disclosure does NOT verify: batch {batch} settled state commitment {}, the disclosure is about {commitment}",
            settled.outputs.new_commitment
        );
    }
    println!("valid: {description}, settled commitment {commitment}");
    Ok(())
}

/// The verifier's own pins on the layout and the code.
fn pins(args: &VerifyArgs, slot: Option<U256>, code_hash: B256) -> Result<()> {
    if let (Some(want), Some(slot)) = (args.balances_slot, slot) {
        if slot != want {
            bail!("the disclosure does NOT verify: it reads balances slot {slot}, not the accepted {want}");
        }
    }
    if let Some(want) = args.code_hash {
        if code_hash != want {
            bail!("the disclosure does NOT verify: the proven account's code hash is {code_hash}, not {want}");
        }
    }
    Ok(())
}

/// Checks a predicate disclosure's proof; what it claims, its batch and
/// the commitment it names.
fn predicate(args: &VerifyArgs, p: &PredicateDisclosure) -> Result<(String, (u64, u64), B256)> {
    let published: B256 = PUBLISHED_PREDICATE_ID
        .trim()
        .parse()
        .context("this build's predicate PROGRAM_ID is unreadable")?;
    let pinned = args.program_id.unwrap_or(published);
    let claim = p.claim.claim();
    pins(args, Some(claim.balances_slot), claim.code_hash)?;
    let started = Instant::now();
    proof::verify_proof_digest(&p.proof, claim.digest(), pinned).with_context(|| {
        format!("the disclosure does NOT verify against predicate program {pinned}")
    })?;
    let c = &p.claim;
    let description = format!(
        "{} held {} {} units of token {} (balances mapping at slot {}) at the end of batch {} of chain {}; the balance itself is not disclosed (zkVM proof by predicate program {pinned}, code hash {}, checked in {} ms)",
        c.account,
        c.comparison.words(),
        c.threshold,
        c.token,
        c.balances_slot,
        c.batch,
        c.chain_id,
        c.code_hash,
        started.elapsed().as_millis()
    );
    Ok((description, (c.chain_id, c.batch), c.state_commitment))
}
