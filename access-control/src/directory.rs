//! What the appliance knows about addresses: which are contracts deployed on
//! this chain, and by which wallet (hence which principal and organization).
//! Read by policies (`deployer`, `deployer_org`).
//!
//! Fed twice: the block producer reports every contract a transaction
//! creates, at any depth (a constructor's or a factory's CREATE/CREATE2), as
//! soon as the transaction is in the block being built, with the signer's
//! principal and organization at that moment; and a scan of derived blocks
//! picks up top-level deployments that reached the chain without that
//! report (a chain from before it, a crash between the two). A contract is
//! never without an owner once a transaction can reach it.

use crate::{
    policy::{AccountDirectory, AccountFacts},
    store::{DocDir, JsonDoc, StoreError},
    wallets::Wallets,
};
use alloy_primitives::Address;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use state_transition::CreatedContract;
use std::{collections::HashMap, sync::Arc};

/// File of known contracts inside the access directory.
pub const CONTRACTS_FILE: &str = "contracts.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ContractsFile {
    /// Next block to scan.
    next_block: u64,
    /// contract → deployer (the signing wallet of the creating transaction).
    contracts: HashMap<Address, Address>,
    /// What was known when the contract was created (absent for contracts
    /// found by the scan only, and in files written before version 2).
    #[serde(default)]
    owners: HashMap<Address, Owner>,
}

/// Who created a contract, as recorded in its block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The account that executed the creation: the signer, or a factory.
    #[serde(default)]
    pub creator: Option<Address>,
    /// The signer's principal (`User:…`, `ApiKey:…`; empty when replayed).
    pub principal: String,
    /// That principal's organization then.
    pub org: String,
}

/// Deployed contracts and their deployers.
#[derive(Debug)]
pub struct ContractDirectory {
    doc: JsonDoc,
    state: RwLock<ContractsFile>,
    wallets: Arc<Wallets>,
}

impl ContractDirectory {
    /// Opens the directory kept in `docs`.
    pub fn open(docs: &DocDir, wallets: Arc<Wallets>) -> Result<Self, StoreError> {
        let doc = docs.doc(CONTRACTS_FILE);
        let state = doc.read()?;
        Ok(Self {
            doc,
            state: RwLock::new(state),
            wallets,
        })
    }

    /// The first block not yet scanned.
    pub fn next_block(&self) -> u64 {
        self.state.read().next_block
    }

    /// Records the deployments found in blocks up to `through` (inclusive)
    /// and persists when anything new was found.
    pub fn record(
        &self,
        deployments: impl IntoIterator<Item = (Address, Address)>,
        through: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state.write();
        if through < state.next_block {
            return Ok(());
        }
        let before = state.contracts.len();
        state.contracts.extend(deployments);
        state.next_block = through + 1;
        if state.contracts.len() != before {
            let snapshot = state.clone();
            drop(state);
            self.persist(snapshot)?;
        }
        Ok(())
    }

    /// Writes `snapshot`, keeping the scan's progress if another writer
    /// moved it on meanwhile.
    fn persist(&self, snapshot: ContractsFile) -> Result<(), StoreError> {
        self.doc.update(|f: &mut ContractsFile| {
            let next_block = f.next_block.max(snapshot.next_block);
            *f = snapshot;
            f.next_block = next_block;
        })
    }

    /// Who deployed `contract`, when known.
    pub fn deployer(&self, contract: &Address) -> Option<Address> {
        self.state.read().contracts.get(contract).copied()
    }

    /// Attributes contracts found by re-executing the chain (`prividium
    /// replay`): each `(contract, signer)` not recorded yet gets its signer
    /// as deployer, so nested contracts of a chain from before creation-time
    /// records are owned too. Records made at creation are kept. Returns how
    /// many were added.
    pub fn attribute_replayed(&self, created: &[(Address, Address)]) -> Result<usize, StoreError> {
        let (snapshot, added) = {
            let mut state = self.state.write();
            let before = state.contracts.len();
            for (contract, signer) in created {
                if !state.owners.contains_key(contract) {
                    state.contracts.insert(*contract, *signer);
                }
            }
            let added = state.contracts.len() - before;
            if added == 0 {
                return Ok(0);
            }
            (state.clone(), added)
        };
        self.persist(snapshot)?;
        Ok(added)
    }

    /// Records contracts created by a transaction signed by `signer`; a
    /// later creation at the same address (after a self-destruct, or one
    /// that never reached the chain) replaces the earlier record. Memory
    /// first, so the next transaction sees it even if the write fails.
    pub fn record_created(
        &self,
        contracts: &[CreatedContract],
        signer: Address,
        principal: &str,
        org: &str,
    ) -> Result<(), StoreError> {
        let snapshot = {
            let mut state = self.state.write();
            for c in contracts {
                state.contracts.insert(c.address, signer);
                state.owners.insert(
                    c.address,
                    Owner {
                        creator: c.creator,
                        principal: principal.to_owned(),
                        org: org.to_owned(),
                    },
                );
            }
            state.clone()
        };
        self.persist(snapshot)
    }
}

impl AccountDirectory for ContractDirectory {
    fn account(&self, address: &Address) -> AccountFacts {
        let (deployer, recorded_org) = {
            let state = self.state.read();
            (
                state.contracts.get(address).copied(),
                state.owners.get(address).map(|o| o.org.clone()),
            )
        };
        // The organization at creation when it was recorded then; for older
        // records, that of whoever holds the deploying wallet now.
        let deployer_org = match recorded_org {
            Some(org) => org,
            None => deployer
                .and_then(|d| self.wallets.owner(&d))
                .map(|(_, org)| org)
                .unwrap_or_default(),
        };
        AccountFacts {
            address: *address,
            is_contract: deployer.is_some(),
            deployer,
            deployer_org,
        }
    }

    fn created(&self, contracts: &[CreatedContract], signer: Address, principal: &str, org: &str) {
        // The signing wallet's binding names the organization, as for
        // contracts found by the scan; the principal's own otherwise.
        let org = self
            .wallets
            .owner(&signer)
            .map(|(_, o)| o)
            .unwrap_or_else(|| org.to_owned());
        if let Err(e) = self.record_created(contracts, signer, principal, &org) {
            // In memory it is recorded; the scan of derived blocks writes
            // top-level deployments again, nested ones need `replay`.
            tracing::error!(error = %e, "contract owners not persisted");
        }
    }
}
