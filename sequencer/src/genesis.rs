use crate::{Result, SequencerError};
use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH};
use alloy_primitives::{keccak256, Address, Bloom, Bytes, B256, U256};
use alloy_trie::EMPTY_ROOT_HASH;
use serde::Deserialize;
use state_transition::{revm::state::AccountInfo, ChainSpec, MemoryState};
use std::collections::BTreeMap;

/// A geth-style genesis file: `{"config": {"chainId": …}, "timestamp", "gasLimit", "alloc": {…}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Genesis {
    /// Chain configuration (only `chainId` is read).
    #[serde(default)]
    pub config: GenesisConfig,
    /// Genesis timestamp (hex or decimal).
    #[serde(default, deserialize_with = "num::u64_opt")]
    pub timestamp: Option<u64>,
    /// Block gas limit.
    #[serde(default, deserialize_with = "num::u64_opt")]
    pub gas_limit: Option<u64>,
    /// Pre-funded accounts and contracts.
    #[serde(default)]
    pub alloc: BTreeMap<Address, GenesisAccount>,
}

/// The `config` object of a genesis file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisConfig {
    /// EIP-155 chain id.
    pub chain_id: Option<u64>,
}

/// One `alloc` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GenesisAccount {
    /// Balance in wei (hex or decimal string).
    #[serde(default)]
    pub balance: Option<U256>,
    /// Nonce.
    #[serde(default, deserialize_with = "num::u64_opt")]
    pub nonce: Option<u64>,
    /// Contract code.
    #[serde(default)]
    pub code: Option<Bytes>,
    /// Storage slots (short hex like `0x01` accepted, as geth does).
    #[serde(default)]
    pub storage: BTreeMap<U256, U256>,
}

mod num {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Int(u64),
        Str(String),
    }

    pub(super) fn u64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let Some(n) = Option::<Num>::deserialize(d)? else {
            return Ok(None);
        };
        match n {
            Num::Int(v) => Ok(Some(v)),
            Num::Str(s) => {
                let parsed = match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => s.parse(),
                };
                parsed.map(Some).map_err(serde::de::Error::custom)
            }
        }
    }
}

impl Genesis {
    /// Parses a genesis JSON document.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| SequencerError::Genesis(e.to_string()))
    }

    /// Block 0's header, given the genesis state's root (`state().state_root()`;
    /// passed in because computing it is the costly part). Its hash opens
    /// the chain's first settled state commitment.
    pub fn header(&self, chain: &ChainSpec, state_root: B256) -> Header {
        Header {
            parent_hash: B256::ZERO,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            logs_bloom: Bloom::ZERO,
            number: 0,
            gas_limit: chain.block_gas_limit,
            timestamp: self.timestamp.unwrap_or_default(),
            extra_data: Bytes::new(),
            base_fee_per_gas: Some(chain.initial_base_fee()),
            ..Default::default()
        }
    }

    /// The genesis state.
    pub fn state(&self) -> MemoryState {
        let mut state = MemoryState::default();
        for (address, acct) in &self.alloc {
            let code = acct.code.clone().unwrap_or_default();
            let code_hash = if code.is_empty() {
                state_transition::revm::primitives::KECCAK_EMPTY
            } else {
                let h = keccak256(&code);
                state.codes.insert(h, code);
                h
            };
            state.accounts.insert(
                *address,
                AccountInfo {
                    balance: acct.balance.unwrap_or_default(),
                    nonce: acct.nonce.unwrap_or_default(),
                    code_hash,
                    // Loaded by hash on demand (the default means empty code).
                    code: None,
                    account_id: None,
                },
            );
            let slots: BTreeMap<U256, U256> = acct
                .storage
                .iter()
                .map(|(k, v)| (*k, *v))
                .filter(|(_, v)| !v.is_zero())
                .collect();
            if !slots.is_empty() {
                state.storage.insert(*address, slots);
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_geth_style_alloc_with_hex_and_decimal_numbers() {
        let g = Genesis::from_json(
            r#"{"config":{"chainId":7777},"gasLimit":"0x1c9c380","timestamp":"0",
                "alloc":{"0x00000000000000000000000000000000000000aa":{"balance":"0x10","nonce":"0x1"},
                         "0x00000000000000000000000000000000000000bb":{"balance":"1000","code":"0x6000",
                          "storage":{"0x00":"0x01"}}}}"#,
        )
        .unwrap();
        assert_eq!(g.config.chain_id, Some(7777));
        assert_eq!(g.gas_limit, Some(30_000_000));
        let state = g.state();
        let aa = state.accounts[&Address::with_last_byte(0xaa)].clone();
        assert_eq!((aa.balance, aa.nonce), (U256::from(16), 1));
        let bb = Address::with_last_byte(0xbb);
        assert_eq!(state.accounts[&bb].balance, U256::from(1000));
        assert_eq!(state.storage[&bb][&U256::ZERO], U256::from(1));
        assert_eq!(state.codes.len(), 1);
    }

    #[test]
    fn rejects_malformed_genesis_with_a_message() {
        let err = Genesis::from_json(r#"{"alloc":{"nothex":{}}}"#).unwrap_err();
        assert!(err.to_string().contains("invalid genesis"), "{err}");
    }
}
