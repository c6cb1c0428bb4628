//! Vault / OpenBao transit as the key provider: the KEK never leaves the
//! KMS; data keys come from `transit/datakey`, are stored as transit
//! ciphertext and unwrapped with `transit/decrypt` at start.

use super::{BoxFuture, KeyProvider, NewKey, ProviderError};
use crate::cipher::KeyBytes;
use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use std::{path::PathBuf, time::Duration};
use vaultrs::{
    api::transit::requests::DataKeyType,
    client::{Client, VaultClient, VaultClientSettingsBuilder},
    error::ClientError,
};
use zeroize::Zeroizing;

/// How the appliance logs in to the KMS.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TransitAuth {
    /// A token, read from an environment variable or a file (never the
    /// config file itself).
    Token {
        /// Environment variable holding the token.
        #[serde(default)]
        env: Option<String>,
        /// File holding the token.
        #[serde(default)]
        file: Option<PathBuf>,
    },
    /// AppRole login; the secret id is read from a file.
    Approle {
        /// Auth mount (usually `approle`).
        #[serde(default = "default_approle_mount")]
        mount: String,
        /// Role id.
        role_id: String,
        /// File holding the secret id.
        secret_id_file: PathBuf,
    },
}

impl std::fmt::Debug for TransitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { env, file } => f
                .debug_struct("Token")
                .field("env", env)
                .field("file", file)
                .finish(),
            Self::Approle { mount, role_id, .. } => f
                .debug_struct("Approle")
                .field("mount", mount)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
        }
    }
}

fn default_approle_mount() -> String {
    "approle".into()
}

fn default_mount() -> String {
    "transit".into()
}

/// Where the transit key is and how to reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitConfig {
    /// KMS address, e.g. `https://bao.bank.internal:8200`.
    pub address: String,
    /// Transit mount.
    #[serde(default = "default_mount")]
    pub mount: String,
    /// Transit key name.
    pub key: String,
    /// CA certificate (PEM) that signed the KMS's TLS certificate.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Vault Enterprise / OpenBao namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Login.
    pub auth: TransitAuth,
    /// Create the transit key when it does not exist (first install).
    #[serde(default)]
    pub create_key: bool,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}

/// The transit provider.
#[derive(Debug)]
pub struct TransitProvider {
    config: TransitConfig,
}

impl TransitProvider {
    /// A provider for `config`; checks the address now, connects on use.
    pub fn new(config: TransitConfig) -> Result<Self, ProviderError> {
        url::Url::parse(&config.address).map_err(|e| ProviderError::Invalid {
            provider: format!("transit:{}", config.address),
            message: format!("bad address: {e}"),
        })?;
        Ok(Self { config })
    }

    fn unavailable(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Unavailable {
            provider: self.id(),
            message: message.into(),
        }
    }

    fn invalid(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Invalid {
            provider: self.id(),
            message: message.into(),
        }
    }

    fn map(&self, what: &str, e: ClientError) -> ProviderError {
        match e {
            ClientError::APIError { code, errors } => {
                let message = format!("{what}: HTTP {code}: {}", errors.join("; "));
                match code {
                    // Sealed, standby, rate limited or failing: wait.
                    429 | 500..=599 => self.unavailable(message),
                    _ => ProviderError::Refused {
                        provider: self.id(),
                        message,
                    },
                }
            }
            ClientError::RestClientError { source } => {
                self.unavailable(format!("{what}: {}", error_chain(&source)))
            }
            other => self.invalid(format!("{what}: {}", error_chain(&other))),
        }
    }

    fn read_secret(&self, path: &PathBuf, what: &str) -> Result<String, ProviderError> {
        let s = std::fs::read_to_string(path)
            .map_err(|e| self.invalid(format!("cannot read {what} {}: {e}", path.display())))?;
        Ok(s.trim().to_string())
    }

