//! Online backup and restore of a data directory.
//!
//! A backup is a directory: the data directory's files as they are at rest
//! (sealed records stay sealed; nothing is decrypted into a backup), the
//! live stores copied from one read snapshot each, the audit database
//! through SQLite's online backup API, and `MANIFEST.json` naming every
//! file with its size and SHA-256. The appliance decides *what* goes in
//! (it knows the data directory's layout); this crate makes each copy
//! consistent and durable, writes the manifest, checks a backup and
//! restores it.

mod check;
mod error;
mod manifest;
pub mod socket;
mod staging;

pub use check::{restore, unpack, verify, Unpacked};
pub use error::BackupError;
pub use manifest::{AuditCopy, FileEntry, Head, Manifest, DIGEST_FILE, FORMAT, MANIFEST_FILE};
pub use staging::{Staging, PARTIAL_SUFFIX};

#[cfg(test)]
mod tests;
