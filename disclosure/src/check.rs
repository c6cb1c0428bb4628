//! Checking a disclosure's proofs: pure computation on the file, no network.

use crate::trie::{self, mapping_key, AccountFields};
use crate::{Anchor, Disclosure, DisclosureError, Statement, FORMAT};
use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;

/// What a disclosure proves, once [`check`]ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// The claim, now shown to hold against `anchor.state_root`.
    pub statement: Statement,
    /// The batch and the state root.
    pub anchor: Anchor,
    /// What the settlement contract must hold as the batch's
    /// `newCommitment` for the fact to be about the settled chain.
    pub commitment: B256,
    /// Code hash of the proven account (the token's, for a token balance):
    /// which code gives the slot its meaning.
    pub code_hash: B256,
}

/// Verifies every proof in `d` against its anchor's state root and that the
/// proven values are the statement's. The caller still compares
/// [`Fact::commitment`] with the settlement contract.
pub fn check(d: &Disclosure) -> Result<Fact, DisclosureError> {
    if d.format != FORMAT {
        return Err(DisclosureError::Format(format!(
            "format {:?}, this build reads {FORMAT:?}",
            d.format
        )));
    }
    let p = &d.proof;
    let subject = d.statement.proven_account();
    if p.address != subject {
        return Err(DisclosureError::Proof(format!(
            "the proof is for {}, the statement needs {subject}",
            p.address
        )));
    }
    verify_account(d.anchor.state_root, p)?;
    let proven = match &d.statement {
        Statement::Balance { .. } => {
            if !p.storage_proof.is_empty() {
                return Err(DisclosureError::Format(
                    "a balance statement carries no storage proof".into(),
                ));
            }
            p.balance
        }
        Statement::TokenBalance {
            account,
            balances_slot,
            ..
        } => slot_value(p, mapping_key(*account, *balances_slot))?,
        Statement::Storage { slot, .. } => slot_value(p, *slot)?,
    };
    let claimed = d.statement.value();
    if proven != claimed {
        return Err(DisclosureError::Proof(format!(
            "the proven value is {proven}, the statement says {claimed}"
        )));
    }
    Ok(Fact {
        statement: d.statement.clone(),
        anchor: d.anchor,
        commitment: d.anchor.commitment(),
        code_hash: p.code_hash,
    })
}

fn verify_account(root: B256, p: &EIP1186AccountProofResponse) -> Result<(), DisclosureError> {
    let fields = AccountFields {
        nonce: p.nonce,
        balance: p.balance,
        storage_root: p.storage_hash,
        code_hash: p.code_hash,
    };
    trie::verify_account(root, p.address, &fields, &p.account_proof).map_err(DisclosureError::Proof)
}

/// The one storage proof's value, checked against the account's storage
/// root; it must be for `key`.
fn slot_value(p: &EIP1186AccountProofResponse, key: B256) -> Result<U256, DisclosureError> {
    let [slot] = p.storage_proof.as_slice() else {
        return Err(DisclosureError::Format(format!(
            "{} storage proofs, the statement reads exactly one slot",
            p.storage_proof.len()
        )));
    };
    if slot.key.as_b256() != key {
        return Err(DisclosureError::Proof(format!(
            "the storage proof is for slot {}, the statement reads {key}",
            slot.key.as_b256()
        )));
    }
    trie::verify_slot(p.storage_hash, key, slot.value, &slot.proof)
        .map_err(DisclosureError::Proof)?;
    Ok(slot.value)
}

#[cfg(test)]
mod tests;
