//! What can stop a load run.

/// Errors of the load generator and of its JSON-RPC client.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A file it reads (dev.json, a CA certificate, `/proc/PID/stat`) is
    /// missing or unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The endpoint could not be reached or its answer not read; the
    /// source says why (refused, TLS, timeout).
    #[error("{what}")]
    Transport {
        /// What was being done.
        what: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint answered with an error, or with something that is not
    /// JSON-RPC.
    #[error("{0}")]
    Node(String),
    /// Setting the workload up failed: a key, a contract, a reverted setup
    /// transaction.
    #[error("setup: {0}")]
    Setup(String),
    /// The in-process replica of the ceiling measurement refused what the
    /// node accepted.
    #[error("ceiling: {0}")]
    Ceiling(String),
    /// Transactions were rejected, or not included in time.
    #[error("{0}")]
    Load(String),
}

impl LoadgenError {
    pub(crate) fn file(path: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.to_string(),
            message: e.to_string(),
        }
    }

    pub(crate) fn node(e: impl std::fmt::Display) -> Self {
        Self::Node(e.to_string())
    }

    pub(crate) fn setup(e: impl std::fmt::Display) -> Self {
        Self::Setup(e.to_string())
    }
}

/// Results of the load generator.
pub type Result<T, E = LoadgenError> = std::result::Result<T, E>;
