//! The predicate disclosure file, version 1: a claim and the predicate
//! program's proof of it. The balance, the proofs and the state root stay
//! with the bank.

use crate::{
    predicate::{Claim, PredicateInput, AT_LEAST, AT_MOST},
    Disclosure, DisclosureError, Statement,
};
use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};

/// The `format` of a predicate disclosure.
pub const PREDICATE_FORMAT: &str = "prividium-predicate-disclosure/1";

/// A predicate disclosure: a claim and its zkVM proof, no balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PredicateDisclosure {
    /// Always [`PREDICATE_FORMAT`].
    pub format: String,
    /// What is proven.
    pub claim: ClaimJson,
    /// The predicate program the proof is from (published in
    /// `disclosure/guest/PROGRAM_ID`).
    pub program_id: B256,
    /// The proof file's bytes (a `prover` proof envelope).
    pub proof: Bytes,
}

/// [`Claim`] as the file shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimJson {
    /// The private chain.
    pub chain_id: u64,
    /// The settled batch.
    pub batch: u64,
    /// The batch's settled `newCommitment`.
    pub state_commitment: B256,
    /// The holder.
    pub account: Address,
    /// The token.
    pub token: Address,
    /// Slot of the token's balances mapping.
    pub balances_slot: U256,
    /// `at-least` or `at-most`.
    pub comparison: Comparison,
    /// The bound.
    pub threshold: U256,
    /// The token's code hash.
    pub code_hash: B256,
}

/// The direction of the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    /// balance ≥ threshold.
    AtLeast,
    /// balance ≤ threshold.
    AtMost,
}

impl Comparison {
    /// The program's code for it.
    pub fn code(self) -> u8 {
        match self {
            Self::AtLeast => AT_LEAST,
            Self::AtMost => AT_MOST,
        }
    }

    /// "at least" / "at most".
    pub fn words(self) -> &'static str {
        match self {
            Self::AtLeast => "at least",
            Self::AtMost => "at most",
        }
    }
}

impl ClaimJson {
    /// The claim the proof must reveal the digest of.
    pub fn claim(&self) -> Claim {
        Claim {
            chain_id: self.chain_id,
            batch: self.batch,
            state_commitment: self.state_commitment,
            account: self.account,
            token: self.token,
            balances_slot: self.balances_slot,
            comparison: self.comparison.code(),
            threshold: self.threshold,
            code_hash: self.code_hash,
        }
    }

    /// The file's view of a claim the program revealed.
    pub fn from_claim(c: &Claim) -> Result<Self, DisclosureError> {
        let comparison = match c.comparison {
            AT_LEAST => Comparison::AtLeast,
            AT_MOST => Comparison::AtMost,
            other => {
                return Err(DisclosureError::Format(format!(
                    "unknown comparison {other}"
                )))
            }
        };
        Ok(Self {
            chain_id: c.chain_id,
            batch: c.batch,
            state_commitment: c.state_commitment,
            account: c.account,
            token: c.token,
            balances_slot: c.balances_slot,
            comparison,
            threshold: c.threshold,
            code_hash: c.code_hash,
        })
    }
}

/// The predicate program's input for "the token balance in `d` is
/// `comparison` `threshold`": `d`'s own proofs, which must verify.
pub fn predicate_input(
    d: &Disclosure,
    comparison: Comparison,
    threshold: U256,
) -> Result<PredicateInput, DisclosureError> {
    crate::check(d)?;
    let Statement::TokenBalance {
        account,
        token,
        balances_slot,
        value,
    } = d.statement
    else {
        return Err(DisclosureError::Format(
            "a predicate is proven over a token-balance disclosure".into(),
        ));
    };
    let p = &d.proof;
    let storage_proof = p
        .storage_proof
        .first()
        .map(|s| s.proof.clone())
        .unwrap_or_default();
    Ok(PredicateInput {
        chain_id: d.anchor.chain_id,
        batch: d.anchor.batch,
        account,
        token,
        balances_slot,
        comparison: comparison.code(),
        threshold,
        state_root: d.anchor.state_root,
        block_hash: d.anchor.block_hash,
        token_nonce: p.nonce,
        token_balance: p.balance,
        token_storage_root: p.storage_hash,
        token_code_hash: p.code_hash,
        account_proof: p.account_proof.clone(),
        value,
        storage_proof,
    })
}
