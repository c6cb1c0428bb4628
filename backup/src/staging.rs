//! Writes a backup: every copy lands in `DEST.partial`, is fsynced and
//! hashed from what was written, and the directory is renamed to `DEST`
//! only after the manifest is down, so `DEST` either is a whole backup or
//! does not exist.

use crate::{AuditCopy, BackupError, FileEntry, Head, Manifest, FORMAT};
use sha2::{Digest, Sha256};
use std::{
    fs::{self, File},
    io::Read,
    path::{Path, PathBuf},
};
use storage::{KvStore, RedbStore, Table, WriteBatch};

/// Suffix of a backup being written.
pub const PARTIAL_SUFFIX: &str = "partial";

/// Tries of a locked audit database, 50 ms apart.
const SQLITE_RETRIES: u32 = 600;

/// Entries per write transaction when copying a store.
const STORE_BATCH: usize = 10_000;

/// A backup being written.
#[derive(Debug)]
pub struct Staging {
    dest: PathBuf,
    dir: PathBuf,
    files: Vec<FileEntry>,
}

impl Staging {
    /// Starts a backup to `dest`, which must not exist. A `dest.partial`
    /// left by an interrupted backup is removed.
    pub fn create(dest: &Path) -> Result<Self, BackupError> {
        if dest.exists() {
            return Err(BackupError::Exists(dest.to_path_buf()));
        }
        let dir = partial_of(dest);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(BackupError::io("removing", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(BackupError::io("creating", &dir))?;
        // Keys and sealed records: the owner's alone, like the data directory.
        private(&dir, 0o700)?;
        Ok(Self {
            dest: dest.to_path_buf(),
            dir,
            files: Vec::new(),
        })
    }

    /// Where the copies are being written (the backup's files are readable
    /// there before [`Staging::finish`], for checks).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies the file `src` whole.
    pub fn add_file(&mut self, rel: &str, src: &Path) -> Result<(), BackupError> {
        let mut f = File::open(src).map_err(BackupError::io("opening", src))?;
        let len = f.metadata().map_err(BackupError::io("reading", src))?.len();
        self.add_prefix(rel, &mut f, len)
    }

    /// Copies the file `src` whole if it exists.
    pub fn add_file_if_present(&mut self, rel: &str, src: &Path) -> Result<bool, BackupError> {
        match File::open(src) {
            Ok(_) => self.add_file(rel, src).map(|()| true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BackupError::io("opening", src)(e)),
        }
    }

    /// Copies the first `len` bytes of `src` (an append-only file cut at a
    /// record boundary the caller found).
    pub fn add_prefix(
        &mut self,
        rel: &str,
        src: &mut dyn Read,
        len: u64,
    ) -> Result<(), BackupError> {
        let path = self.target(rel)?;
        let mut out = File::create(&path).map_err(BackupError::io("creating", &path))?;
        let copied = std::io::copy(&mut src.take(len), &mut out)
            .map_err(BackupError::io("copying into", &path))?;
        if copied != len {
            return Err(BackupError::Io {
                what: "copying into",
                path,
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("source ended after {copied} of {len} bytes"),
                ),
            });
        }
        out.sync_all().map_err(BackupError::io("syncing", &path))?;
        self.record(rel)
    }

    /// Copies every file under `src` (skipping names `skip` returns true
    /// for); a missing `src` copies nothing.
    pub fn add_dir(
        &mut self,
        rel: &str,
        src: &Path,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<(), BackupError> {
        let entries = match fs::read_dir(src) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BackupError::io("listing", src)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(BackupError::io("listing", src))?;
            names.push(entry.file_name());
        }
        names.sort();
        for name in names {
            let Some(name) = name.to_str() else {
                return Err(BackupError::Source(format!(
                    "{} holds a file whose name is not UTF-8: {name:?}",
                    src.display()
                )));
            };
            if skip(name) {
                continue;
            }
            let (from, to) = (src.join(name), format!("{rel}/{name}"));
            // Followed: policies deployed as links by configuration
            // management are backed up as what they point at.
            let kind = match fs::metadata(&from) {
                Ok(k) => k,
                // Removed while listing: it was obsolete.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(BackupError::io("reading", &from)(e)),
            };
            if kind.is_dir() {
                self.add_dir(&to, &from, skip)?;
            } else if kind.is_file() {
                // A file replaced by rename while listing is copied as it is
                // now; one removed meanwhile was obsolete.
                match self.add_file(&to, &from) {
                    Err(BackupError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    r => r?,
                }
            }
        }
        Ok(())
    }

    /// Copies every table of `store` from one read snapshot into a new
    /// redb file: the store as of one moment, however busy its writer.
    /// Values are copied as stored (sealed records stay sealed).
    pub fn add_store(&mut self, rel: &str, store: &dyn KvStore) -> Result<(), BackupError> {
        let path = self.target(rel)?;
        let err = |source| BackupError::Store {
            path: rel.to_owned(),
            source,
        };
        let snapshot = store.snapshot().map_err(err)?;
        {
            let out = RedbStore::open(&path).map_err(err)?;
            for table in Table::ALL {
                let mut batch = WriteBatch::default();
                let mut pending = 0usize;
                snapshot
                    .scan(table, &mut |k, v| {
                        batch.put(table, k.to_vec(), v.to_vec());
                        pending += 1;
                        if pending == STORE_BATCH {
                            out.write(std::mem::take(&mut batch), false)?;
                            pending = 0;
                        }
                        Ok(())
                    })
                    .map_err(err)?;
                out.write(batch, true).map_err(err)?;
            }
        }
        self.record(rel)
    }

    /// Copies the SQLite database at `src` with SQLite's online backup
    /// API in a single step: one read transaction, so the copy is the
    /// database as of one commit while the node keeps writing (WAL).
    pub fn add_sqlite(&mut self, rel: &str, src: &Path) -> Result<(), BackupError> {
        let path = self.target(rel)?;
        let err = |source| BackupError::Sqlite {
            path: rel.to_owned(),
            source,
        };
        let from = rusqlite::Connection::open_with_flags(
            src,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        // The node may hold a write lock for a moment.
        from.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(err)?;
        let mut to = rusqlite::Connection::open(&path).map_err(err)?;
        {
            use rusqlite::backup::StepResult;
            let backup = rusqlite::backup::Backup::new(&from, &mut to).map_err(err)?;
            // Every page in one step (-1): one read transaction. A writer
            // holding the lock this moment makes it Busy; try again.
            let mut busy = 0;
            loop {
                match backup.step(-1).map_err(err)? {
                    StepResult::Done => break,
                    StepResult::More | StepResult::Busy | StepResult::Locked
                        if busy < SQLITE_RETRIES =>
                    {
                        busy += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    _ => {
                        return Err(err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("the database stayed locked for 30 s".into()),
                        )))
                    }
                }
            }
        }
        // A self-contained file: no -wal or -shm beside it.
        to.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))
            .map_err(err)?;
        to.close().map_err(|(_, e)| err(e))?;
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(BackupError::io("syncing", &path))?;
        self.record(rel)
    }

