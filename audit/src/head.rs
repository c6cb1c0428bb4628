//! Signed tree heads: the appliance's ed25519 signature over the log's size
//! and root, which is what a regulator is shown and what settlement anchors.

use crate::{merkle::Hash, AuditError};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use storage::RecordCipher;

/// File holding the signing key (sealed when encryption at rest is on).
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File holding the public key, hex.
pub const PUBLIC_KEY_FILE: &str = "signing.pub";

/// A signed statement "the log had `tree_size` events with this root".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Number of events covered.
    pub tree_size: u64,
    /// Merkle root, hex.
    #[serde(with = "hex32")]
    pub root: Hash,
    /// When it was signed, milliseconds since the epoch.
    pub signed_at_ms: u64,
    /// First 8 bytes of SHA-256 of the public key, hex.
    pub key_id: String,
    /// ed25519 signature over [`TreeHead::message`], hex.
    #[serde(with = "hex::serde")]
    pub signature: Vec<u8>,
}

impl TreeHead {
    /// The signed bytes.
    pub fn message(tree_size: u64, root: &Hash, signed_at_ms: u64) -> Vec<u8> {
        let mut m = b"prividium-audit-tree-head/1".to_vec();
        m.extend_from_slice(&tree_size.to_be_bytes());
        m.extend_from_slice(&signed_at_ms.to_be_bytes());
        m.extend_from_slice(root);
        m
    }

    /// True when `key` signed this head.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let Ok(sig) = Signature::from_slice(&self.signature) else {
            return false;
        };
        self.key_id == key_id(key)
            && key
                .verify(
                    &Self::message(self.tree_size, &self.root, self.signed_at_ms),
                    &sig,
                )
                .is_ok()
    }
}

/// Short id of a public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Parses a hex public key.
pub fn parse_public_key(s: &str) -> Result<VerifyingKey, AuditError> {
    let bytes: [u8; 32] = hex::decode(s.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AuditError::Key("public key must be 32 bytes of hex".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| AuditError::Key(format!("public key: {e}")))
}

/// Reads the public key the appliance published in `dir`.
pub fn load_public_key(dir: &Path) -> Result<VerifyingKey, AuditError> {
    let path = dir.join(PUBLIC_KEY_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))?;
    parse_public_key(&text)
}

/// The appliance's tree-head signing key.
pub struct HeadSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for HeadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl HeadSigner {
    /// Loads the key from `dir`, creating it (and the public key file) on
    /// first use. With a cipher the private key is sealed at rest.
    pub fn load_or_create(
        dir: &Path,
        cipher: Option<&dyn RecordCipher>,
    ) -> Result<Self, AuditError> {
        let path = dir.join(SIGNING_KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(bytes) => read_key(&path, &bytes, cipher)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(dir, &path, cipher)?,
            Err(e) => return Err(AuditError::Key(format!("{}: {e}", path.display()))),
        };
        let key_id = key_id(&key.verifying_key());
        Ok(Self { key, key_id })
    }

    /// A key that lives only in memory (tests, benchmarks).
    pub fn ephemeral() -> Self {
        let key = SigningKey::from_bytes(&rand::random());
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs a head for `tree_size` leaves with `root`.
    pub fn sign(&self, tree_size: u64, root: Hash, signed_at_ms: u64) -> TreeHead {
        let sig = self
            .key
            .sign(&TreeHead::message(tree_size, &root, signed_at_ms));
        TreeHead {
            tree_size,
            root,
            signed_at_ms,
            key_id: self.key_id.clone(),
            signature: sig.to_bytes().to_vec(),
        }
    }
}

fn read_key(
    path: &Path,
    bytes: &[u8],
    cipher: Option<&dyn RecordCipher>,
) -> Result<SigningKey, AuditError> {
    let plain = storage::open_file_if(cipher, SIGNING_KEY_FILE, bytes)
        .map_err(|e| AuditError::Key(format!("{}: {e}", path.display())))?;
    let secret: [u8; 32] = hex::decode(String::from_utf8_lossy(&plain).trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AuditError::Key(format!("{}: not a 32-byte hex key", path.display())))?;
    Ok(SigningKey::from_bytes(&secret))
}

fn create_key(
    dir: &Path,
    path: &Path,
    cipher: Option<&dyn RecordCipher>,
) -> Result<SigningKey, AuditError> {
    let key = SigningKey::from_bytes(&rand::random());
    let text = hex::encode(key.to_bytes());
    let bytes = storage::seal_file_if(cipher, SIGNING_KEY_FILE, text.as_bytes())
        .map_err(|e| AuditError::Key(e.to_string()))?;
    let io = |e: std::io::Error| AuditError::Key(format!("{}: {e}", path.display()));
    storage::write_atomic(path, &bytes).map_err(io)?;
    let public = hex::encode(key.verifying_key().as_bytes()) + "\n";
    storage::write_atomic(&dir.join(PUBLIC_KEY_FILE), public.as_bytes()).map_err(io)?;
    tracing::info!(key_id = %key_id(&key.verifying_key()), "created the audit tree-head signing key");
    Ok(key)
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 32 bytes of hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_verify_only_under_their_key_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let signer = HeadSigner::load_or_create(dir.path(), None).unwrap();
        let again = HeadSigner::load_or_create(dir.path(), None).unwrap();
        assert_eq!(signer.public_key(), again.public_key());
        assert_eq!(load_public_key(dir.path()).unwrap(), signer.public_key());
        let head = signer.sign(10, [7; 32], 1_000);
        assert!(head.verify(&signer.public_key()));
        let json = serde_json::to_string(&head).unwrap();
        assert_eq!(serde_json::from_str::<TreeHead>(&json).unwrap(), head);
        let mut bigger = head.clone();
        bigger.tree_size = 11;
        assert!(!bigger.verify(&signer.public_key()));
        let mut other_root = head.clone();
        other_root.root[0] ^= 1;
        assert!(!other_root.verify(&signer.public_key()));
        assert!(!head.verify(&HeadSigner::ephemeral().public_key()));
    }
}
