//! What the appliance knows about addresses: which are contracts deployed on
//! this chain, and by which wallet (hence which principal and organization).
//! Fed from mined deployments; read by policies (`deployer`, `deployer_org`).

use crate::{
    policy::{AccountDirectory, AccountFacts},
    store::{DocDir, JsonDoc, StoreError},
    wallets::Wallets,
};
use alloy_primitives::Address;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::{collections::HashMap, sync::Arc};

/// File of known contracts inside the access directory.
pub const CONTRACTS_FILE: &str = "contracts.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ContractsFile {
    /// Next block to scan.
    next_block: u64,
    /// contract → deployer.
    contracts: HashMap<Address, Address>,
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
            self.doc.update(|f: &mut ContractsFile| *f = snapshot)?;
        }
        Ok(())
    }

    /// Who deployed `contract`, when known.
    pub fn deployer(&self, contract: &Address) -> Option<Address> {
        self.state.read().contracts.get(contract).copied()
    }
}

impl AccountDirectory for ContractDirectory {
    fn account(&self, address: &Address) -> AccountFacts {
        let deployer = self.deployer(address);
        let deployer_org = deployer
            .and_then(|d| self.wallets.owner(&d))
            .map(|(_, org)| org)
            .unwrap_or_default();
        AccountFacts {
            address: *address,
            is_contract: deployer.is_some(),
            deployer,
            deployer_org,
        }
    }
}
