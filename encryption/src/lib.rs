//! Encryption at rest for everything the appliance stores.
//!
//! Data flow: a [`KeyProvider`] (Vault/OpenBao transit, or a local key file
//! sealed by a passphrase) wraps data keys; the [`Keyring`] keeps them
//! wrapped on disk and unwraps them at start; a [`Cipher`] seals records
//! with AES-256-GCM under the current data key. Writers see only the
//! [`storage::RecordCipher`] seam: the derived store through
//! [`EncryptedStore`], the block log frame by frame, small files through
//! [`seal_file`].

mod cipher;
mod fsutil;
mod keyring;
mod kv;
pub mod provider;
pub mod reencrypt;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use cipher::{ActiveKeys, Cipher, KeyBytes};
pub use keyring::{DekRecord, KeyLimits, Keyring, KeyringDoc, KeyringError, KEYS_DIR};
pub use kv::{EncryptedStore, Sealed};
pub use provider::{KeyProvider, ProviderError};
pub use reencrypt::{reencrypt_store, Progress, ReencryptReport};
pub use storage::{is_sealed, open_file, seal_file};
