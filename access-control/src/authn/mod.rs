//! Authentication: who is presenting this bearer token?
//!
//! `pvd_…` tokens are API keys; anything else must be a JWT access token from
//! a configured OIDC issuer. Verified tokens are cached until they expire (or
//! until the issuer's key set changes), which keeps the per-request cost to a
//! hash-map lookup.

pub mod api_keys;
pub mod oidc;

use crate::principal::Principal;
use api_keys::{ApiKeyError, ApiKeys};
use oidc::{OidcIssuer, TokenError};
use parking_lot::Mutex;
use std::{collections::HashMap, net::IpAddr, sync::Arc};

/// Why a request could not be authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// Not `Bearer <token>`.
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    MalformedHeader,
    /// An API key was refused.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// A JWT was refused.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The token inside an `Authorization: Bearer …` header.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(AuthError::MalformedHeader)?
        .trim();
    if token.is_empty() {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

const CACHE_LIMIT: usize = 50_000;

/// Checks bearer tokens against API keys and OIDC issuers.
#[derive(Debug)]
pub struct Authenticator {
    keys: Arc<ApiKeys>,
    issuers: Vec<Arc<OidcIssuer>>,
    cache: Mutex<HashMap<String, Cached>>,
}

/// A verified token: (principal, issuer index, issuer key generation).
type Cached = (Arc<Principal>, usize, u64);

impl Authenticator {
    /// Combines the key store and the trusted issuers.
    pub fn new(keys: Arc<ApiKeys>, issuers: Vec<Arc<OidcIssuer>>) -> Self {
        Self {
            keys,
            issuers,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The API key store.
    pub fn keys(&self) -> &Arc<ApiKeys> {
        &self.keys
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> &[Arc<OidcIssuer>] {
        &self.issuers
    }

    /// Authenticates the `Authorization` header of a request from `source`.
    pub async fn authenticate(
        &self,
        header: Option<&str>,
        source: Option<IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let token = bearer(header)?;
        if token.starts_with("pvd_") {
            return Ok(self.keys.authenticate(token, source)?);
        }
        let now = crate::store::unix_now();
        if let Some((p, idx, generation)) = self.cache.lock().get(token) {
            // A key rotation since the token was checked sends it back
            // through verification (its key may be gone).
            if p.expires_at.is_some_and(|exp| now < exp)
                && self.issuers[*idx].generation() == *generation
            {
                return Ok(p.clone());
            }
        }
        let iss = oidc::peek_issuer(token)?;
        let (idx, issuer) = self
            .issuers
            .iter()
            .enumerate()
            .find(|(_, i)| i.config().issuer == iss)
            .ok_or(TokenError::UnknownIssuer(iss))?;
        let generation = issuer.generation();
        let principal = Arc::new(issuer.verify(token).await?);
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_LIMIT {
            let now = crate::store::unix_now();
            cache.retain(|_, (p, _, _)| p.expires_at.is_some_and(|e| now < e));
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), (principal.clone(), idx, generation));
        Ok(principal)
    }

    /// Refreshes the JWKS sets whose refresh interval has passed.
    pub async fn refresh_due_keys(&self) {
        for issuer in &self.issuers {
            if !issuer.refresh_due() {
                continue;
            }
            if let Err(e) = issuer.refresh().await {
                tracing::warn!(error = %e, "JWKS refresh failed");
            }
        }
    }
}
