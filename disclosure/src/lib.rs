//! Selective disclosure: one fact about the private chain at the end of a
//! settled batch ("account A held V of token T"), as a self-contained JSON
//! file that a regulator or counterparty checks with public data only.
//!
//! Two kinds of file:
//! - a [`Disclosure`] reveals the value: it carries the statement, EIP-1186
//!   account and storage proofs against batch N's new state root, and the
//!   opening of the state commitment the settlement contract holds for
//!   batch N (the root and the batch's last block hash). [`check`] verifies
//!   the proofs and returns the [`Fact`] with the commitment the caller
//!   compares with the contract's `getBatch(chainId, N).newCommitment`;
//! - a [`PredicateDisclosure`] reveals only that the balance is at least
//!   (or at most) a threshold: a zkVM proof by the predicate program
//!   ([`predicate`], `disclosure/guest`) that checked the same proofs
//!   privately (the balance is neither in the file nor a public value; see
//!   the README for what OpenVM's STARKs do and do not hide).
//!
//! Nothing is computed by running contract code: a token balance is read
//! from the storage slot its declared layout names (the balances mapping's
//! slot), so a contract's author cannot forge the answer the way a view
//! function could. The token's code hash is proven and shown, so the
//! recipient can check that the code at that address is the one whose
//! layout they accept.
//!
//! Without the `std` feature only the core the predicate program needs is
//! built (`no_std`).
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod predicate;
mod trie;

pub use trie::{mapping_key, verify_account, verify_slot, AccountFields};

#[cfg(feature = "std")]
mod check;
#[cfg(feature = "std")]
mod file;
#[cfg(feature = "std")]
mod format;
#[cfg(feature = "std")]
mod zk;

#[cfg(feature = "std")]
pub use check::{check, Fact};
#[cfg(feature = "std")]
pub use file::AnyDisclosure;
#[cfg(feature = "std")]
pub use format::{Anchor, Disclosure, Statement, FORMAT, MAX_FILE_BYTES};
#[cfg(feature = "std")]
pub use zk::{predicate_input, ClaimJson, Comparison, PredicateDisclosure, PREDICATE_FORMAT};

/// Why a disclosure does not hold.
#[cfg(feature = "std")]
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// Not a disclosure this version reads.
    #[error("not a disclosure: {0}")]
    Format(String),
    /// The proofs do not show the statement.
    #[error("the proof does not hold: {0}")]
    Proof(String),
}
