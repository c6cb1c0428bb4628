//! `prividium settlement`: the bridge's key, and the settlement contract as
//! an operator deploys, registers and inspects it.

use crate::{chain_files, keys::at_rest};
use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use gateway_bridge::{EvmSettlement, SendPolicy, SettlementClient};
use std::{
    io::Read,
    path::{Path, PathBuf},
};
use storage::SharedCipher;

/// Arguments.
#[derive(Debug, Parser)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the bridge's settlement address (creates its sealed key on
    /// first use); fund this address on the settlement chain.
    Address {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Replace the bridge's key with a funded one read from stdin (hex).
    ImportKey {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Deploy the settlement contract; prints its address only.
    Deploy {
        /// Settlement chain JSON-RPC URL.
        #[arg(long)]
        rpc: String,
        /// Environment variable with the owner's private key (hex): the
        /// bank's governance key, never the bridge's.
        #[arg(long, default_value = "PRIVIDIUM_SETTLEMENT_OWNER_KEY")]
        owner_key_env: String,
    },
    /// Register this appliance's chain (chain id and genesis state
    /// commitment from the data directory) with its program id and the
    /// bridge as submitter.
    Register {
        /// Settlement chain JSON-RPC URL.
        #[arg(long)]
        rpc: String,
        /// The settlement contract.
        #[arg(long)]
        contract: Address,
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
        /// Program id batches are proven with (`program_id` in any
        /// `proofs/batch-N.json`, or the prover's start-up log).
        #[arg(long)]
        program_id: B256,
        /// Submitter (default: this data directory's bridge address).
        #[arg(long)]
        submitter: Option<Address>,
        /// Environment variable with the owner's private key (hex).
        #[arg(long, default_value = "PRIVIDIUM_SETTLEMENT_OWNER_KEY")]
        owner_key_env: String,
        /// Register a chain already settled elsewhere up to batch K (moving
        /// from an earlier contract): the next batch is K+1 and starts from
        /// batch K's state commitment, read from `proofs/batch-K.json`.
        #[arg(long, value_name = "K")]
        after_batch: Option<u64>,
    },
    /// Print what the contract holds for a chain (JSON), or for one batch.
    Status {
        /// Settlement chain JSON-RPC URL.
        #[arg(long)]
        rpc: String,
        /// The settlement contract.
        #[arg(long)]
        contract: Address,
        /// The private chain's id.
        #[arg(long)]
        chain_id: u64,
        /// One batch instead of the chain record.
        #[arg(long)]
        batch: Option<u64>,
    },
}

/// Runs a `settlement` subcommand.
pub async fn run(args: Args) -> Result<()> {
    match args.cmd {
        Cmd::Address { data_dir } => {
            let cipher = at_rest::recorded_cipher(&data_dir).await?;
            println!("{}", bridge_address(&data_dir, cipher.as_ref())?);
        }
        Cmd::ImportKey { data_dir } => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            let secret: B256 = text
                .trim()
                .parse()
                .context("stdin must hold a 32-byte hex private key")?;
            let cipher = at_rest::recorded_cipher(&data_dir).await?;
            let address = gateway_bridge::signer::import(&data_dir, secret, cipher.as_deref())?;
            println!("{address}");
        }
        Cmd::Deploy { rpc, owner_key_env } => {
            let owner = owner_key(&owner_key_env)?;
            let client = EvmSettlement::deploy(&rpc, owner, SendPolicy::default()).await?;
            println!("{}", client.contract());
        }
        Cmd::Register {
            rpc,
            contract,
            data_dir,
            program_id,
            submitter,
            owner_key_env,
            after_batch,
        } => {
            let chain = chain_files::load_chain(&data_dir)?;
            let cipher = at_rest::recorded_cipher(&data_dir).await?;
            let submitter = match submitter {
                Some(s) => s,
                None => bridge_address(&data_dir, cipher.as_ref())?,
            };
            let (start_batch, start) = match after_batch {
                None => (0, genesis_commitment(&data_dir, &chain, cipher.as_ref())?),
                Some(k) => (k, settled_commitment(&data_dir, chain.chain_id, k)?),
            };
            let client = EvmSettlement::new(
                &rpc,
                contract,
                Some(owner_key(&owner_key_env)?),
                SendPolicy::default(),
            )?;
            let mined = client
                .register_chain(chain.chain_id, start_batch, start, program_id, submitter)
                .await?;
            eprintln!(
                "registered chain {} (next batch {}, state commitment {start}, program {program_id}, submitter {submitter}) in {}",
                chain.chain_id,
                start_batch + 1,
                mined.tx_hash
            );
        }
        Cmd::Status {
            rpc,
            contract,
            chain_id,
            batch,
        } => {
            let client = EvmSettlement::new(&rpc, contract, None, SendPolicy::default())?;
            let json = match batch {
                None => serde_json::to_string_pretty(
                    &client
                        .chain(chain_id)
                        .await?
                        .with_context(|| format!("chain {chain_id} is not registered"))?,
                )?,
                Some(n) => {
                    serde_json::to_string_pretty(&client.batch(chain_id, n).await?.with_context(
                        || format!("batch {n} of chain {chain_id} is not settled"),
                    )?)?
                }
            };
            println!("{json}");
        }
    }
    Ok(())
}

/// keccak256(genesis state root ‖ block 0's hash): where batch 1 starts.
fn genesis_commitment(
    data_dir: &Path,
    chain: &chain_files::ChainFile,
    cipher: Option<&SharedCipher>,
) -> Result<B256> {
    let genesis = chain_files::load_genesis(data_dir, cipher)?;
    let root = genesis.state().state_root();
    let hash = genesis.header(&chain.spec()?, root).hash_slow();
    Ok(state_transition::state_commitment(root, hash))
}

/// Batch `k`'s state commitment after it, from its proven outputs.
fn settled_commitment(data_dir: &Path, chain_id: u64, k: u64) -> Result<B256> {
    let path = data_dir
        .join(crate::data_dir::PROOFS_DIR)
        .join(proof::OutputsFile::file_name(k));
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: proof::OutputsFile = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not a batch outputs file", path.display()))?;
    let outputs = file.outputs();
    if (outputs.chain_id, outputs.batch_number) != (chain_id, k) {
        bail!(
            "{} is chain {} batch {}, not chain {chain_id} batch {k}",
            path.display(),
            outputs.chain_id,
            outputs.batch_number
        );
    }
    Ok(outputs.settled().new_commitment)
}

/// The bridge's settlement address (its sealed key is created on first use).
fn bridge_address(data_dir: &Path, cipher: Option<&SharedCipher>) -> Result<Address> {
    Ok(gateway_bridge::signer::load_or_create(data_dir, cipher.map(|c| c.as_ref()))?.address())
}

fn owner_key(var: &str) -> Result<PrivateKeySigner> {
    let Ok(hex) = std::env::var(var) else {
        bail!("set {var} to the owner's private key (hex)");
    };
    hex.trim()
        .parse()
        .with_context(|| format!("{var} is not a private key"))
}
