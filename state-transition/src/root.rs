use alloc::vec::Vec;
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_trie::{HashBuilder, Nibbles, TrieAccount, EMPTY_ROOT_HASH};

/// One account as the state trie needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrieAccountInput {
    /// Account address (hashed into the trie key).
    pub address: Address,
    /// Nonce.
    pub nonce: u64,
    /// Balance.
    pub balance: U256,
    /// Code hash.
    pub code_hash: B256,
    /// Root of the account's storage trie.
    pub storage_root: B256,
}

/// RLP of the account leaf as stored in the state trie.
pub fn account_leaf(account: &TrieAccountInput) -> Vec<u8> {
    let trie = TrieAccount {
        nonce: account.nonce,
        balance: account.balance,
        storage_root: account.storage_root,
        code_hash: account.code_hash,
    };
    alloy_rlp::encode(trie)
}

/// Storage trie root of `(slot, value)` pairs; zero values are skipped.
pub fn storage_root(slots: impl IntoIterator<Item = (U256, U256)>) -> B256 {
    let mut leaves: Vec<(B256, Vec<u8>)> = slots
        .into_iter()
        .filter(|(_, v)| !v.is_zero())
        .map(|(k, v)| (keccak256(B256::from(k)), alloy_rlp::encode(v)))
        .collect();
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    root_of_sorted(&mut leaves)
}

/// Ethereum state root over accounts.
pub fn state_root(accounts: impl IntoIterator<Item = TrieAccountInput>) -> B256 {
    let mut leaves: Vec<(B256, Vec<u8>)> = accounts
        .into_iter()
        .map(|a| (keccak256(a.address), account_leaf(&a)))
        .collect();
    if leaves.is_empty() {
        return EMPTY_ROOT_HASH;
    }
    root_of_sorted(&mut leaves)
}

fn root_of_sorted(leaves: &mut [(B256, Vec<u8>)]) -> B256 {
    leaves.sort_unstable_by_key(|a| a.0);
    let mut hb = HashBuilder::default();
    for (key, value) in leaves.iter() {
        hb.add_leaf(Nibbles::unpack(key), value);
    }
    hb.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_has_the_empty_trie_root() {
        assert_eq!(state_root(core::iter::empty()), EMPTY_ROOT_HASH);
        assert_eq!(storage_root([(U256::from(1), U256::ZERO)]), EMPTY_ROOT_HASH);
    }

    #[test]
    fn state_root_does_not_depend_on_input_order() {
        let acct = |n: u8| TrieAccountInput {
            address: Address::repeat_byte(n),
            nonce: n as u64,
            balance: U256::from(n),
            code_hash: alloy_trie::KECCAK_EMPTY,
            storage_root: EMPTY_ROOT_HASH,
        };
        let forward = state_root((1..=5).map(acct));
        let backward = state_root((1..=5).rev().map(acct));
        assert_eq!(forward, backward);
        assert_ne!(forward, state_root((1..=4).map(acct)));
    }
}
