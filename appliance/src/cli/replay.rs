//! `prividium replay`: rebuild derived state from the block log.

use crate::{chain_files, data_dir::STATE_FILE};
use anyhow::{bail, Context, Result};
use encryption::EncryptedStore;
use indicatif::{ProgressBar, ProgressStyle};
use sequencer::ChainView;
use std::{path::PathBuf, sync::Arc};
use storage::{RedbStore, SharedCipher};

/// Arguments of `prividium replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory of a stopped node.
    #[arg(long, env = "PRIVIDIUM_DATA_DIR")]
    pub data_dir: PathBuf,
}

/// Rebuilds into a fresh store, compares with the old one, then swaps it in.
/// On an encrypted appliance both stores and the log are read through `cipher`.
pub fn run(args: Args, cipher: Option<SharedCipher>) -> Result<()> {
    let dir = args.data_dir;
    let chain_file = chain_files::load_chain(&dir)?;
    let genesis = chain_files::load_genesis(&dir, cipher.as_ref())?;
    let chain = chain_file.spec()?;
    let old_path = dir.join(STATE_FILE);
    let previous = if old_path.exists() {
        let old = EncryptedStore::wrap_if(
            Arc::new(
                RedbStore::open(&old_path)
                    .context("opening the derived store (is the node still running?)")?,
            ),
            cipher.clone(),
        );
        let view = ChainView::new(old.snapshot()?);
        let head = view.head()?;
        Some((head, view.state_root(head)?))
    } else {
        None
    };
    let new_path = dir.join("state.redb.rebuild");
    let _ = std::fs::remove_file(&new_path);
    let store = EncryptedStore::wrap_if(Arc::new(RedbStore::open(&new_path)?), cipher.clone());
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "replaying {bar:40} {pos}/{len} blocks ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    let report = sequencer::rebuild(
        &dir,
        store.clone(),
        &genesis,
        &chain,
        cipher.clone(),
        |n, last| {
            bar.set_length(last);
            bar.set_position(n);
        },
    )?;
    bar.finish_and_clear();
    drop(store);
    println!("replayed blocks: {}", report.to);
    println!("transactions: {}", report.transactions);
    println!("state root: {}", report.state_root);
    if let Some((head, Some(root))) = previous {
        if head == report.to && root != report.state_root {
            bail!("replayed state root {} differs from the derived store's {root} at block {head}; kept the old store, rebuilt copy at {}", report.state_root, new_path.display());
        }
    }
    std::fs::rename(&new_path, &old_path)?;
    // Contracts created inside transactions (by constructors and
    // factories) of a chain from before their owners were recorded at
    // creation get their signer as deployer now.
    let docs = access_control::store::DocDir::new(dir.join(access_control::ACCESS_DIR), cipher);
    let wallets = Arc::new(access_control::wallets::Wallets::open(&docs)?);
    let directory = access_control::directory::ContractDirectory::open(&docs, wallets)?;
    let attributed = directory.attribute_replayed(&report.created)?;
    println!(
        "contracts created: {} ({attributed} newly attributed)",
        report.created.len()
    );
    Ok(())
}
