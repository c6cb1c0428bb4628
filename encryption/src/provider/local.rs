//! The local key provider: KEKs in a file sealed by a passphrase.
//!
//! File (`kek.sealed`, JSON): the argon2id parameters and salt, and every KEK
//! version sealed with AES-256-GCM under the passphrase-derived key. Wrapped
//! data keys are `local:v<kek version>:<hex nonce ‖ ciphertext>`.

use super::{BoxFuture, KeyProvider, NewKey, ProviderError};
use crate::{cipher::KeyBytes, fsutil};
use aes_gcm::{
    aead::{AeadInOut, KeyInit},
    Aes256Gcm, Nonce,
};
use argon2::{Algorithm, Argon2, Params, Version};
use parking_lot::RwLock;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use zeroize::Zeroizing;

const FORMAT: &str = "prividium-kek/1";

/// The passphrase that seals the key file (wiped on drop).
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }
    /// A random passphrase (dev mode).
    pub fn generate() -> Self {
        let mut b = [0u8; 24];
        rand::rng().fill_bytes(&mut b);
        Self::new(hex::encode(b))
    }
    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// argon2id cost; stored in the file so it can be raised for new files.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// OWASP's first argon2id recommendation (46 MiB, 1 pass is its
    /// minimum; we spend more since this runs once per start).
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfSection {
    alg: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedKek {
    version: u32,
    sealed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KekFile {
    format: String,
    kdf: KdfSection,
    keks: Vec<SealedKek>,
}

/// KEKs unlocked in memory.
pub struct LocalKeyFile {
    path: PathBuf,
    passphrase_key: KeyBytes,
    kdf: KdfParams,
    salt: Vec<u8>,
    keks: RwLock<BTreeMap<u32, KeyBytes>>,
}

impl std::fmt::Debug for LocalKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

fn seal(key: &[u8; 32], ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    // Random nonces are fine here: a file seals a handful of keys, far
    // below the 2^32 messages where random 96-bit nonces become a risk.
    let nonce: [u8; 12] = random();
    let mut body = plaintext.to_vec();
    Aes256Gcm::new(key.into())
        .encrypt_in_place(&Nonce::from(nonce), ad, &mut body)
        .expect("a 32-byte message always fits");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    out
}

fn open(key: &[u8; 32], ad: &[u8], sealed: &[u8]) -> Option<KeyBytes> {
    if sealed.len() != 12 + 32 + 16 {
        return None;
    }
    let nonce: [u8; 12] = sealed[..12].try_into().ok()?;
    let mut body = sealed[12..].to_vec();
    Aes256Gcm::new(key.into())
        .decrypt_in_place(&Nonce::from(nonce), ad, &mut body)
        .ok()?;
    let out: [u8; 32] = body.as_slice().try_into().ok()?;
    Some(Zeroizing::new(out))
}

fn kek_ad(version: u32) -> Vec<u8> {
    format!("prividium/kek/v{version}").into_bytes()
}

fn dek_ad(version: u32) -> Vec<u8> {
    format!("prividium/dek/v{version}").into_bytes()
}

impl LocalKeyFile {
    fn invalid(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Invalid {
            provider: self.id(),
            message: message.into(),
        }
    }

    fn derive(passphrase: &Passphrase, salt: &[u8], kdf: KdfParams) -> Result<KeyBytes, String> {
        let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).map_err(|e| e.to_string())?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.expose().as_bytes(), salt, out.as_mut())
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Creates a new key file with one fresh KEK; refuses to replace one.
    pub fn create(
        path: &Path,
        passphrase: &Passphrase,
        kdf: KdfParams,
    ) -> Result<Self, ProviderError> {
        let invalid = |message: String| ProviderError::Invalid {
            provider: format!("local:{}", path.display()),
            message,
        };
        if path.exists() {
            return Err(invalid(
                "key file already exists; refusing to replace it".into(),
            ));
        }
        if passphrase.expose().len() < 12 {
            return Err(invalid("passphrase must be at least 12 characters".into()));
        }
        let salt = random::<16>().to_vec();
        let passphrase_key = Self::derive(passphrase, &salt, kdf).map_err(invalid)?;
        let kek = Zeroizing::new(random::<32>());
        let file = Self {
            path: path.to_path_buf(),
            passphrase_key,
            kdf,
            salt,
            keks: RwLock::new(BTreeMap::from([(1, kek)])),
        };
        file.save()?;
        Ok(file)
    }

    /// Opens an existing key file with its passphrase.
    pub fn open(path: &Path, passphrase: &Passphrase) -> Result<Self, ProviderError> {
        let invalid = |message: String| ProviderError::Invalid {
            provider: format!("local:{}", path.display()),
            message,
        };
        let raw = std::fs::read(path).map_err(|e| invalid(format!("cannot read key file: {e}")))?;
        let file: KekFile =
            serde_json::from_slice(&raw).map_err(|e| invalid(format!("damaged key file: {e}")))?;
        if file.format != FORMAT || file.kdf.alg != "argon2id" {
            return Err(invalid(format!(
                "unsupported key file format {:?} / kdf {:?}",
                file.format, file.kdf.alg
            )));
        }
        let salt =
            hex::decode(&file.kdf.salt).map_err(|e| invalid(format!("damaged salt: {e}")))?;
        let passphrase_key = Self::derive(passphrase, &salt, file.kdf.params).map_err(invalid)?;
        let mut keks = BTreeMap::new();
        for k in &file.keks {
            let sealed =
                hex::decode(&k.sealed).map_err(|e| invalid(format!("damaged KEK: {e}")))?;
            let kek = open(&passphrase_key, &kek_ad(k.version), &sealed)
                .ok_or_else(|| invalid("wrong passphrase, or the key file was modified".into()))?;
            keks.insert(k.version, kek);
        }
        if keks.is_empty() {
            return Err(invalid("key file holds no key".into()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            passphrase_key,
            kdf: file.kdf.params,
            salt,
            keks: RwLock::new(keks),
        })
    }

    /// Opens the file, creating it first when it does not exist.
    pub fn open_or_create(
        path: &Path,
        passphrase: &Passphrase,
        kdf: KdfParams,
    ) -> Result<Self, ProviderError> {
        if path.exists() {
            Self::open(path, passphrase)
        } else {
            Self::create(path, passphrase, kdf)
        }
    }

    /// Re-seals every KEK under a new passphrase.
    pub fn change_passphrase(&mut self, new: &Passphrase) -> Result<(), ProviderError> {
        let salt = random::<16>().to_vec();
        self.passphrase_key = Self::derive(new, &salt, self.kdf).map_err(|e| self.invalid(e))?;
        self.salt = salt;
        self.save()
    }

    fn save(&self) -> Result<(), ProviderError> {
        let keks = self.keks.read();
        let file = KekFile {
            format: FORMAT.into(),
            kdf: KdfSection {
                alg: "argon2id".into(),
                params: self.kdf,
                salt: hex::encode(&self.salt),
            },
            keks: keks
                .iter()
                .map(|(v, k)| SealedKek {
                    version: *v,
                    sealed: hex::encode(seal(&self.passphrase_key, &kek_ad(*v), k.as_ref())),
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&file).expect("serializable");
        fsutil::write_atomic(&self.path, &json)
            .map_err(|e| self.invalid(format!("cannot write key file: {e}")))
    }

    fn wrap_with_newest(&self, dek: &[u8; 32]) -> String {
        let keks = self.keks.read();
        let (v, kek) = keks.iter().next_back().expect("at least one KEK");
        format!("local:v{v}:{}", hex::encode(seal(kek, &dek_ad(*v), dek)))
    }

    fn unwrap_sync(&self, wrapped: &str) -> Result<KeyBytes, ProviderError> {
        let rest = wrapped
            .strip_prefix("local:v")
            .ok_or_else(|| self.invalid("not a key wrapped by a local key file"))?;
        let (v, hexed) = rest
            .split_once(':')
            .ok_or_else(|| self.invalid("malformed wrapped key"))?;
        let v: u32 = v
            .parse()
            .map_err(|_| self.invalid("malformed wrapped key version"))?;
        let sealed = hex::decode(hexed).map_err(|_| self.invalid("malformed wrapped key"))?;
        if !self.keks.read().contains_key(&v) {
            // Another process (`prividium keys rotate-kek`) added it.
            self.reload()?;
        }
        let keks = self.keks.read();
        let kek = keks
            .get(&v)
            .ok_or_else(|| self.invalid(format!("KEK version {v} is not in this key file")))?;
        open(kek, &dek_ad(v), &sealed)
            .ok_or_else(|| self.invalid("wrapped key does not open under this key file"))
    }

    /// Picks up KEK versions another process added to the file.
    fn reload(&self) -> Result<(), ProviderError> {
        let raw = std::fs::read(&self.path)
            .map_err(|e| self.invalid(format!("cannot read key file: {e}")))?;
        let file: KekFile = serde_json::from_slice(&raw)
            .map_err(|e| self.invalid(format!("damaged key file: {e}")))?;
        if hex::decode(&file.kdf.salt).ok().as_deref() != Some(self.salt.as_slice()) {
            return Err(self
                .invalid("the key file was re-sealed under another passphrase; restart with it"));
        }
        let mut keks = self.keks.write();
        for k in &file.keks {
            if keks.contains_key(&k.version) {
                continue;
            }
            let sealed =
                hex::decode(&k.sealed).map_err(|e| self.invalid(format!("damaged KEK: {e}")))?;
            let kek = open(&self.passphrase_key, &kek_ad(k.version), &sealed)
                .ok_or_else(|| self.invalid("the key file was modified"))?;
            keks.insert(k.version, kek);
        }
        Ok(())
    }
}

impl KeyProvider for LocalKeyFile {
    fn id(&self) -> String {
        format!("local:{}", self.path.display())
    }

    /// The same key file named by another path (relative from the CLI,
    /// absolute from `dev`) is the same provider.
    fn is(&self, recorded: &str) -> bool {
        recorded == self.id()
            || recorded.strip_prefix("local:").is_some_and(|p| {
                match (std::fs::canonicalize(p), std::fs::canonicalize(&self.path)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                }
            })
    }

    fn generate(&self) -> BoxFuture<'_, Result<NewKey, ProviderError>> {
        Box::pin(async move {
            let plaintext = Zeroizing::new(random::<32>());
            let wrapped = self.wrap_with_newest(&plaintext);
            Ok(NewKey { plaintext, wrapped })
        })
    }

    fn unwrap_key<'a>(
        &'a self,
        wrapped: &'a str,
    ) -> BoxFuture<'a, Result<KeyBytes, ProviderError>> {
        Box::pin(async move { self.unwrap_sync(wrapped) })
    }

    fn rewrap<'a>(&'a self, wrapped: &'a str) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let dek = self.unwrap_sync(wrapped)?;
            Ok(self.wrap_with_newest(&dek))
        })
    }

    fn rotate_kek(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            {
                let mut keks = self.keks.write();
                let next = keks.keys().next_back().copied().unwrap_or(0) + 1;
                keks.insert(next, Zeroizing::new(random::<32>()));
            }
            self.save()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        m_kib: 1024,
        t: 1,
        p: 1,
    };

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn wraps_survive_reopen_and_kek_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.sealed");
        let pass = Passphrase::new("correct horse battery staple");
        let file = LocalKeyFile::create(&path, &pass, CHEAP).unwrap();
        let key = block_on(file.generate()).unwrap();
        assert!(key.wrapped.starts_with("local:v1:"));
        block_on(file.rotate_kek()).unwrap();
        let rewrapped = block_on(file.rewrap(&key.wrapped)).unwrap();
        assert!(rewrapped.starts_with("local:v2:"));

        let reopened = LocalKeyFile::open(&path, &pass).unwrap();
        for w in [&key.wrapped, &rewrapped] {
            assert_eq!(*block_on(reopened.unwrap_key(w)).unwrap(), *key.plaintext);
        }
        // The file holds no key material in the clear.
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(32).any(|w| w == key.plaintext.as_ref()));
    }

    #[test]
    fn the_same_file_under_another_path_is_the_same_provider() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.sealed");
        let pass = Passphrase::new("correct horse battery staple");
        let file = LocalKeyFile::create(&path, &pass, CHEAP).unwrap();
        let roundabout = dir.path().join(".").join("kek.sealed");
        assert!(file.is(&format!("local:{}", roundabout.display())));
        assert!(file.is(&file.id()));
        let other = dir.path().join("other.sealed");
        LocalKeyFile::create(&other, &pass, CHEAP).unwrap();
        assert!(!file.is(&format!("local:{}", other.display())));
        assert!(!file.is("local:/nonexistent/kek.sealed"));
        assert!(!file.is(&format!("transit:{}", path.display())));
    }

    #[test]
    fn wrong_passphrase_and_damaged_file_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.sealed");
        let pass = Passphrase::new("correct horse battery staple");
        LocalKeyFile::create(&path, &pass, CHEAP).unwrap();
        let err = LocalKeyFile::open(&path, &Passphrase::new("wrong passphrase!!")).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        assert!(!err.is_retryable());

        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sealed = json["keks"][0]["sealed"].as_str().unwrap().to_string();
        let mut flipped = sealed.clone().into_bytes();
        flipped[30] = if flipped[30] == b'0' { b'1' } else { b'0' };
        let damaged = text.replace(&sealed, std::str::from_utf8(&flipped).unwrap());
        std::fs::write(&path, damaged).unwrap();
        assert!(LocalKeyFile::open(&path, &pass).is_err());

        assert!(
            LocalKeyFile::create(&path, &pass, CHEAP).is_err(),
            "never replaced"
        );
        assert!(
            LocalKeyFile::create(&dir.path().join("short"), &Passphrase::new("short"), CHEAP)
                .is_err()
        );
    }

    #[test]
    fn a_kek_rotated_by_another_process_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.sealed");
        let pass = Passphrase::new("correct horse battery staple");
        let node = LocalKeyFile::create(&path, &pass, CHEAP).unwrap();
        let cli = LocalKeyFile::open(&path, &pass).unwrap();
        let key = block_on(node.generate()).unwrap();
        block_on(cli.rotate_kek()).unwrap();
        let rewrapped = block_on(cli.rewrap(&key.wrapped)).unwrap();
        assert_eq!(
            *block_on(node.unwrap_key(&rewrapped)).unwrap(),
            *key.plaintext
        );
    }

    #[test]
    fn passphrase_change_keeps_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek.sealed");
        let old = Passphrase::new("correct horse battery staple");
        let mut file = LocalKeyFile::create(&path, &old, CHEAP).unwrap();
        let key = block_on(file.generate()).unwrap();
        let new = Passphrase::new("a brand new passphrase");
        file.change_passphrase(&new).unwrap();
        assert!(LocalKeyFile::open(&path, &old).is_err());
        let reopened = LocalKeyFile::open(&path, &new).unwrap();
        assert_eq!(
            *block_on(reopened.unwrap_key(&key.wrapped)).unwrap(),
            *key.plaintext
        );
    }
}
