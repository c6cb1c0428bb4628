//! Encryption at rest for a data directory: which key provider, how to
//! unlock it, and what the node does with the keys once it has them.
//!
//! The settings (never secrets) are recorded in `keys/encryption.json` at
//! first start, so `prividium keys …` can open the same keyring later.

use crate::data_dir::ENCRYPTION_SETTINGS_FILE;
use anyhow::{bail, Context, Result};
use encryption::{
    provider::{KdfParams, LocalKeyFile, Passphrase, TransitConfig, TransitProvider},
    Cipher, KeyLimits, KeyProvider, Keyring, KeyringError, KEYS_DIR,
};
use serde::{Deserialize, Serialize};
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};
use storage::SharedCipher;

const DEV_PASSPHRASE_FILE: &str = "dev-passphrase";
/// Default name of the local sealed key file inside `keys/`.
pub const KEY_FILE: &str = "kek.sealed";

/// Where the passphrase of a local key file comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PassphraseSource {
    /// An environment variable.
    Env(String),
    /// A file (a mounted secret).
    File(PathBuf),
    /// Asked on the terminal at start.
    Prompt,
    /// Generated once and kept beside the keys (`prividium dev` only: it
    /// protects nothing against someone who can read the data directory).
    Dev,
}

/// Encryption-at-rest settings (`[encryption]` in the config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum EncryptionConfig {
    /// Nothing encrypted (benchmarks and tests of the plaintext path only).
    Off,
    /// A KEK file sealed by a passphrase (argon2id).
    Local {
        /// Key file; default `<data-dir>/keys/kek.sealed`.
        #[serde(default)]
        key_file: Option<PathBuf>,
        /// Passphrase source.
        passphrase: PassphraseSource,
        /// argon2id cost for a new key file.
        #[serde(default)]
        kdf: Option<KdfParams>,
    },
    /// Vault / OpenBao transit.
    Transit(TransitConfig),
}

