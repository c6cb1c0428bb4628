//! The keyring: every data-key version, wrapped by the provider, plus the
//! blinding key, in `keys/keyring.json`.
//!
//! The file holds no key in the clear. It is authenticated with an HMAC
//! under the blinding key, so edits (an old version made current again, an
//! epoch rolled back) are refused once the keys are unwrapped. Each start
//! and each rotation reserves a fresh nonce epoch for the current key and
//! makes it durable before anything is sealed with it.

use crate::{
    cipher::{ActiveKeys, Cipher, KeyBytes},
    fsutil::{self, Lock},
    provider::{KeyProvider, ProviderError},
};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

/// Directory (inside the data directory) holding key material.
pub const KEYS_DIR: &str = "keys";
const KEYRING_FILE: &str = "keyring.json";
const LOCK_FILE: &str = "keyring.lock";
const FORMAT: u32 = 1;

/// Keyring failures.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The keyring file cannot be read or written.
    #[error("keyring {path}: {message}")]
    File {
        /// File.
        path: String,
        /// What happened.
        message: String,
    },
    /// The keyring was edited outside the appliance, or belongs elsewhere.
    #[error("keyring {path} rejected: {message}")]
    Rejected {
        /// File.
        path: String,
        /// Why.
        message: String,
    },
}

/// One data-key version as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DekRecord {
    /// Version number (also in every record sealed under it).
    pub version: u32,
    /// The key wrapped by the provider.
    pub wrapped: String,
    /// Unix seconds it was created.
    pub created: u64,
    /// Last nonce epoch reserved for it.
    pub epoch: u32,
    /// Records sealed under it, as of the last usage report.
    pub sealed: u64,
    /// Unix seconds at which re-encryption finished moving every record
    /// off it (it then only stays for reading stragglers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<u64>,
}

/// The keyring document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyringDoc {
    /// Format version.
    pub format: u32,
    /// The provider that wrapped these keys.
    pub provider: String,
    /// Blinding key, wrapped.
    pub blind_key: String,
    /// Version sealing new records.
    pub current: u32,
    /// Every version.
    pub deks: Vec<DekRecord>,
    /// HMAC-SHA256 of the document (with this field empty), hex.
    #[serde(default)]
    pub mac: String,
}