    /// Writes the manifest and moves the backup into place.
    pub fn finish(
        mut self,
        chain_id: u64,
        head: Option<Head>,
        encrypted: bool,
        audit: AuditCopy,
    ) -> Result<Manifest, BackupError> {
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        let created_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let manifest = Manifest {
            format: FORMAT,
            created_at,
            chain_id,
            head,
            encrypted,
            audit,
            files: std::mem::take(&mut self.files),
        };
        manifest.write(&self.dir)?;
        sync_tree(&self.dir)?;
        fs::rename(&self.dir, &self.dest).map_err(BackupError::io("renaming", &self.dir))?;
        sync_parent(&self.dest)?;
        Ok(manifest)
    }

    fn target(&self, rel: &str) -> Result<PathBuf, BackupError> {
        // Each directory the path needs, created the owner's alone.
        let mut dir = self.dir.clone();
        let mut parts = rel.split('/').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                return Ok(dir.join(part));
            }
            dir.push(part);
            if !dir.exists() {
                fs::create_dir(&dir).map_err(BackupError::io("creating", &dir))?;
                private(&dir, 0o700)?;
            }
        }
        Ok(dir)
    }

    /// Hashes what was written (not what was read), so the manifest
    /// vouches for the bytes on the backup's disk.
    fn record(&mut self, rel: &str) -> Result<(), BackupError> {
        let path = self.dir.join(rel);
        private(&path, 0o600)?;
        let (bytes, sha256) = hash_file(&path)?;
        self.files.push(FileEntry {
            path: rel.to_owned(),
            bytes,
            sha256,
        });
        Ok(())
    }
}

/// Fsyncs the directory holding `path` (after a rename into it).
pub(crate) fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(BackupError::io("syncing", parent))
}

/// `dest` with `.partial` appended.
pub(crate) fn partial_of(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".");
    name.push(PARTIAL_SUFFIX);
    PathBuf::from(name)
}

/// Size and SHA-256 (hex) of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut f = File::open(path).map_err(BackupError::io("reading", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(BackupError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// Fsyncs every directory under `dir` (files were synced when written).
pub(crate) fn sync_tree(dir: &Path) -> Result<(), BackupError> {
    for entry in fs::read_dir(dir).map_err(BackupError::io("listing", dir))? {
        let entry = entry.map_err(BackupError::io("listing", dir))?;
        if entry
            .file_type()
            .map_err(BackupError::io("reading", dir))?
            .is_dir()
        {
            sync_tree(&entry.path())?;
        }
    }
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(BackupError::io("syncing", dir))
}

/// Sets `path`'s mode: the owner's alone.
#[cfg(unix)]
pub(crate) fn private(path: &Path, mode: u32) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(BackupError::io("restricting", path))
}

#[cfg(not(unix))]
pub(crate) fn private(_: &Path, _: u32) -> Result<(), BackupError> {
    Ok(())
}
