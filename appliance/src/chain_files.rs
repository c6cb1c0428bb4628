//! The data directory's self-description: which chain it holds.
//!
//! `genesis.json` and `chain.json` are written once when a data directory is
//! created, so `replay` and restarts never depend on flags matching.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use state_transition::{revm::primitives::hardfork::SpecId, ChainSpec, FeeMode};
use std::path::Path;

/// Persisted chain rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// `zero` or `eip1559`.
    pub fee_mode: String,
    /// First base fee in EIP-1559 mode (wei).
    pub initial_base_fee: u64,
    /// Block gas limit.
    pub block_gas_limit: u64,
}

impl ChainFile {
    /// The chain rules this file describes.
    pub fn spec(&self) -> Result<ChainSpec> {
        let fee_mode = match self.fee_mode.as_str() {
            "zero" => FeeMode::Zero,
            "eip1559" => FeeMode::Eip1559 {
                initial_base_fee: self.initial_base_fee,
            },
            other => bail!("fee_mode must be \"zero\" or \"eip1559\", not {other:?}"),
        };
        Ok(ChainSpec {
            chain_id: self.chain_id,
            spec: SpecId::PRAGUE,
            fee_mode,
            block_gas_limit: self.block_gas_limit,
        })
    }
}

pub const GENESIS_FILE: &str = "genesis.json";
pub const CHAIN_FILE: &str = "chain.json";
pub const STATE_FILE: &str = "state.redb";

/// Reads `chain.json` and `genesis.json` from a data directory.
pub fn load(dir: &Path) -> Result<(ChainFile, sequencer::Genesis)> {
    let chain_path = dir.join(CHAIN_FILE);
    let chain: ChainFile =
        serde_json::from_str(&std::fs::read_to_string(&chain_path).with_context(|| {
            format!(
                "reading {} (is this a prividium data directory?)",
                chain_path.display()
            )
        })?)
        .with_context(|| format!("parsing {}", chain_path.display()))?;
    let genesis_path = dir.join(GENESIS_FILE);
    let genesis = sequencer::Genesis::from_json(
        &std::fs::read_to_string(&genesis_path)
            .with_context(|| format!("reading {}", genesis_path.display()))?,
    )?;
    Ok((chain, genesis))
}

/// Writes both files when creating a data directory; never replaces them,
/// since the block log was produced from exactly this genesis.
pub fn store(dir: &Path, chain: &ChainFile, genesis_json: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if dir.join(CHAIN_FILE).exists() {
        bail!(
            "{} already describes a chain; refusing to overwrite it",
            dir.display()
        );
    }
    std::fs::write(dir.join(GENESIS_FILE), genesis_json)?;
    std::fs::write(dir.join(CHAIN_FILE), serde_json::to_string_pretty(chain)?)?;
    Ok(())
}
