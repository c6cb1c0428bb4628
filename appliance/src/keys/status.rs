//! Where the data keys stand: versions, their use, and re-encryption
//! progress. Read from the data directory (the keyring document and the
//! re-encryption progress files), so `prividium keys status` and the
//! running node's admin view (`prividium_adminKeyStatus`, the console) say
//! the same thing.

use anyhow::Result;
use encryption::Keyring;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One data-key version.
#[derive(Debug, Serialize)]
pub struct DekRow {
    /// Version number.
    pub version: u32,
    /// Unix seconds it was created.
    pub created: u64,
    /// Last nonce epoch reserved for it.
    pub epoch: u32,
    /// Records sealed under it, as of the last usage report.
    pub sealed: u64,
    /// `current`, `retired` or `readable` (records may remain under it).
    pub state: &'static str,
    /// Unix seconds it was retired.
    pub retired: Option<u64>,
}

/// The keys of an encrypted data directory.
#[derive(Debug, Serialize)]
pub struct KeyStatus {
    /// Provider that wraps the keys.
    pub provider: String,
    /// Version sealing new records.
    pub current: u32,
    /// Every version.
    pub deks: Vec<DekRow>,
    /// Re-encryption in progress, one line per store.
    pub reencryption: Vec<String>,
    /// Older versions still live (a running node moves their records and
    /// retires them).
    pub older_live: bool,
}

/// The status of `data_dir`'s keys; `None` when it is not encrypted.
pub fn key_status(data_dir: &Path) -> Result<Option<KeyStatus>> {
    let ring = Keyring::new(data_dir);
    if !ring.exists() {
        return Ok(None);
    }
    let doc = ring.read()?;
    let deks = doc
        .deks
        .iter()
        .map(|d| DekRow {
            version: d.version,
            created: d.created,
            epoch: d.epoch,
            sealed: d.sealed,
            state: if d.version == doc.current {
                "current"
            } else if d.retired.is_some() {
                "retired"
            } else {
                "readable"
            },
            retired: d.retired,
        })
        .collect();
    let mut reencryption = Vec::new();
    for store in ["chain", "prover"] {
        if let Some(p) = encryption::reencrypt::load_progress(data_dir, store) {
            reencryption.push(format!(
                "{store} to v{}: {} examined, {} re-sealed, tables done: {}{}",
                p.target,
                p.examined,
                p.resealed,
                p.done_tables.join(","),
                p.table
                    .map(|t| format!(", in progress: {t}"))
                    .unwrap_or_default()
            ));
        }
    }
    let partial_log = format!("{}.reseal", sequencer::BLOCK_LOG_FILE);
    if data_dir.join(&partial_log).exists() {
        reencryption.push(format!("block log: partial copy in {partial_log}"));
    }
    Ok(Some(KeyStatus {
        provider: doc.provider.clone(),
        current: doc.current,
        older_live: !doc.live_versions_except(doc.current).is_empty(),
        deks,
        reencryption,
    }))
}

/// `prividium keys status`.
pub fn print_status(data_dir: &Path) -> Result<()> {
    let Some(s) = key_status(data_dir)? else {
        println!("{}: not encrypted", data_dir.display());
        return Ok(());
    };
    let when = access_control::siwe::rfc3339;
    println!("provider: {}", s.provider);
    println!("current data key: v{}", s.current);
    println!(
        "{:<8} {:<22} {:<8} {:<14} STATE",
        "VERSION", "CREATED", "EPOCH", "SEALED"
    );
    for d in &s.deks {
        let state = match (d.state, d.retired) {
            ("retired", Some(t)) => format!("retired {}", when(t)),
            ("readable", _) => "readable (records may remain)".to_string(),
            (s, _) => s.to_string(),
        };
        println!(
            "v{:<7} {:<22} {:<8} {:<14} {state}",
            d.version,
            when(d.created),
            d.epoch,
            d.sealed
        );
    }
    for line in &s.reencryption {
        println!("re-encryption of {line}");
    }
    match (s.reencryption.is_empty(), s.older_live) {
        (true, false) => println!("re-encryption: none pending"),
        (true, true) => println!(
            "re-encryption: older keys still live; a running node moves their records and retires them"
        ),
        (false, _) => {}
    }
    Ok(())
}

/// The node's key status for the admin view.
pub struct KeyStatusReport(pub PathBuf);

impl rpc::StageReport for KeyStatusReport {
    fn report(&self) -> Result<serde_json::Value, String> {
        match key_status(&self.0) {
            Ok(Some(s)) => serde_json::to_value(s).map_err(|e| e.to_string()),
            Ok(None) => Ok(serde_json::json!({ "encrypted": false })),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}
