//! Merkle-Patricia checks of one account and one storage word: the core a
//! disclosure is checked with, on the host and inside the zkVM alike.

use alloc::{format, string::String};
use alloy_primitives::{keccak256, Address, Bytes, B256, KECCAK256_EMPTY, U256};
use alloy_trie::{proof::verify_proof, Nibbles, EMPTY_ROOT_HASH};
use state_transition::{account_leaf, TrieAccountInput};

/// The fields of an account leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFields {
    /// Nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Root of its storage trie.
    pub storage_root: B256,
    /// Hash of its code.
    pub code_hash: B256,
}

/// The storage key of `holder`'s entry in a `mapping(address => …)` at
/// `slot` (Solidity's layout: keccak256(holder ‖ slot), both 32 bytes).
pub fn mapping_key(holder: Address, slot: U256) -> B256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(holder.as_slice());
    preimage[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    keccak256(preimage)
}

/// Checks that the state trie under `root` holds `account` for `address`
/// (or nothing, when the fields are those of an empty account).
pub fn verify_account(
    root: B256,
    address: Address,
    account: &AccountFields,
    proof: &[Bytes],
) -> Result<(), String> {
    let absent = account.nonce == 0
        && account.balance.is_zero()
        && account.code_hash == KECCAK256_EMPTY
        && account.storage_root == EMPTY_ROOT_HASH;
    let leaf = (!absent).then(|| {
        account_leaf(&TrieAccountInput {
            address,
            nonce: account.nonce,
            balance: account.balance,
            code_hash: account.code_hash,
            storage_root: account.storage_root,
        })
    });
    verify_proof(root, Nibbles::unpack(keccak256(address)), leaf, proof)
        .map_err(|e| format!("account {address}: {e}"))
}

/// Checks that the storage trie under `storage_root` holds `value` at
/// `key` (a zero word is absent from the trie).
pub fn verify_slot(
    storage_root: B256,
    key: B256,
    value: U256,
    proof: &[Bytes],
) -> Result<(), String> {
    let leaf = (!value.is_zero()).then(|| alloy_rlp::encode(value));
    verify_proof(storage_root, Nibbles::unpack(keccak256(key)), leaf, proof)
        .map_err(|e| format!("slot {key}: {e}"))
}
