//! Wallet bindings: which EOAs belong to which principal. A transaction is
//! accepted only from a wallet bound to the caller, and reads are filtered
//! by the caller's wallets.

use crate::store::{unix_now, DocDir, JsonDoc, StoreError};
use alloy_primitives::Address;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeSet, HashMap},
    time::SystemTime,
};

/// File of bindings inside the access directory.
pub const WALLETS_FILE: &str = "wallets.json";

/// One binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The EOA.
    pub address: Address,
    /// Principal key (`User:idp:alice`, `ApiKey:k_…`).
    pub principal: String,
    /// Organization of the principal when bound.
    pub org: String,
    /// `siwe`, `admin` or `key` (bound when an API key was created).
    pub method: String,
    /// Unix seconds.
    pub bound_at: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct WalletFile {
    bindings: Vec<Binding>,
}

/// Why a binding was refused.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Already bound to someone else (unbind it first).
    #[error("wallet {0} is bound to another principal")]
    Taken(Address),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default)]
struct Index {
    by_principal: HashMap<String, BTreeSet<Address>>,
    by_address: HashMap<Address, (String, String)>,
}

/// Bindings as the node sees them (reloaded when the file changes).
#[derive(Debug)]
pub struct Wallets {
    doc: JsonDoc,
    index: RwLock<Index>,
    seen: Mutex<Option<SystemTime>>,
}

fn index(file: WalletFile) -> Index {
    let mut ix = Index::default();
    for b in file.bindings {
        ix.by_principal
            .entry(b.principal.clone())
            .or_default()
            .insert(b.address);
        ix.by_address.insert(b.address, (b.principal, b.org));
    }
    ix
}

impl Wallets {
    /// Opens the bindings kept in `docs`.
    pub fn open(docs: &DocDir) -> Result<Self, StoreError> {
        let w = Self {
            doc: docs.doc(WALLETS_FILE),
            index: RwLock::new(Index::default()),
            seen: Mutex::new(None),
        };
        w.reload()?;
        Ok(w)
    }

    /// Re-reads the file.
    pub fn reload(&self) -> Result<(), StoreError> {
        let mtime = self.doc.modified();
        *self.index.write() = index(self.doc.read()?);
        *self.seen.lock() = mtime;
        Ok(())
    }

    /// Reloads when another process changed the file.
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        if *self.seen.lock() == self.doc.modified() {
            return Ok(false);
        }
        self.reload().map(|_| true)
    }

    /// Wallets bound to `principal` (its key).
    pub fn of(&self, principal: &str) -> BTreeSet<Address> {
        self.index
            .read()
            .by_principal
            .get(principal)
            .cloned()
            .unwrap_or_default()
    }

    /// Who `address` is bound to, and that principal's organization.
    pub fn owner(&self, address: &Address) -> Option<(String, String)> {
        self.index.read().by_address.get(address).cloned()
    }

    /// Binds `address` to `principal` (idempotent for the same principal).
    pub fn bind(
        &self,
        address: Address,
        principal: &str,
        org: &str,
        method: &str,
    ) -> Result<(), BindError> {
        bind_in(&self.doc, address, principal, org, method)?;
        self.reload()?;
        Ok(())
    }

    /// Every binding, in the order they were made (the admin's list).
    pub fn all(&self) -> Result<Vec<Binding>, StoreError> {
        let file: WalletFile = self.doc.read()?;
        Ok(file.bindings)
    }

    /// Removes a binding; returns whether one existed.
    pub fn unbind(&self, address: Address) -> Result<bool, StoreError> {
        let removed = self.doc.update(|f: &mut WalletFile| {
            let before = f.bindings.len();
            f.bindings.retain(|b| b.address != address);
            before != f.bindings.len()
        })?;
        self.reload()?;
        Ok(removed)
    }
}

/// Binds in the file under `docs` (usable without a running node).
pub fn bind(
    docs: &DocDir,
    address: Address,
    principal: &str,
    org: &str,
    method: &str,
) -> Result<(), BindError> {
    bind_in(&docs.doc(WALLETS_FILE), address, principal, org, method)
}

fn bind_in(
    doc: &JsonDoc,
    address: Address,
    principal: &str,
    org: &str,
    method: &str,
) -> Result<(), BindError> {
    doc.update(
        |f: &mut WalletFile| match f.bindings.iter().find(|b| b.address == address) {
            Some(b) if b.principal == principal => Ok(()),
            Some(_) => Err(BindError::Taken(address)),
            None => {
                f.bindings.push(Binding {
                    address,
                    principal: principal.to_owned(),
                    org: org.to_owned(),
                    method: method.to_owned(),
                    bound_at: unix_now(),
                });
                Ok(())
            }
        },
    )?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wallet_belongs_to_one_principal() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wallets::open(&crate::store::DocDir::plain(dir.path())).unwrap();
        let a = Address::repeat_byte(1);
        w.bind(a, "User:idp:alice", "bank-a", "siwe").unwrap();
        w.bind(a, "User:idp:alice", "bank-a", "siwe").unwrap();
        assert!(matches!(
            w.bind(a, "User:idp:bob", "bank-a", "siwe"),
            Err(BindError::Taken(_))
        ));
        assert_eq!(w.of("User:idp:alice"), BTreeSet::from([a]));
        assert_eq!(w.owner(&a).unwrap().1, "bank-a");
        // Another process (the CLI) binding is picked up on reload.
        bind(
            &crate::store::DocDir::plain(dir.path()),
            Address::repeat_byte(2),
            "User:idp:bob",
            "bank-a",
            "admin",
        )
        .unwrap();
        w.reload().unwrap();
        assert_eq!(w.of("User:idp:bob").len(), 1);
        assert!(w.unbind(a).unwrap());
        assert!(w.of("User:idp:alice").is_empty());
    }
}
