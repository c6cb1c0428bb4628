//! The data directory's self-description: which chain it holds.
//!
//! `genesis.json` and `chain.json` are written once when a data directory is
//! created, so `replay` and restarts never depend on flags matching. The
//! genesis is sealed on an encrypted appliance; the rules are not secret.

use crate::data_dir::{CHAIN_FILE, GENESIS_FILE};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use state_transition::{revm::primitives::hardfork::SpecId, ChainSpec, FeeMode};
use std::path::Path;
use storage::SharedCipher;

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

/// Reads `chain.json`: the chain's rules (id, fee mode, gas limit), which
/// are public and needed before the keys are unsealed.
pub fn load_chain(dir: &Path) -> Result<ChainFile> {
    let chain_path = dir.join(CHAIN_FILE);
    serde_json::from_str(&std::fs::read_to_string(&chain_path).with_context(|| {
        format!(
            "reading {} (is this a prividium data directory?)",
            chain_path.display()
        )
    })?)
    .with_context(|| format!("parsing {}", chain_path.display()))
}

/// Name the sealed genesis is bound to (associated data).
pub const GENESIS_CONTEXT: &str = "chain/genesis.json";

/// Reads `genesis.json`. Its allocations name accounts and balances, so on
/// an encrypted appliance it is sealed like every other chain record. It is
/// written in plaintext when the directory is created (the keys are not
/// unsealed yet) and sealed in place by the first start that has them; a
/// directory from an older version is sealed the same way.
pub fn load_genesis(dir: &Path, cipher: Option<&SharedCipher>) -> Result<sequencer::Genesis> {
    let path = dir.join(GENESIS_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let json = if storage::is_sealed(&bytes) {
        let Some(cipher) = cipher else {
            bail!("{} is sealed, but no keys were given", path.display());
        };
        storage::open_file(cipher.as_ref(), GENESIS_CONTEXT, &bytes)
            .with_context(|| format!("{} cannot be opened", path.display()))?
    } else {
        if let Some(cipher) = cipher {
            let sealed = storage::seal_file(cipher.as_ref(), GENESIS_CONTEXT, &bytes)
                .with_context(|| format!("sealing {}", path.display()))?;
            storage::write_atomic(&path, &sealed)
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "genesis sealed");
        }
        bytes
    };
    let text = std::str::from_utf8(&json)
        .with_context(|| format!("{} is not UTF-8 JSON", path.display()))?;
    Ok(sequencer::Genesis::from_json(text)?)
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
