use crate::Table;

/// Storage failures. All are fatal to the operation that hit them.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend failed (I/O, corruption detected by the engine).
    #[error("storage backend error on {table:?}: {message}")]
    Backend {
        /// Table involved, when known.
        table: Option<Table>,
        /// Backend message.
        message: String,
    },
    /// The database file could not be opened.
    #[error("cannot open store at {path}: {message}")]
    Open {
        /// File path.
        path: String,
        /// Backend message.
        message: String,
    },
    /// A stored value failed to decode.
    #[error("corrupt record in {table:?} under key {key}: {message}")]
    Corrupt {
        /// Table.
        table: Table,
        /// Hex of the key.
        key: String,
        /// What was wrong.
        message: String,
    },
}

impl StorageError {
    pub(crate) fn backend(table: Option<Table>, e: impl std::fmt::Display) -> Self {
        Self::Backend {
            table,
            message: e.to_string(),
        }
    }
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
