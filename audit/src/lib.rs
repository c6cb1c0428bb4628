//! Tamper-evident audit log and compliance queries.
//!
//! Every authentication, policy decision, submitted transaction, admin change,
//! key operation, export and audit read becomes an [`AuditEvent`]. Events are
//! leaves of an append-only RFC 6962-style Merkle tree stored through `sqlx`
//! (Postgres or SQLite); every committed batch is covered by a [`TreeHead`]
//! signed with the appliance's ed25519 key, so editing, deleting or
//! reordering rows in the database is detected by [`verify_log`], and any
//! event can be proven to a regulator with an [`InclusionProof`].

pub mod event;
pub mod export;
pub mod head;
pub mod merkle;
pub mod proof;
pub mod store;
pub mod time;
pub mod trail;
mod verify;
mod writer;

pub use ed25519_dalek::VerifyingKey;
pub use event::{action, ActorKind, AuditEvent, Outcome, StoredEvent};
pub use head::{HeadSigner, TreeHead};
pub use proof::{prove_consistency, prove_inclusion, ConsistencyProof, InclusionProof};
pub use store::{schema_status, AuditDb, Backend, Filter, FilterArgs, Page, SchemaStatus};
pub use trail::{Trail, TrailError};
pub use verify::{verify_log, Finding, VerifyReport};
pub use writer::{read_witness, AuditLog, Reservation, Room, WriterConfig, WriterStats};

/// Audit log failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The database refused or could not be reached.
    #[error("audit database: {0}")]
    Db(String),
    /// The log cannot take events now; callers fail closed.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// A malformed event or request.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The signing key could not be read or created.
    #[error("audit signing key: {0}")]
    Key(String),
    /// Stored state contradicts itself.
    #[error("audit log damaged: {0}")]
    Corrupt(String),
    /// An event row contradicts itself: its sealed fields do not open, or
    /// a lookup column does not match what the row holds.
    #[error("audit event {event}: {reason}")]
    BadRow {
        /// The event's id.
        event: u64,
        /// What is wrong.
        reason: String,
    },
    /// Nothing matches.
    #[error("{0}")]
    NotFound(String),
    /// A proof could not be built.
    #[error(transparent)]
    Proof(#[from] merkle::ProofError),
}
