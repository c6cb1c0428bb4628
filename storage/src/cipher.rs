//! The seam between storage and encryption: anything that keeps chain data
//! at rest (the derived store, the block log, the access documents, proofs)
//! seals it through a [`RecordCipher`], so the key management behind it can
//! be swapped without the writers noticing.

use std::sync::Arc;

/// Why a sealed record could not be opened or a record could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// Authentication failed: the bytes were changed, moved to another
    /// place, or sealed under a different key.
    #[error("authentication failed (modified, moved or sealed under another key)")]
    Tampered,
    /// The record names a data key this keyring does not hold.
    #[error("sealed under data key version {0}, which this keyring does not hold")]
    UnknownKey(u32),
    /// Not a sealed record at all (too short, unknown format byte).
    #[error("not a sealed record: {0}")]
    Malformed(String),
    /// The current data key has sealed as many records as it may; rotate.
    #[error("data key version {0} reached its usage limit; rotate the data key")]
    Exhausted(u32),
    /// A sealed file met by a process that was given no keys.
    #[error("sealed, but encryption at rest is off (no keys were given)")]
    NoKeys,
}

/// Seals records at rest.
///
/// `context` says what the record is and where it lives (table and key,
/// block number, file name); it is authenticated but not stored, so a
/// record copied elsewhere fails to open.
pub trait RecordCipher: Send + Sync + std::fmt::Debug {
    /// Encrypts and authenticates `plaintext` for `context`.
    fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CipherError>;
    /// Checks and decrypts a record sealed for `context`.
    fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError>;
    /// Data-key version a sealed record was written under (for re-encryption).
    fn key_version(&self, sealed: &[u8]) -> Result<u32, CipherError>;
    /// Version new records are sealed under.
    fn current_version(&self) -> u32;
    /// A keyed hash of a lookup key: equal inputs give equal outputs, but
    /// nothing about the input (an address, a hash) can be read from it.
    fn blind(&self, domain: &[u8], key: &[u8]) -> [u8; 32];
}

/// Shared handle to a cipher.
pub type SharedCipher = Arc<dyn RecordCipher>;
