//! `MANIFEST.json`: what a backup holds, versioned (`format`), and its
//! digest beside it so a damaged manifest is refused as such rather than
//! blaming the file whose recorded hash it garbled.

use crate::BackupError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;
/// The manifest's name inside a backup.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// SHA-256 (hex) of the manifest's bytes.
pub const DIGEST_FILE: &str = "MANIFEST.sha256";

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// When the copy was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The chain's EIP-155 id.
    pub chain_id: u64,
    /// The last block in the backup's block log (none on a chain that has
    /// produced no block yet).
    pub head: Option<Head>,
    /// Whether the data directory (and so the backup) is encrypted at rest.
    pub encrypted: bool,
    /// Where the audit trail's events are.
    pub audit: AuditCopy,
    /// Every file, sorted by path.
    pub files: Vec<FileEntry>,
}

/// A block: the backup's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Block number.
    pub number: u64,
    /// Block hash (0x-hex).
    pub block_hash: String,
}

/// The audit trail's database in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditCopy {
    /// The SQLite database, copied into the backup at `file`.
    Sqlite {
        /// Path inside the backup.
        file: String,
    },
    /// A Postgres database, not copied: back it up with the bank's own
    /// regime (`pg_dump`, PITR) to a point at or after `created_at`.
    Postgres {
        /// The database URL, password removed.
        database: String,
    },
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path inside the backup (`/`-separated, relative).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents (hex).
    pub sha256: String,
}

impl Manifest {
    /// Writes the manifest and its digest into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), BackupError> {
        let mut json =
            serde_json::to_vec_pretty(self).map_err(|e| BackupError::NotABackup(e.to_string()))?;
        json.push(b'\n');
        let digest = format!("{}\n", hex::encode(Sha256::digest(&json)));
        let path = dir.join(MANIFEST_FILE);
        storage::write_atomic(&path, &json).map_err(BackupError::io("writing", path))?;
        let path = dir.join(DIGEST_FILE);
        storage::write_atomic(&path, digest.as_bytes()).map_err(BackupError::io("writing", path))
    }

    /// Reads and checks the manifest of the backup in `dir`.
    pub fn read(dir: &Path) -> Result<Self, BackupError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => BackupError::Missing(name.to_owned()),
                _ => BackupError::Io {
                    what: "reading",
                    path: dir.join(name),
                    source: e,
                },
            })
        };
        let json = read(MANIFEST_FILE)?;
        let digest = read(DIGEST_FILE)?;
        if String::from_utf8_lossy(&digest).trim() != hex::encode(Sha256::digest(&json)) {
            return Err(BackupError::Damaged {
                path: MANIFEST_FILE.into(),
                reason: format!("does not match {DIGEST_FILE}"),
            });
        }
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let version: Version = serde_json::from_slice(&json)
            .map_err(|e| BackupError::NotABackup(format!("{MANIFEST_FILE}: {e}")))?;
        if version.format != FORMAT {
            return Err(BackupError::Format {
                found: version.format,
                supported: FORMAT,
            });
        }
        serde_json::from_slice(&json)
            .map_err(|e| BackupError::NotABackup(format!("{MANIFEST_FILE}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            created_at: "2026-12-05T11:00:00Z".into(),
            chain_id: 7777,
            head: Some(Head {
                number: 42,
                block_hash: format!("0x{}", "ab".repeat(32)),
            }),
            encrypted: true,
            audit: AuditCopy::Sqlite {
                file: "audit/audit.db".into(),
            },
            files: vec![FileEntry {
                path: "blocks.log".into(),
                bytes: 8,
                sha256: hex::encode(Sha256::digest(b"PVDBLOG1")),
            }],
        }
    }

    /// Backups outlive builds: a format-1 manifest written today must read
    /// the same in every later build (and a change to it is a new format).
    #[test]
    fn format_1_matches_the_golden_fixture() {
        let dir = tempfile::tempdir().unwrap();
        sample().write(dir.path()).unwrap();
        let golden = include_str!("../tests/fixtures/manifest-v1.json");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap(),
            golden
        );
        std::fs::write(dir.path().join(MANIFEST_FILE), golden).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), sample());
    }

    #[test]
    fn a_damaged_or_newer_manifest_is_refused_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = sample();
        m.write(dir.path()).unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let e = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("MANIFEST.json does not match"), "{e}");

        m.format = FORMAT + 1;
        m.write(dir.path()).unwrap();
        let e = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("format 2 is not supported"), "{e}");

        std::fs::remove_file(dir.path().join(DIGEST_FILE)).unwrap();
        let e = Manifest::read(dir.path()).unwrap_err().to_string();
        assert_eq!(e, "backup is incomplete: MANIFEST.sha256 is missing");
    }
}