impl KeyringDoc {
    fn compute_mac(&self, key: &[u8; 32]) -> String {
        let mut doc = self.clone();
        doc.mac.clear();
        let bytes = serde_json::to_vec(&doc).expect("serializable");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        mac.update(b"prividium/keyring/1");
        mac.update(&bytes);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Versions other than `current` that are not retired: records may
    /// still be sealed under them.
    pub fn live_versions_except(&self, current: u32) -> Vec<u32> {
        self.deks
            .iter()
            .filter(|d| d.version != current && d.retired.is_none())
            .map(|d| d.version)
            .collect()
    }

    /// The record of `version`.
    pub fn dek(&self, version: u32) -> Option<&DekRecord> {
        self.deks.iter().find(|d| d.version == version)
    }

    fn dek_mut(&mut self, version: u32) -> Option<&mut DekRecord> {
        self.deks.iter_mut().find(|d| d.version == version)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The keyring of one data directory.
#[derive(Clone)]
pub struct Keyring {
    dir: PathBuf,
    /// The blinding key as last unwrapped, with its wrapped form: the node
    /// re-reads the keyring every few seconds and must not ask the KMS to
    /// unwrap the same key each time.
    blind: Arc<Mutex<Option<(String, KeyBytes)>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Settings that bound key use.
#[derive(Debug, Clone, Copy)]
pub struct KeyLimits {
    /// Most records one data key may seal before new writes need a new one.
    pub max_records_per_key: u64,
}

impl Default for KeyLimits {
    fn default() -> Self {
        // Far below where AES-GCM's bounds matter with unique nonces; a
        // bank rotating yearly never meets it, a runaway writer does.
        Self {
            max_records_per_key: 1 << 40,
        }
    }
}

impl Keyring {
    /// The keyring under `data_dir/keys`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(KEYS_DIR),
            blind: Arc::default(),
        }
    }

    /// The keyring file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(KEYRING_FILE)
    }

    fn file_err(&self, message: impl std::fmt::Display) -> KeyringError {
        KeyringError::File {
            path: self.path().display().to_string(),
            message: message.to_string(),
        }
    }

    fn rejected(&self, message: impl Into<String>) -> KeyringError {
        KeyringError::Rejected {
            path: self.path().display().to_string(),
            message: message.into(),
        }
    }

    fn lock(&self) -> Result<Lock, KeyringError> {
        Lock::acquire(&self.dir.join(LOCK_FILE)).map_err(|e| self.file_err(e))
    }

    /// True once a keyring exists (an encrypted data directory).
    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Reads the document without unwrapping anything (status output).
    pub fn read(&self) -> Result<KeyringDoc, KeyringError> {
        let raw = std::fs::read(self.path()).map_err(|e| self.file_err(e))?;
        serde_json::from_slice(&raw).map_err(|e| self.file_err(format!("damaged: {e}")))
    }

    fn write(&self, doc: &mut KeyringDoc, blind: &[u8; 32]) -> Result<(), KeyringError> {
        doc.mac = doc.compute_mac(blind);
        let json = serde_json::to_vec_pretty(doc).expect("serializable");
        fsutil::write_atomic(&self.path(), &json).map_err(|e| self.file_err(e))
    }

    async fn create(&self, provider: &dyn KeyProvider) -> Result<KeyringDoc, KeyringError> {
        let blind = provider.generate().await?;
        let dek = provider.generate().await?;
        let mut doc = KeyringDoc {
            format: FORMAT,
            provider: provider.id(),
            blind_key: blind.wrapped,
            current: 1,
            deks: vec![DekRecord {
                version: 1,
                wrapped: dek.wrapped,
                created: now(),
                epoch: 0,
                sealed: 0,
                retired: None,
            }],
            mac: String::new(),
        };
        self.write(&mut doc, &blind.plaintext)?;
        tracing::info!(provider = %doc.provider, "created keyring with data key v1");
        Ok(doc)
    }

    /// Loads (creating on first use) and checks the keyring; returns the
    /// document and the unwrapped blinding key.
    async fn load_checked(
        &self,
        provider: &dyn KeyProvider,
    ) -> Result<(KeyringDoc, KeyBytes), KeyringError> {
        self.load_checked_as(provider, true).await
    }

    /// [`Keyring::load_checked`]; with `same_provider` false, a provider
    /// recorded under another name (a local key file copied along with
    /// its data directory) is accepted when it opens the keyring: the MAC
    /// under the blinding key it unwraps is what authenticates it.
    async fn load_checked_as(
        &self,
        provider: &dyn KeyProvider,
        same_provider: bool,
    ) -> Result<(KeyringDoc, KeyBytes), KeyringError> {
        let doc = if self.exists() {
            self.read()?
        } else {
            self.create(provider).await?
        };
        if doc.format != FORMAT {
            return Err(self.rejected(format!("unknown format {}", doc.format)));
        }
        if same_provider && !provider.is(&doc.provider) {
            return Err(self.rejected(format!(
                "its keys are wrapped by {}, but the configured provider is {}",
                doc.provider,
                provider.id()
            )));
        }
        let cached = self
            .blind
            .lock()
            .as_ref()
            .filter(|(wrapped, _)| *wrapped == doc.blind_key)
            .map(|(_, key)| key.clone());
        let blind = match cached {
            Some(key) => key,
            None => {
                let key = provider.unwrap_key(&doc.blind_key).await?;
                *self.blind.lock() = Some((doc.blind_key.clone(), key.clone()));
                key
            }
        };
        if doc.mac != doc.compute_mac(&blind) {
            return Err(
                self.rejected("authentication failed: the file was edited outside the appliance")
            );
        }
        if doc.dek(doc.current).is_none() {
            return Err(self.rejected(format!("current version {} is missing", doc.current)));
        }
        Ok((doc, blind))
    }

    /// Whether `provider` still opens this keyring: checks its integrity
    /// and unwraps every live data key, writing nothing (no epoch is used,
    /// nothing created). Returns the number of live versions. For checks
    /// (`prividium doctor`), never for sealing.
    pub async fn verify_access(&self, provider: &dyn KeyProvider) -> Result<usize, KeyringError> {
        if !self.exists() {
            return Err(self.rejected("no keyring yet (start the node once)"));
        }
        let (doc, _blind) = self.load_checked(provider).await?;
        Ok(unwrap_live(&doc, provider).await?.len())
    }

    /// Unwraps every data key, reserves a fresh nonce epoch for the current
    /// one, and returns the keys ready for a [`Cipher`].
    pub async fn unlock(
        &self,
        provider: &dyn KeyProvider,
        limits: KeyLimits,
    ) -> Result<ActiveKeys, KeyringError> {
        let _lock = self.lock()?;
        let (mut doc, blind) = self.load_checked(provider).await?;
        let deks = unwrap_live(&doc, provider).await?;
        let current = doc.current;
        let rec = doc.dek_mut(current).expect("checked");
        rec.epoch = rec.epoch.checked_add(1).ok_or_else(|| {
            self.rejected(format!(
                "data key v{current} used up its nonce epochs; rotate it"
            ))
        })?;
        let (epoch, sealed_before) = (rec.epoch, rec.sealed);
        self.write(&mut doc, &blind)?;
        Ok(ActiveKeys {
            deks,
            current,
            epoch,
            sealed_before,
            limit: limits.max_records_per_key,
            mac: blind,
        })
    }

    /// Unwraps every live data key to open records only, writing nothing
    /// (a backup checks its copy this way, and the copy must stay as it
    /// was hashed). No nonce epoch is reserved, so the cipher these keys
    /// make refuses to seal: their usage limit is zero.
    pub async fn unlock_to_open(
        &self,
        provider: &dyn KeyProvider,
    ) -> Result<ActiveKeys, KeyringError> {
        if !self.exists() {
            return Err(self.file_err("no keyring here"));
        }
        let (doc, blind) = self.load_checked_as(provider, false).await?;
        let deks = unwrap_live(&doc, provider).await?;
        let current = doc.dek(doc.current).ok_or_else(|| {
            self.rejected(format!("current data key v{} is not listed", doc.current))
        })?;
        Ok(ActiveKeys {
            deks,
            current: doc.current,
            epoch: current.epoch,
            sealed_before: current.sealed,
            limit: 0,
            mac: blind,
        })
    }

    /// Records `provider` as this keyring's provider when the keyring was
    /// recorded under another name for the same keys (a data directory
    /// restored or moved elsewhere takes its local key file along, whose
    /// name is its path). Refused unless `provider` opens the keyring and
    /// its MAC checks. Returns whether anything changed.
    pub async fn rebind(&self, provider: &dyn KeyProvider) -> Result<bool, KeyringError> {
        let _lock = self.lock()?;
        if !self.exists() {
            return Err(self.file_err("no keyring here"));
        }
        let (mut doc, blind) = self.load_checked_as(provider, false).await?;
        if provider.is(&doc.provider) {
            return Ok(false);
        }
        // Every live key, not only the (possibly cached) blinding key: the
        // provider named from now on must open all of them.
        unwrap_live(&doc, provider).await?;
        doc.provider = provider.id();
        self.write(&mut doc, &blind)?;
        Ok(true)
    }

    /// Adds a data-key version and makes it current; returns its number.
    /// A running node picks it up on its next keyring check.
    pub async fn rotate_dek(&self, provider: &dyn KeyProvider) -> Result<u32, KeyringError> {
        let _lock = self.lock()?;
        let (mut doc, blind) = self.load_checked(provider).await?;
        let version = doc.deks.iter().map(|d| d.version).max().unwrap_or(0) + 1;
        let dek = provider.generate().await?;
        doc.deks.push(DekRecord {
            version,
            wrapped: dek.wrapped,
            created: now(),
            epoch: 0,
            sealed: 0,
            retired: None,
        });
        doc.current = version;
        self.write(&mut doc, &blind)?;
        tracing::info!(version, "rotated data key");
        Ok(version)
    }

    /// Rotates the KEK at the provider and re-wraps every stored key under
    /// its newest version; no record is touched.
    pub async fn rotate_kek(&self, provider: &dyn KeyProvider) -> Result<(), KeyringError> {
        let _lock = self.lock()?;
        let (mut doc, blind) = self.load_checked(provider).await?;
        provider.rotate_kek().await?;
        doc.blind_key = provider.rewrap(&doc.blind_key).await?;
        for d in &mut doc.deks {
            d.wrapped = provider.rewrap(&d.wrapped).await?;
        }
        self.write(&mut doc, &blind)?;
        tracing::info!(
            keys = doc.deks.len() + 1,
            "re-wrapped keyring under the new KEK"
        );
        Ok(())
    }

    /// When the keyring changed since `cipher` was loaded (a rotation by
    /// the CLI), unwraps the new keys, reserves an epoch and swaps them in.
    /// Returns the new current version when it changed.
    pub async fn refresh(
        &self,
        provider: &dyn KeyProvider,
        cipher: &Cipher,
        limits: KeyLimits,
    ) -> Result<Option<u32>, KeyringError> {
        let doc = self.read()?;
        let known = cipher.versions();
        let live: Vec<u32> = doc
            .deks
            .iter()
            .filter(|d| d.retired.is_none())
            .map(|d| d.version)
            .collect();
        let unchanged =
            doc.current == storage::RecordCipher::current_version(cipher) && live == known;
        if unchanged {
            return Ok(None);
        }
        self.report_usage(provider, cipher).await?;
        let keys = self.unlock(provider, limits).await?;
        let current = keys.current;
        let rotated = current != storage::RecordCipher::current_version(cipher);
        cipher.swap(&keys);
        if rotated {
            tracing::info!(current, "switched to the rotated data key");
        } else {
            tracing::info!(live = ?cipher.versions(), "dropped retired data keys");
        }
        Ok(rotated.then_some(current))
    }

    /// Records how many records the current key has sealed (for the usage
    /// limit across restarts).
    pub async fn report_usage(
        &self,
        provider: &dyn KeyProvider,
        cipher: &Cipher,
    ) -> Result<(), KeyringError> {
        let _lock = self.lock()?;
        let (mut doc, blind) = self.load_checked(provider).await?;
        let (version, total) = cipher.sealed_total();
        if let Some(d) = doc.dek_mut(version) {
            d.sealed = d.sealed.max(total);
        }
        self.write(&mut doc, &blind)
    }

    /// Marks versions no record is sealed under any more.
    pub async fn retire(
        &self,
        provider: &dyn KeyProvider,
        versions: &[u32],
    ) -> Result<(), KeyringError> {
        let _lock = self.lock()?;
        let (mut doc, blind) = self.load_checked(provider).await?;
        let current = doc.current;
        for d in doc.deks.iter_mut() {
            if versions.contains(&d.version) && d.version != current && d.retired.is_none() {
                d.retired = Some(now());
            }
        }
        self.write(&mut doc, &blind)
    }
}

/// Unwraps every data key that is not retired. A retired version seals
/// nothing any more (every record was moved off it), so it is never
/// unwrapped again.
async fn unwrap_live(
    doc: &KeyringDoc,
    provider: &dyn KeyProvider,
) -> Result<BTreeMap<u32, KeyBytes>, KeyringError> {
    let mut deks = BTreeMap::new();
    for d in doc.deks.iter().filter(|d| d.retired.is_none()) {
        deks.insert(d.version, provider.unwrap_key(&d.wrapped).await?);
    }
    Ok(deks)
}

#[cfg(test)]
mod tests;
