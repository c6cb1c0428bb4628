//! Every path in a node's data directory, in one place.
//!
//! The names the binary owns are defined here; a library that keeps files of
//! its own names them itself (its constant is listed below), so it can be
//! used without the binary. A backup copies this layout file by file
//! (`backup_plan`), and key rotation re-seals every sealed entry (`keys::reseal`).
//!
//! | path | what | sealed | named by |
//! |---|---|---|---|
//! | `chain.json` | chain rules: id, fee mode, gas limit | no (public) | [`CHAIN_FILE`] |
//! | `genesis.json` | genesis allocations | yes, once unsealed | [`GENESIS_FILE`] |
//! | `blocks.log` | the fsync'd block log, the durable record | yes | `sequencer::BLOCK_LOG_FILE` |
//! | `state.redb` | derived state, receipts, indexes | yes | [`STATE_FILE`] |
//! | `prover.redb` | the prover's job store (witnesses, proofs) | yes | [`PROVER_FILE`] |
//! | `prover-checkpoint.bin` | the cutter's state at a batch boundary | yes | [`CHECKPOINT_FILE`] |
//! | `proofs/` | `batch-N.proof`, `batch-N.json` | no (public) | [`PROOFS_DIR`] |
//! | `keys/` | keyring, sealed key file, `encryption.json` | wrapped keys | `encryption::KEYS_DIR`, [`ENCRYPTION_SETTINGS_FILE`] |
//! | `access/` | API keys, wallets, spend, contract directory, policies' ABIs | yes | `access_control::ACCESS_DIR` |
//! | `audit/` | audit database (SQLite), signing key, `audit.json`, `head.json` | per record | `audit::trail::AUDIT_DIR`, [`AUDIT_DB`] |
//! | `bridge/` | the settlement signer's key and address | the key | `gateway_bridge::signer::BRIDGE_DIR` |
//! | `backup.sock` | `prividium backup`'s socket, while the node runs | – | `backup::socket::SOCKET_FILE` |
//! | `prividium.pid` | the running node's process id (`policies reload`) | no | [`PID_FILE`] |
//! | `dev.json`, `dev-secrets.json`, `admin_key.sha256` | a `prividium dev` chain's accounts and admin key | no (dev only) | [`DEV_FILE`], [`DEV_SECRETS_FILE`], [`DEV_ADMIN_HASH_FILE`] |

use std::path::{Path, PathBuf};

/// The chain's rules (public, read before the keys are unsealed).
pub const CHAIN_FILE: &str = "chain.json";
/// Genesis allocations.
pub const GENESIS_FILE: &str = "genesis.json";
/// The derived store.
pub const STATE_FILE: &str = "state.redb";
/// The prover's job store (witnesses and proofs), sealed like the chain.
pub const PROVER_FILE: &str = "prover.redb";
/// The cutter's state at a batch boundary (sealed: it holds every balance).
pub const CHECKPOINT_FILE: &str = "prover-checkpoint.bin";
/// Where `batch-N.proof` and `batch-N.json` are written (public data only).
pub const PROOFS_DIR: &str = "proofs";
/// Encryption at rest as configured at creation, inside `keys/`.
pub const ENCRYPTION_SETTINGS_FILE: &str = "encryption.json";
/// The embedded audit database (when no Postgres URL is configured).
pub const AUDIT_DB: &str = "audit/audit.db";
/// Process id of the running node.
pub const PID_FILE: &str = "prividium.pid";
/// A dev chain's endpoints, accounts and admin key, for tools and tests.
pub const DEV_FILE: &str = "dev.json";
/// A dev chain's accounts and API key, written once with the chain;
/// [`DEV_FILE`] is re-derived from it at every start.
pub const DEV_SECRETS_FILE: &str = "dev-secrets.json";
/// Hash of a dev chain's admin API key.
pub const DEV_ADMIN_HASH_FILE: &str = "admin_key.sha256";

/// A node's data directory.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// The directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self(root.into())
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.0
    }

    /// The derived store.
    pub fn state_store(&self) -> PathBuf {
        self.0.join(STATE_FILE)
    }

    /// The prover's job store.
    pub fn prover_store(&self) -> PathBuf {
        self.0.join(PROVER_FILE)
    }

    /// The cutter's checkpoint.
    pub fn checkpoint(&self) -> PathBuf {
        self.0.join(CHECKPOINT_FILE)
    }

    /// Exported proofs.
    pub fn proofs(&self) -> PathBuf {
        self.0.join(PROOFS_DIR)
    }

    /// `prividium backup`'s socket.
    pub fn backup_socket(&self) -> PathBuf {
        self.0.join(backup::socket::SOCKET_FILE)
    }

    /// The running node's process id.
    pub fn pid_file(&self) -> PathBuf {
        self.0.join(PID_FILE)
    }
}