    /// A logged-in client. Provider calls are rare (start, rotation), so a
    /// fresh login each time avoids tracking token renewal.
    async fn client(&self) -> Result<VaultClient, ProviderError> {
        let c = &self.config;
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&c.address)
            .verify(true)
            .ca_certs(c.ca_cert.iter().map(|p| p.display().to_string()).collect())
            .timeout(Some(Duration::from_secs(c.timeout_secs.max(1))))
            .token("");
        if let Some(ns) = &c.namespace {
            settings.namespace(Some(ns.clone()));
        }
        let settings = settings
            .build()
            .map_err(|e| self.invalid(format!("client settings: {e}")))?;
        let mut client = VaultClient::new(settings)
            .map_err(|e| self.invalid(format!("client: {}", error_chain(&e))))?;
        let token = match &c.auth {
            TransitAuth::Token { env, file } => match (env, file) {
                (Some(var), _) => std::env::var(var)
                    .map_err(|_| self.invalid(format!("environment variable {var} is not set")))?,
                (None, Some(path)) => self.read_secret(path, "token file")?,
                (None, None) => {
                    return Err(self.invalid("token auth needs `env` or `file`"));
                }
            },
            TransitAuth::Approle {
                mount,
                role_id,
                secret_id_file,
            } => {
                let secret = Zeroizing::new(self.read_secret(secret_id_file, "secret id file")?);
                vaultrs::auth::approle::login(&client, mount, role_id, &secret)
                    .await
                    .map_err(|e| self.map("approle login", e))?
                    .client_token
            }
        };
        client.set_token(&token);
        Ok(client)
    }

    /// Checks the key exists (creating it when configured to).
    pub async fn ensure_key(&self) -> Result<(), ProviderError> {
        let client = self.client().await?;
        let c = &self.config;
        match vaultrs::transit::key::read(&client, &c.mount, &c.key).await {
            Ok(_) => Ok(()),
            Err(ClientError::APIError { code: 404, .. }) if c.create_key => {
                vaultrs::transit::key::create(&client, &c.mount, &c.key, None)
                    .await
                    .map_err(|e| self.map("creating transit key", e))?;
                tracing::info!(key = %c.key, mount = %c.mount, "created transit key");
                Ok(())
            }
            Err(e) => Err(self.map("reading transit key", e)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn decode_key(b64: &str) -> Option<KeyBytes> {
    let bytes = Zeroizing::new(Base64::decode_vec(b64).ok()?);
    let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(Zeroizing::new(key))
}

impl KeyProvider for TransitProvider {
    fn id(&self) -> String {
        format!(
            "transit:{}/{}/{}",
            self.config.address.trim_end_matches('/'),
            self.config.mount,
            self.config.key
        )
    }

    fn generate(&self) -> BoxFuture<'_, Result<NewKey, ProviderError>> {
        Box::pin(async move {
            self.ensure_key().await?;
            let client = self.client().await?;
            let c = &self.config;
            let resp = vaultrs::transit::generate::data_key(
                &client,
                &c.mount,
                &c.key,
                DataKeyType::Plaintext,
                None,
            )
            .await
            .map_err(|e| self.map("generating data key", e))?;
            let plaintext = resp
                .plaintext
                .as_deref()
                .and_then(decode_key)
                .ok_or_else(|| self.invalid("datakey returned no 256-bit plaintext"))?;
            Ok(NewKey {
                plaintext,
                wrapped: resp.ciphertext,
            })
        })
    }

    fn unwrap_key<'a>(
        &'a self,
        wrapped: &'a str,
    ) -> BoxFuture<'a, Result<KeyBytes, ProviderError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let c = &self.config;
            let resp = vaultrs::transit::data::decrypt(&client, &c.mount, &c.key, wrapped, None)
                .await
                .map_err(|e| self.map("unwrapping data key", e))?;
            let plaintext = Zeroizing::new(resp.plaintext);
            decode_key(&plaintext).ok_or_else(|| self.invalid("unwrapped data key is not 256 bits"))
        })
    }

    fn rewrap<'a>(&'a self, wrapped: &'a str) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let c = &self.config;
            Ok(
                vaultrs::transit::data::rewrap(&client, &c.mount, &c.key, wrapped, None)
                    .await
                    .map_err(|e| self.map("rewrapping data key", e))?
                    .ciphertext,
            )
        })
    }

    fn rotate_kek(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let c = &self.config;
            vaultrs::transit::key::rotate(&client, &c.mount, &c.key)
                .await
                .map_err(|e| self.map("rotating transit key", e))
        })
    }
}
