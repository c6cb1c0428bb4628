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
    /// A sealed record failed to open: tampered, moved, or the wrong key.
    #[error("sealed record {table}/{key} cannot be read: {reason}")]
    Sealed {
        /// Table name.
        table: &'static str,
        /// Hex of the stored key.
        key: String,
        /// What went wrong.
        reason: crate::CipherError,
    },
    /// The operation does not exist for this table in this store (a range
    /// scan over blinded keys, say).
    #[error("unsupported on {table}: {message}")]
    Unsupported {
        /// Table name.
        table: &'static str,
        /// Why.
        message: String,
    },
}

impl StorageError {
    /// A backend failure with its message (for stores built outside this crate).
    pub fn backend_msg(table: Option<Table>, e: impl std::fmt::Display) -> Self {
        Self::backend(table, e)
    }

    pub(crate) fn backend(table: Option<Table>, e: impl std::fmt::Display) -> Self {
        Self::Backend {
            table,
            message: e.to_string(),
        }
    }
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
