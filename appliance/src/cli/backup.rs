//! `prividium backup` and `prividium restore`.

use crate::{audit_trail, backup_plan, data_dir::PID_FILE};
use anyhow::{bail, Context, Result};
use audit::action;
use backup::{socket, AuditCopy, BackupError, Manifest};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Arguments of `prividium backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Data directory of the node (running or stopped).
    #[arg(long, env = "PRIVIDIUM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Where to write the backup: a directory that must not exist yet.
    #[arg(long)]
    pub to: PathBuf,
}

/// Arguments of `prividium restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup (a directory written by `prividium backup`).
    #[arg(long)]
    pub from: PathBuf,
    /// The new data directory: must not exist, or be empty.
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// Takes a backup: through the running node's socket, or from the files of
/// a stopped node.
pub async fn backup(args: BackupArgs) -> Result<()> {
    let to = std::path::absolute(&args.to).context("reading the working directory")?;
    backup_plan::outside(&args.data_dir, &to)?;
    let sock = args.data_dir.join(socket::SOCKET_FILE);
    let manifest = match socket::request(&sock, &to).await {
        Err(BackupError::NoNode(_)) => {
            if let Some(pid) = running_pid(&args.data_dir) {
                bail!(
                    "the node (pid {pid}) is running but does not answer on {} (still sealed or starting?); try again once it serves",
                    sock.display()
                );
            }
            let sources = backup_plan::Sources::stopped(&args.data_dir)?;
            let manifest = backup_plan::take(sources, to.clone()).await?;
            audit_trail::record_key_op(
                &args.data_dir,
                action::BACKUP_TAKEN,
                Some("data-directory".into()),
                backup_plan::summary(&manifest),
            )
            .await?;
            manifest
        }
        answered => answered?,
    };
    print(&to, &manifest, "backup written to");
    Ok(())
}

/// Restores a backup into a new data directory.
pub async fn restore(args: RestoreArgs) -> Result<()> {
    let to = std::path::absolute(&args.data_dir).context("reading the working directory")?;
    let from = args.from.clone();
    let unpacked = tokio::task::spawn_blocking({
        let to = to.clone();
        move || backup::unpack(&from, &to)
    })
    .await??;
    let manifest = unpacked.manifest.clone();
    let fresh_key = match backup_plan::check_restored(unpacked.dir(), &manifest).await {
        Ok(k) => k,
        Err(e) => {
            unpacked.discard();
            return Err(e.context("the restored copy does not open; nothing was restored"));
        }
    };
    tokio::task::spawn_blocking(move || unpacked.commit()).await??;
    backup_plan::adopt_restored(&to, &manifest).await?;
    if let Some(v) = fresh_key {
        println!(
            "data key v{v} is now current (a restored node never seals under the backup's key)"
        );
    }
    match &manifest.audit {
        // The restore is evidence for the restored trail.
        AuditCopy::Sqlite { .. } => {
            let mut details = backup_plan::summary(&manifest);
            details["from"] = json!(args.from.display().to_string());
            audit_trail::record_key_op(
                &to,
                action::BACKUP_RESTORED,
                Some("data-directory".into()),
                details,
            )
            .await?;
            if let Some(v) = fresh_key {
                audit_trail::record_key_op(
                    &to,
                    action::DEK_ROTATED,
                    Some("data-keys".into()),
                    json!({ "version": v, "reason": "restored from a backup" }),
                )
                .await?;
            }
        }
        // The trail is a shared database, maybe still the live node's: a
        // restore drill must not write into it. Nothing is recorded.
        AuditCopy::Postgres { .. } => {}
    }
    print(&to, &manifest, "restored into");
    if let AuditCopy::Postgres { database } = &manifest.audit {
        println!(
            "audit events are in {database}: restore that database to a point at or after {} first",
            manifest.created_at
        );
    }
    Ok(())
}

fn print(dir: &Path, m: &Manifest, what: &str) {
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    println!("{what} {}", dir.display());
    match &m.head {
        Some(h) => println!("head block: {} ({})", h.number, h.block_hash),
        None => println!("head block: none yet"),
    }
    println!("files: {} ({bytes} bytes)", m.files.len());
    println!(
        "encrypted at rest: {}",
        if m.encrypted {
            "yes"
        } else {
            "NO (encryption is off in this data directory)"
        }
    );
    match &m.audit {
        AuditCopy::Sqlite { file } => println!("audit database: {file} (copied)"),
        AuditCopy::Postgres { database } => {
            println!("audit database: {database} (not copied: back it up with pg_dump or PITR)")
        }
    }
}

/// The pid in the data directory's pid file, if that process is alive.
fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}