impl EncryptionConfig {
    /// Reads the settings recorded in a data directory.
    pub fn recorded(data_dir: &Path) -> Result<Option<Self>> {
        let path = data_dir.join(KEYS_DIR).join(ENCRYPTION_SETTINGS_FILE);
        match std::fs::read(&path) {
            Ok(raw) => Ok(Some(
                serde_json::from_slice(&raw)
                    .with_context(|| format!("parsing {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn record(&self, data_dir: &Path) -> Result<()> {
        let dir = data_dir.join(KEYS_DIR);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join(ENCRYPTION_SETTINGS_FILE),
            serde_json::to_vec_pretty(self)?,
        )?;
        Ok(())
    }

    /// True unless `Off`.
    pub fn is_on(&self) -> bool {
        !matches!(self, Self::Off)
    }
}

fn read_passphrase(data_dir: &Path, source: &PassphraseSource) -> Result<Passphrase> {
    match source {
        PassphraseSource::Env(var) => std::env::var(var).map(Passphrase::new).with_context(|| {
            format!("the key file passphrase is read from ${var}, which is not set")
        }),
        PassphraseSource::File(path) => Ok(Passphrase::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading passphrase file {}", path.display()))?
                .trim_end_matches(['\r', '\n']),
        )),
        PassphraseSource::Prompt => {
            let p = rpassword::prompt_password("prividium key file passphrase: ")
                .context("reading the passphrase from the terminal")?;
            Ok(Passphrase::new(p))
        }
        PassphraseSource::Dev => {
            let path = data_dir.join(KEYS_DIR).join(DEV_PASSPHRASE_FILE);
            match std::fs::read_to_string(&path) {
                Ok(p) => Ok(Passphrase::new(p.trim())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let p = Passphrase::generate();
                    std::fs::create_dir_all(path.parent().expect("keys dir"))?;
                    crate::tls::write_private(&path, p.expose().as_bytes())?;
                    Ok(p)
                }
                Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
            }
        }
    }
}

/// Builds the provider the settings name (local: unlocks the key file now).
pub fn provider(data_dir: &Path, settings: &EncryptionConfig) -> Result<Arc<dyn KeyProvider>> {
    Ok(match settings {
        EncryptionConfig::Off => bail!("encryption is off"),
        EncryptionConfig::Local {
            key_file,
            passphrase,
            kdf,
        } => {
            let path = key_file
                .clone()
                .unwrap_or_else(|| data_dir.join(KEYS_DIR).join(KEY_FILE));
            let pass = read_passphrase(data_dir, passphrase)?;
            Arc::new(LocalKeyFile::open_or_create(
                &path,
                &pass,
                kdf.unwrap_or_default(),
            )?)
        }
        EncryptionConfig::Transit(t) => Arc::new(TransitProvider::new(t.clone())?),
    })
}

/// The unlocked keys of a running node.
#[derive(Debug, Clone)]
pub struct AtRest {
    /// Where the KEK lives.
    pub provider: Arc<dyn KeyProvider>,
    /// The data directory's keyring.
    pub keyring: Keyring,
    /// Seals and opens records.
    pub cipher: Arc<Cipher>,
    /// Usage limits.
    pub limits: KeyLimits,
}

/// Why unsealing failed: wait and retry, or stop.
#[derive(Debug)]
pub enum UnsealError {
    /// The provider is unreachable, sealed or refusing: stay sealed, retry.
    Retry(String),
    /// Needs an operator (wrong passphrase, edited keyring, bad settings).
    Fatal(anyhow::Error),
}

/// Checks the settings against the data directory and records them.
pub fn prepare(data_dir: &Path, settings: &EncryptionConfig) -> Result<()> {
    let keyring = Keyring::new(data_dir);
    let log = data_dir.join(sequencer::BLOCK_LOG_FILE);
    let has_blocks = std::fs::metadata(&log)
        .map(|m| m.len() > 8)
        .unwrap_or(false);
    match settings {
        EncryptionConfig::Off if keyring.exists() => bail!(
            "{} is encrypted (it has a keyring); configure its key provider instead of turning encryption off",
            data_dir.display()
        ),
        EncryptionConfig::Off => {
            tracing::warn!("encryption at rest is OFF: chain data is stored in plaintext");
        }
        _ if !keyring.exists() && has_blocks => bail!(
            "{} holds a plaintext chain (created with encryption off); it cannot be opened encrypted",
            data_dir.display()
        ),
        _ => {}
    }
    settings.record(data_dir)
}

/// Unlocks the keyring (creating it on first use).
pub async fn unseal(data_dir: &Path, settings: &EncryptionConfig) -> Result<AtRest, UnsealError> {
    let provider = provider(data_dir, settings).map_err(classify)?;
    let keyring = Keyring::new(data_dir);
    let limits = KeyLimits::default();
    let keys = keyring
        .unlock(provider.as_ref(), limits)
        .await
        .map_err(|e| classify(e.into()))?;
    tracing::info!(
        provider = %provider.id(),
        current = keys.current,
        versions = keys.deks.len(),
        "unsealed"
    );
    Ok(AtRest {
        provider,
        keyring,
        cipher: Arc::new(Cipher::new(&keys)),
        limits,
    })
}

/// Asks the provider of `settings` to open the keyring of `data_dir`
/// without unsealing it for use (nothing written): the provider's id and
/// the number of live data-key versions.
pub async fn verify_provider(
    data_dir: &Path,
    settings: &EncryptionConfig,
) -> Result<(String, usize), UnsealError> {
    let provider = provider(data_dir, settings).map_err(classify)?;
    let live = Keyring::new(data_dir)
        .verify_access(provider.as_ref())
        .await
        .map_err(|e| classify(e.into()))?;
    Ok((provider.id(), live))
}

fn classify(e: anyhow::Error) -> UnsealError {
    let retry = e
        .chain()
        .find_map(|c| {
            c.downcast_ref::<encryption::ProviderError>()
                .map(|p| p.is_retryable())
                .or_else(|| match c.downcast_ref::<KeyringError>() {
                    Some(KeyringError::Provider(p)) => Some(p.is_retryable()),
                    _ => None,
                })
        })
        .unwrap_or(false);
    if retry {
        UnsealError::Retry(format!("{e:#}"))
    } else {
        UnsealError::Fatal(e)
    }
}

/// The recorded provider and keyring of an encrypted data directory.
pub fn provider_for(data_dir: &Path) -> Result<(Arc<dyn KeyProvider>, Keyring)> {
    match EncryptionConfig::recorded(data_dir)? {
        Some(s) if s.is_on() => Ok((provider(data_dir, &s)?, Keyring::new(data_dir))),
        _ => bail!(
            "{} is not encrypted (no key provider recorded in keys/{ENCRYPTION_SETTINGS_FILE})",
            data_dir.display()
        ),
    }
}

/// The record cipher of a data directory for a CLI command (None: plaintext).
pub async fn recorded_cipher(data_dir: &Path) -> Result<Option<SharedCipher>> {
    Ok(open_recorded(data_dir)
        .await?
        .map(|a| a.cipher as SharedCipher))
}

/// A cipher that only opens the records of `data_dir` (None: plaintext),
/// writing nothing there: for checking a copy whose files must stay as
/// they were hashed. `known` is a provider already unlocked (a running
/// node's), else it is opened from the recorded settings.
pub async fn cipher_to_open(
    data_dir: &Path,
    known: Option<Arc<dyn KeyProvider>>,
) -> Result<Option<SharedCipher>> {
    match EncryptionConfig::recorded(data_dir)? {
        Some(s) if s.is_on() => {
            let provider = match known {
                Some(p) => p,
                None => provider(data_dir, &s)?,
            };
            let keys = Keyring::new(data_dir)
                .unlock_to_open(provider.as_ref())
                .await?;
            Ok(Some(Arc::new(Cipher::new(&keys)) as SharedCipher))
        }
        _ => Ok(None),
    }
}

/// Unlocks an encrypted data directory for a CLI command (None: plaintext).
pub async fn open_recorded(data_dir: &Path) -> Result<Option<AtRest>> {
    match EncryptionConfig::recorded(data_dir)? {
        Some(s) if s.is_on() => match unseal(data_dir, &s).await {
            Ok(a) => Ok(Some(a)),
            Err(UnsealError::Retry(r)) => bail!("key provider unavailable: {r}"),
            Err(UnsealError::Fatal(e)) => Err(e),
        },
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_from_toml_and_reject_unknown_keys() {
        let t: EncryptionConfig = toml::from_str(
            r#"
provider = "transit"
address = "https://bao.bank.internal:8200"
key = "prividium"
auth = { approle = { role_id = "r-1", secret_id_file = "/run/secrets/sid" } }
"#,
        )
        .unwrap();
        match t {
            EncryptionConfig::Transit(c) => {
                assert_eq!(c.mount, "transit");
                assert_eq!(c.key, "prividium");
            }
            other => panic!("{other:?}"),
        }
        let l: EncryptionConfig = toml::from_str(
            "provider = \"local\"\npassphrase = { env = \"PRIVIDIUM_PASSPHRASE\" }\n",
        )
        .unwrap();
        assert!(matches!(
            l,
            EncryptionConfig::Local { passphrase: PassphraseSource::Env(ref v), .. } if v == "PRIVIDIUM_PASSPHRASE"
        ));
        let bad = toml::from_str::<EncryptionConfig>(
            "provider = \"transit\"\naddress = \"https://x\"\nkey = \"k\"\nauth = { token = { env = \"T\" } }\ntoken = \"s.leaked\"\n",
        );
        assert!(bad.is_err(), "an inline token must not be accepted");
    }
}
