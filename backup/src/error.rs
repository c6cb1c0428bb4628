use std::path::PathBuf;

/// Why a backup could not be taken, checked or restored. A damaged or
/// incomplete backup is named by the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The destination already holds something.
    #[error("{} already exists; a backup or restore never overwrites", .0.display())]
    Exists(PathBuf),
    /// The backup has no manifest, or its manifest does not parse.
    #[error("not a prividium backup: {0}")]
    NotABackup(String),
    /// Something in the data directory cannot be copied as it is.
    #[error("cannot back up: {0}")]
    Source(String),
    /// The manifest was written by a newer version.
    #[error("backup format {found} is not supported (this build reads format {supported})")]
    Format {
        /// The manifest's format.
        found: u32,
        /// What this build reads.
        supported: u32,
    },
    /// A file the manifest lists is missing.
    #[error("backup is incomplete: {0} is missing")]
    Missing(String),
    /// A file's size or digest differs from the manifest.
    #[error("backup is damaged: {path} {reason}")]
    Damaged {
        /// The file, relative to the backup.
        path: String,
        /// What differs.
        reason: String,
    },
    /// A file is in the backup but not in its manifest.
    #[error("backup holds {0}, which its manifest does not list")]
    Unexpected(String),
    /// A store could not be read or written.
    #[error("copying store {path}: {source}")]
    Store {
        /// The store file, relative to the backup.
        path: String,
        /// Why.
        source: storage::StorageError,
    },
    /// SQLite refused the online copy.
    #[error("copying the audit database {path}: {source}")]
    Sqlite {
        /// The database file, relative to the backup.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// No node listens on the backup socket.
    #[error("no node listens on {}", .0.display())]
    NoNode(PathBuf),
    /// The running node refused or failed the backup it was asked for.
    #[error("the node answered: {0}")]
    Node(String),
}

impl BackupError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
