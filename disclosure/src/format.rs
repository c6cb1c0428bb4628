//! The disclosure file, version 1. Field names follow EIP-1186 for the
//! proofs so any Merkle-Patricia verifier can read them too.

use alloy_primitives::{Address, B256, U256};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use serde::{Deserialize, Serialize};

/// The `format` of every file this version writes and reads.
pub const FORMAT: &str = "prividium-disclosure/1";

/// Largest file [`Disclosure::parse`] reads: a few proofs of a dozen nodes
/// each are tens of kilobytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// One disclosed fact with its proofs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Disclosure {
    /// Always [`FORMAT`].
    pub format: String,
    /// What is claimed.
    pub statement: Statement,
    /// Where the state root it is proven against is settled.
    pub anchor: Anchor,
    /// EIP-1186 proof of the statement's account (of the token for a token
    /// balance) and of the one storage slot the statement reads, if any.
    pub proof: EIP1186AccountProofResponse,
}

/// The claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Statement {
    /// `account` held `value` wei.
    #[serde(rename_all = "camelCase")]
    Balance {
        /// The holder.
        account: Address,
        /// Its balance in wei.
        value: U256,
    },
    /// `account` held `value` units of `token`, whose balances mapping
    /// (`mapping(address => uint256)`) is declared to be at slot
    /// `balances_slot`.
    #[serde(rename_all = "camelCase")]
    TokenBalance {
        /// The holder.
        account: Address,
        /// The token contract.
        token: Address,
        /// Storage slot of the token's balances mapping (its declared
        /// layout; BankToken: 3).
        balances_slot: U256,
        /// The holder's balance in the token's units.
        value: U256,
    },
    /// `account`'s storage word at `slot` was `value`.
    #[serde(rename_all = "camelCase")]
    Storage {
        /// The contract.
        account: Address,
        /// The slot.
        slot: B256,
        /// The word.
        value: U256,
    },
}

impl Statement {
    /// The account whose proof the statement needs (the token for a token
    /// balance).
    pub fn proven_account(&self) -> Address {
        match self {
            Self::Balance { account, .. } | Self::Storage { account, .. } => *account,
            Self::TokenBalance { token, .. } => *token,
        }
    }

    /// The disclosed value.
    pub fn value(&self) -> U256 {
        match self {
            Self::Balance { value, .. }
            | Self::TokenBalance { value, .. }
            | Self::Storage { value, .. } => *value,
        }
    }
}

/// The settled batch the statement is about, and the opening of its state
/// commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Anchor {
    /// The private chain (its registration key on the settlement contract).
    pub chain_id: u64,
    /// The batch: the fact holds at its end.
    pub batch: u64,
    /// The state root after the batch.
    pub state_root: B256,
    /// The batch's last block hash; with the root it opens the settled
    /// commitment keccak256(stateRoot ‖ blockHash).
    pub block_hash: B256,
}

impl Anchor {
    /// The commitment the settlement contract must hold as batch
    /// `batch`'s `newCommitment`.
    pub fn commitment(&self) -> B256 {
        state_transition::state_commitment(self.state_root, self.block_hash)
    }
}
