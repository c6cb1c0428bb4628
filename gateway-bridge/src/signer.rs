//! The bridge's settlement key: a secp256k1 key kept at
//! `<data>/bridge/signer.key`, sealed by the appliance's key provider when
//! encryption at rest is on, like every other secret the appliance holds.

use crate::BridgeError;
use alloy_primitives::{hex, Address, B256};
use alloy_signer_local::PrivateKeySigner;
use std::path::{Path, PathBuf};
use storage::RecordCipher;

/// Directory of the bridge's files under the data directory.
pub const BRIDGE_DIR: &str = "bridge";
/// The sealed key file.
pub const SIGNER_FILE: &str = "signer.key";
/// The key's address, in plain text, for operators funding it.
pub const ADDRESS_FILE: &str = "signer.address";

/// Where the key lives for data directory `data_dir`.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(BRIDGE_DIR).join(SIGNER_FILE)
}

/// Loads the settlement key, creating one on first use.
pub fn load_or_create(
    data_dir: &Path,
    cipher: Option<&dyn RecordCipher>,
) -> Result<PrivateKeySigner, BridgeError> {
    let path = key_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => read_key(&path, &bytes, cipher),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKeySigner::random();
            store(data_dir, &key, cipher)?;
            tracing::info!(address = %key.address(), "created the settlement signer key");
            Ok(key)
        }
        Err(e) => Err(BridgeError::Signer(format!("{}: {e}", path.display()))),
    }
}

/// Replaces the settlement key with `secret` (an operator's funded key).
pub fn import(
    data_dir: &Path,
    secret: B256,
    cipher: Option<&dyn RecordCipher>,
) -> Result<Address, BridgeError> {
    let key = PrivateKeySigner::from_bytes(&secret)
        .map_err(|e| BridgeError::Signer(format!("not a secp256k1 secret key: {e}")))?;
    store(data_dir, &key, cipher)?;
    Ok(key.address())
}

fn store(
    data_dir: &Path,
    key: &PrivateKeySigner,
    cipher: Option<&dyn RecordCipher>,
) -> Result<(), BridgeError> {
    let dir = data_dir.join(BRIDGE_DIR);
    let io = |e: std::io::Error| BridgeError::Signer(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let text = hex::encode(key.to_bytes());
    let bytes = storage::seal_file_if(cipher, SIGNER_FILE, text.as_bytes())
        .map_err(|e| BridgeError::Signer(e.to_string()))?;
    storage::write_atomic(&dir.join(SIGNER_FILE), &bytes).map_err(io)?;
    let address = format!("{}\n", key.address());
    storage::write_atomic(&dir.join(ADDRESS_FILE), address.as_bytes()).map_err(io)
}

fn read_key(
    path: &Path,
    bytes: &[u8],
    cipher: Option<&dyn RecordCipher>,
) -> Result<PrivateKeySigner, BridgeError> {
    let err = |m: String| BridgeError::Signer(format!("{}: {m}", path.display()));
    let plain =
        storage::open_file_if(cipher, SIGNER_FILE, bytes).map_err(|e| err(e.to_string()))?;
    let secret = hex::decode(String::from_utf8_lossy(&plain).trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| err("not a 32-byte hex key".into()))?;
    PrivateKeySigner::from_slice(&secret).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), None).unwrap();
        let b = load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.address(), b.address());
        let published = std::fs::read_to_string(dir.path().join(BRIDGE_DIR).join(ADDRESS_FILE));
        assert_eq!(published.unwrap().trim(), a.address().to_string());

        let imported = import(dir.path(), B256::repeat_byte(0x11), None).unwrap();
        assert_eq!(
            load_or_create(dir.path(), None).unwrap().address(),
            imported
        );

        std::fs::write(key_path(dir.path()), "zz").unwrap();
        let e = load_or_create(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("not a 32-byte hex key"), "{e}");
    }
}
