//! Checking a backup against its manifest, and restoring it.

use crate::staging::{hash_file, partial_of, private, sync_parent, sync_tree};
use crate::{BackupError, Manifest, DIGEST_FILE, MANIFEST_FILE};
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

/// Checks every file of the backup in `dir` against its manifest: a file
/// missing, of another size or digest, or not listed is refused by name.
pub fn verify(dir: &Path) -> Result<Manifest, BackupError> {
    let manifest = Manifest::read(dir)?;
    let mut listed = BTreeSet::new();
    for entry in &manifest.files {
        if !is_plain_relative(&entry.path) {
            return Err(BackupError::NotABackup(format!(
                "{MANIFEST_FILE} lists {:?}, which is not a path inside the backup",
                entry.path
            )));
        }
        listed.insert(entry.path.clone());
        let path = dir.join(&entry.path);
        if !path.is_file() {
            return Err(BackupError::Missing(entry.path.clone()));
        }
        let (bytes, sha256) = hash_file(&path)?;
        if bytes != entry.bytes {
            return Err(BackupError::Damaged {
                path: entry.path.clone(),
                reason: format!(
                    "has {bytes} bytes where the manifest records {}",
                    entry.bytes
                ),
            });
        }
        if sha256 != entry.sha256 {
            return Err(BackupError::Damaged {
                path: entry.path.clone(),
                reason: "does not match its recorded SHA-256".into(),
            });
        }
    }
    if let crate::AuditCopy::Sqlite { file } = &manifest.audit {
        if !listed.contains(file) {
            return Err(BackupError::NotABackup(format!(
                "{MANIFEST_FILE} names the audit database {file:?}, which it does not list"
            )));
        }
    }
    for found in files_under(dir, "")? {
        if found != MANIFEST_FILE && found != DIGEST_FILE && !listed.contains(&found) {
            return Err(BackupError::Unexpected(found));
        }
    }
    Ok(manifest)
}

/// Checks the backup in `from` and copies it into `to` (which must not
/// exist, or be empty) in one step: [`unpack`] then [`Unpacked::commit`].
pub fn restore(from: &Path, to: &Path) -> Result<Manifest, BackupError> {
    let unpacked = unpack(from, to)?;
    let manifest = unpacked.manifest.clone();
    unpacked.commit()?;
    Ok(manifest)
}

/// A restore copied beside its destination, to be checked before it is
/// moved into place.
#[derive(Debug)]
pub struct Unpacked {
    /// The backup's manifest.
    pub manifest: Manifest,
    dir: PathBuf,
    to: PathBuf,
}

impl Unpacked {
    /// Where the restored files are until [`Unpacked::commit`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the restored directory into place.
    pub fn commit(self) -> Result<(), BackupError> {
        sync_tree(&self.dir)?;
        fs::rename(&self.dir, &self.to).map_err(BackupError::io("renaming", &self.dir))?;
        sync_parent(&self.to)
    }

    /// Removes the copy (a check failed).
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Checks the backup in `from` and copies it into `to.partial`; `to` must
/// not exist or be empty. The copy is checked against the manifest again,
/// so the restored bytes are the ones the manifest vouches for.
pub fn unpack(from: &Path, to: &Path) -> Result<Unpacked, BackupError> {
    let manifest = verify(from)?;
    match fs::read_dir(to) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Exists(to.to_path_buf()));
            }
            fs::remove_dir(to).map_err(BackupError::io("removing", to))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io("reading", to)(e)),
    }
    let dir = partial_of(to);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(BackupError::io("removing", &dir))?;
    }
    fs::create_dir_all(&dir).map_err(BackupError::io("creating", &dir))?;
    private(&dir, 0o700)?;
    let unpacked = Unpacked {
        manifest,
        dir,
        to: to.to_path_buf(),
    };
    for entry in &unpacked.manifest.files {
        let (src, dst) = (from.join(&entry.path), unpacked.dir.join(&entry.path));
        let copied = (|| {
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(BackupError::io("creating", parent))?;
            }
            fs::copy(&src, &dst).map_err(BackupError::io("copying", &src))?;
            let (bytes, sha256) = hash_file(&dst)?;
            if bytes != entry.bytes || sha256 != entry.sha256 {
                return Err(BackupError::Damaged {
                    path: entry.path.clone(),
                    reason: "changed while it was being restored".into(),
                });
            }
            fs::File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(BackupError::io("syncing", &dst))
        })();
        if let Err(e) = copied {
            let _ = fs::remove_dir_all(&unpacked.dir);
            return Err(e);
        }
    }
    Ok(unpacked)
}

/// `a/b` with no `..`, no root and no empty part.
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

pub(crate) fn files_under(dir: &Path, prefix: &str) -> Result<Vec<String>, BackupError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(BackupError::io("listing", dir))? {
        let entry = entry.map_err(BackupError::io("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry
            .file_type()
            .map_err(BackupError::io("reading", dir))?
            .is_dir()
        {
            out.extend(files_under(&entry.path(), &rel)?);
        } else {
            out.push(rel);
        }
    }
    Ok(out)
}
