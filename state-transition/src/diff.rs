use alloc::{collections::BTreeMap, vec::Vec};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use revm::state::AccountInfo;

/// What a block did to one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    /// New account info (code stripped; see [`StateDiff::codes`]); `None` = deleted.
    pub info: Option<AccountInfo>,
    /// All earlier storage is gone (account created or destroyed in this block).
    pub storage_cleared: bool,
    /// Slots written in this block with their final values (zero = cleared).
    pub storage: BTreeMap<U256, U256>,
}

impl AccountChange {
    /// The account is gone, and its storage with it.
    pub(crate) const REMOVED: Self = Self {
        info: None,
        storage_cleared: true,
        storage: BTreeMap::new(),
    };
}

/// The net effect of a block on the state: what the derived store applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDiff {
    /// Changed accounts, ordered by address so the hash is canonical.
    pub accounts: BTreeMap<Address, AccountChange>,
    /// Code deployed in this block, by hash.
    pub codes: BTreeMap<B256, Bytes>,
}

impl StateDiff {
    /// Canonical hash of the diff: part of the block's output hash, so a
    /// replay that changes any balance, nonce, slot or code is detected.
    pub fn hash(&self) -> B256 {
        let mut buf = Vec::with_capacity(self.accounts.len() * 128);
        buf.extend_from_slice(&(self.accounts.len() as u64).to_be_bytes());
        for (address, change) in &self.accounts {
            buf.extend_from_slice(address.as_slice());
            match &change.info {
                None => buf.push(0),
                Some(info) => {
                    buf.push(1);
                    buf.extend_from_slice(&info.nonce.to_be_bytes());
                    buf.extend_from_slice(&info.balance.to_be_bytes::<32>());
                    buf.extend_from_slice(info.code_hash.as_slice());
                }
            }
            buf.push(change.storage_cleared as u8);
            buf.extend_from_slice(&(change.storage.len() as u64).to_be_bytes());
            for (slot, value) in &change.storage {
                buf.extend_from_slice(&slot.to_be_bytes::<32>());
                buf.extend_from_slice(&value.to_be_bytes::<32>());
            }
        }
        buf.extend_from_slice(&(self.codes.len() as u64).to_be_bytes());
        for (hash, code) in &self.codes {
            buf.extend_from_slice(hash.as_slice());
            buf.extend_from_slice(&(code.len() as u64).to_be_bytes());
            buf.extend_from_slice(code);
        }
        keccak256(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_moves_the_hash() {
        let mut diff = StateDiff::default();
        let base = diff.hash();
        let mut change = AccountChange {
            info: Some(AccountInfo::default()),
            ..Default::default()
        };
        diff.accounts
            .insert(Address::repeat_byte(1), change.clone());
        let with_account = diff.hash();
        assert_ne!(base, with_account);
        change.storage.insert(U256::from(1), U256::from(2));
        diff.accounts.insert(Address::repeat_byte(1), change);
        assert_ne!(with_account, diff.hash());
    }
}
