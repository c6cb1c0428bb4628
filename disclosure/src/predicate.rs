//! The predicate: "at the end of batch N, account A held at least (or at
//! most) X of token T", proven without revealing the balance.
//!
//! The predicate program (`disclosure/guest`, its own program id) reads a
//! [`PredicateInput`] (the Merkle proofs and the value: private), runs
//! [`evaluate`] and reveals only keccak256 of the [`Claim`]'s encoding. A
//! false statement has no proof: `evaluate` refuses it and the program
//! panics. The claim names the settled state commitment (not the root), so
//! a verifier matches it with the settlement contract's batch N directly.

use crate::trie::{mapping_key, verify_account, verify_slot, AccountFields};
use alloc::{format, string::String, vec::Vec};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// `balance >= threshold`.
pub const AT_LEAST: u8 = 0;
/// `balance <= threshold`.
pub const AT_MOST: u8 = 1;

/// What a predicate proof reveals: no balance, no proof, no root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claim {
    /// The private chain.
    pub chain_id: u64,
    /// The settled batch at whose end the claim holds.
    pub batch: u64,
    /// keccak256(state root ‖ last block hash): the batch's settled
    /// `newCommitment`.
    pub state_commitment: B256,
    /// The holder.
    pub account: Address,
    /// The token.
    pub token: Address,
    /// Slot of the token's balances mapping (its declared layout).
    pub balances_slot: U256,
    /// [`AT_LEAST`] or [`AT_MOST`].
    pub comparison: u8,
    /// The bound.
    pub threshold: U256,
    /// Code hash of the token account: which code gives the slot its
    /// meaning.
    pub code_hash: B256,
}

impl Claim {
    /// `abi.encode` of the nine fields, in order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 * 32);
        let mut word = |w: B256| out.extend_from_slice(w.as_slice());
        word(U256::from(self.chain_id).into());
        word(U256::from(self.batch).into());
        word(self.state_commitment);
        word(self.account.into_word());
        word(self.token.into_word());
        word(self.balances_slot.into());
        word(U256::from(self.comparison).into());
        word(self.threshold.into());
        word(self.code_hash);
        out
    }

    /// The 32 bytes the predicate program reveals.
    pub fn digest(&self) -> B256 {
        keccak256(self.encode())
    }
}

/// The predicate program's input: the claim's parameters and, privately,
/// the proofs and the value.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct PredicateInput {
    /// The private chain.
    pub chain_id: u64,
    /// The batch.
    pub batch: u64,
    /// The holder.
    pub account: Address,
    /// The token.
    pub token: Address,
    /// Slot of the token's balances mapping.
    pub balances_slot: U256,
    /// [`AT_LEAST`] or [`AT_MOST`].
    pub comparison: u8,
    /// The bound.
    pub threshold: U256,
    /// The state root after the batch (private).
    pub state_root: B256,
    /// The batch's last block hash (private).
    pub block_hash: B256,
    /// The token account's nonce (private).
    pub token_nonce: u64,
    /// The token account's ETH balance (private).
    pub token_balance: U256,
    /// The token's storage root (private).
    pub token_storage_root: B256,
    /// The token's code hash (revealed in the claim).
    pub token_code_hash: B256,
    /// State-trie nodes from the root to the token's leaf (private).
    pub account_proof: Vec<Bytes>,
    /// The holder's balance (private).
    pub value: U256,
    /// Storage-trie nodes to the holder's entry (private).
    pub storage_proof: Vec<Bytes>,
}

/// Checks the proofs and the comparison; the claim to reveal when both
/// hold.
pub fn evaluate(input: &PredicateInput) -> Result<Claim, String> {
    let token = AccountFields {
        nonce: input.token_nonce,
        balance: input.token_balance,
        storage_root: input.token_storage_root,
        code_hash: input.token_code_hash,
    };
    verify_account(input.state_root, input.token, &token, &input.account_proof)?;
    let key = mapping_key(input.account, input.balances_slot);
    verify_slot(
        input.token_storage_root,
        key,
        input.value,
        &input.storage_proof,
    )?;
    let holds = match input.comparison {
        AT_LEAST => input.value >= input.threshold,
        AT_MOST => input.value <= input.threshold,
        other => return Err(format!("unknown comparison {other}")),
    };
    if !holds {
        return Err("the statement is false: there is no proof of it".into());
    }
    Ok(Claim {
        chain_id: input.chain_id,
        batch: input.batch,
        state_commitment: state_transition::state_commitment(input.state_root, input.block_hash),
        account: input.account,
        token: input.token,
        balances_slot: input.balances_slot,
        comparison: input.comparison,
        threshold: input.threshold,
        code_hash: input.token_code_hash,
    })
}
