//! OIDC resource server: access tokens (JWTs) from the bank's IdP, checked
//! against keys from the issuer's discovery document and JWKS.

use crate::principal::{Principal, PrincipalKind};
use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::{
    jwk::{AlgorithmParameters, Jwk},
    Algorithm, DecodingKey, Validation,
};
use openidconnect::{core::CoreProviderMetadata, IssuerUrl};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// One trusted issuer, as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerConfig {
    /// Short name; user ids are `<name>:<sub>`.
    pub name: String,
    /// Issuer URL, exactly as the IdP spells it.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Claim paths holding roles, e.g. `roles`, `groups`, `realm_access.roles`.
    #[serde(default = "default_roles_claims")]
    pub roles_claims: Vec<String>,
    /// Claim holding the organization.
    #[serde(default = "default_org_claim")]
    pub org_claim: String,
    /// IdP role/group name → appliance role; when set, unmapped values are dropped.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// Accepted signature algorithms.
    #[serde(default = "default_algs")]
    pub algorithms: Vec<String>,
    /// Extra CA certificate (PEM) for an IdP behind the bank's own PKI.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Background JWKS refresh interval (seconds).
    #[serde(default = "default_refresh")]
    pub jwks_refresh_secs: u64,
    /// Minimum spacing of refreshes triggered by unknown key ids (seconds).
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_secs: u64,
    /// Allowed clock skew for `exp` / `nbf` (seconds).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Public client id the web console signs in with (authorization code
    /// with PKCE, no secret). Unset: the console offers this issuer no
    /// sign-in button; its tokens still work when pasted by a client.
    #[serde(default)]
    pub console_client_id: Option<String>,
}

fn default_roles_claims() -> Vec<String> {
    vec!["roles".into()]
}
fn default_org_claim() -> String {
    "org".into()
}
fn default_algs() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
fn default_refresh() -> u64 {
    300
}
fn default_min_refresh() -> u64 {
    5
}
fn default_leeway() -> u64 {
    30
}

/// Why a token was refused (the message goes back to the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT at all.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg: none`, an HMAC algorithm, or one not configured.
    #[error("token algorithm {0} is not accepted")]
    Algorithm(String),
    /// `iss` names no configured issuer.
    #[error("token issuer {0:?} is not trusted")]
    UnknownIssuer(String),
    /// The issuer's keys could not be fetched yet (IdP unreachable).
    #[error("signing keys of issuer {0:?} are not available yet (identity provider unreachable); retry shortly")]
    IssuerUnavailable(String),
    /// No key with the token's `kid` in the issuer's JWKS.
    #[error("unknown signing key id {0:?}")]
    UnknownKey(String),
    /// Signature does not verify.
    #[error("invalid token signature")]
    Signature,
    /// Past `exp`.
    #[error("token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("token is not yet valid")]
    NotYetValid,
    /// Wrong `aud`.
    #[error("token audience does not match")]
    Audience,
    /// Wrong `iss`.
    #[error("token issuer does not match")]
    Issuer,
    /// A required claim is missing or of the wrong type.
    #[error("token claim problem: {0}")]
    Claims(String),
}

/// Failure to reach or understand an IdP.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Configuration problem.
    #[error("issuer {issuer}: {message}")]
    Config {
        /// Issuer.
        issuer: String,
        /// Problem.
        message: String,
    },
    /// Network / protocol problem.
    #[error("issuer {issuer}: {message}")]
    Fetch {
        /// Issuer.
        issuer: String,
        /// Problem.
        message: String,
    },
}

struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched: Instant,
}

/// A trusted issuer with its cached signing keys.
pub struct OidcIssuer {
    config: OidcIssuerConfig,
    /// The configured issuer, checked to be a URL once.
    url: IssuerUrl,
    algorithms: Vec<Algorithm>,
    /// Known after the first successful discovery.
    jwks_uri: RwLock<Option<String>>,
    http: reqwest::Client,
    keys: RwLock<KeySet>,
    /// Bumped whenever the set of key ids changes.
    generation: AtomicU64,
    last_miss_refresh: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcIssuer")
            .field("issuer", &self.config.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .finish_non_exhaustive()
    }
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "PS256" => Some(Algorithm::PS256),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Decodes one base64url JWT segment as JSON.
fn segment(token: &str, index: usize) -> Result<Value, TokenError> {
    let part = token
        .split('.')
        .nth(index)
        .ok_or_else(|| TokenError::Malformed("expected three dot-separated parts".into()))?;
    let bytes = Base64UrlUnpadded::decode_vec(part.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("invalid base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("invalid JSON".into()))
}

/// The unverified `iss` claim, to pick the issuer whose keys to check with.
pub(crate) fn peek_issuer(token: &str) -> Result<String, TokenError> {
    if token.split('.').count() != 3 {
        return Err(TokenError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    }
    segment(token, 1)?
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TokenError::Claims("missing iss".into()))
}

fn claim_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, k| v.get(k))
}

fn build_http(config: &OidcIssuerConfig) -> Result<reqwest::Client, DiscoveryError> {
    let err = |message: String| DiscoveryError::Config {
        issuer: config.issuer.clone(),
        message,
    };
    // Discovery must not follow redirects to somewhere else.
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some(ca) = &config.ca_cert {
        let pem = std::fs::read(ca).map_err(|e| err(format!("{}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| err(e.to_string()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| err(e.to_string()))
}

impl OidcIssuer {
    /// Checks the configuration; contacts nothing. The IdP is discovered by
    /// the first [`refresh`](Self::refresh), so an IdP that is down when the
    /// appliance starts delays OIDC logins instead of the whole appliance.
    pub fn new(config: OidcIssuerConfig) -> Result<Self, DiscoveryError> {
        let cfg_err = |message: String| DiscoveryError::Config {
            issuer: config.issuer.clone(),
            message,
        };
        let mut algorithms = Vec::new();
        for a in &config.algorithms {
            match parse_alg(a) {
                Some(alg) => algorithms.push(alg),
                None => {
                    return Err(cfg_err(format!(
                        "algorithm {a} is not supported (HS* and none never are)"
                    )))
                }
            }
        }
        let url = IssuerUrl::new(config.issuer.clone()).map_err(|e| cfg_err(e.to_string()))?;
        let http = build_http(&config)?;
        Ok(Self {
            config,
            url,
            algorithms,
            jwks_uri: RwLock::new(None),
            http,
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                fetched: Instant::now(),
            }),
            generation: AtomicU64::new(0),
            last_miss_refresh: Mutex::new(None),
        })
    }

    /// Whether the issuer's signing keys have been fetched at least once.
    pub fn ready(&self) -> bool {
        !self.keys.read().keys.is_empty()
    }

    /// The JWKS address from the discovery document, discovering it first
    /// when it is not known yet.
    async fn jwks_uri(&self) -> Result<String, DiscoveryError> {
        if let Some(uri) = self.jwks_uri.read().clone() {
            return Ok(uri);
        }
        let metadata = CoreProviderMetadata::discover_async(self.url.clone(), &self.http)
            .await
            .map_err(|e| DiscoveryError::Fetch {
                issuer: self.config.issuer.clone(),
                message: format!("discovery failed: {}", error_chain(&e)),
            })?;
        let uri = metadata.jwks_uri().url().to_string();
        tracing::info!(issuer = %self.config.issuer, jwks = %uri, "OIDC issuer discovered");
        *self.jwks_uri.write() = Some(uri.clone());
        Ok(uri)
    }

    /// The configuration.
    pub fn config(&self) -> &OidcIssuerConfig {
        &self.config
    }

    /// How far the IdP's clock is ahead of ours (seconds; negative: behind),
    /// from the `Date` of its discovery document. Tokens carry the IdP's
    /// times, so a skew beyond the leeway refuses good tokens or lets
    /// expired ones through.
    pub async fn clock_skew(&self) -> Result<i64, DiscoveryError> {
        let fetch_err = |message: String| DiscoveryError::Fetch {
            issuer: self.config.issuer.clone(),
            message,
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let sent = std::time::SystemTime::now();
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fetch_err(format!("discovery fetch failed: {e}")))?;
        let received = std::time::SystemTime::now();
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| fetch_err("the IdP sent no Date header".into()))?;
        let theirs = httpdate::parse_http_date(date)
            .map_err(|e| fetch_err(format!("unreadable Date header {date:?}: {e}")))?;
        // Our time at the middle of the round trip; Date has whole seconds.
        let ours = sent + received.duration_since(sent).unwrap_or_default() / 2;
        Ok(match theirs.duration_since(ours) {
            Ok(ahead) => ahead.as_secs() as i64,
            Err(behind) => -(behind.duration().as_secs() as i64),
        })
    }

    /// Re-fetches the JWKS (after discovery, the first time); returns
    /// whether the set of key ids changed.
    pub async fn refresh(&self) -> Result<bool, DiscoveryError> {
        let fetch_err = |message: String| DiscoveryError::Fetch {
            issuer: self.config.issuer.clone(),
            message,
        };
        let jwks_uri = self.jwks_uri().await?;
        let body: Value = self
            .http
            .get(&jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| fetch_err(format!("JWKS fetch failed: {e}")))?
            .json()
            .await
            .map_err(|e| fetch_err(format!("JWKS is not JSON: {e}")))?;
        let mut keys = HashMap::new();
        for raw in body
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // One odd key must not take the others down with it.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue; // symmetric keys are never published for verification
            }
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
            else {
                continue;
            };
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err(fetch_err("JWKS holds no usable signing keys".into()));
        }
        let mut current = self.keys.write();
        let changed = {
            let old: BTreeSet<&String> = current.keys.keys().collect();
            let new: BTreeSet<&String> = keys.keys().collect();
            old != new
        };
        *current = KeySet {
            keys,
            fetched: Instant::now(),
        };
        if changed {
            self.generation.fetch_add(1, Ordering::Relaxed);
            tracing::info!(issuer = %self.config.issuer, "signing keys changed");
        }
        Ok(changed)
    }

    /// Changes whenever the issuer's key set does.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// True when the periodic refresh is due; while no keys were ever
    /// fetched, as often as the unknown-key rate limit allows.
    pub fn refresh_due(&self) -> bool {
        if !self.ready() {
            return self.may_refresh_on_miss();
        }
        self.keys.read().fetched.elapsed() >= Duration::from_secs(self.config.jwks_refresh_secs)
    }

    /// Verifies a token; on an unknown key id refreshes the JWKS first
    /// (rate-limited), so a rotation at the IdP is picked up.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = segment(token, 0)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
        let algorithm = parse_alg(alg)
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| TokenError::Algorithm(alg.to_owned()))?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| TokenError::UnknownKey(String::new()))?
            .to_owned();
        if !self.keys.read().keys.contains_key(&kid) && self.may_refresh_on_miss() {
            if let Err(e) = self.refresh().await {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS refresh failed");
            }
        }
        let claims = {
            let keys = self.keys.read();
            if keys.keys.is_empty() {
                return Err(TokenError::IssuerUnavailable(self.config.issuer.clone()));
            }
            let key = keys
                .keys
                .get(&kid)
                .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
            let mut v = Validation::new(algorithm);
            v.set_issuer(&[&self.config.issuer]);
            v.set_audience(&[&self.config.audience]);
            v.leeway = self.config.leeway_secs;
            v.validate_nbf = true;
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            jsonwebtoken::decode::<Value>(token, key, &v)
                .map_err(|e| map_jwt_error(&e))?
                .claims
        };
        self.principal(&claims)
    }

    fn may_refresh_on_miss(&self) -> bool {
        let mut last = self.last_miss_refresh.lock();
        let min = Duration::from_secs(self.config.jwks_min_refresh_secs);
        if last.is_some_and(|t| t.elapsed() < min) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    fn principal(&self, claims: &Value) -> Result<Principal, TokenError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| TokenError::Claims("sub must be a string".into()))?;
        let mut roles = BTreeSet::new();
        for path in &self.config.roles_claims {
            let values: Vec<&str> = match claim_path(claims, path) {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                Some(Value::String(s)) => s.split_whitespace().collect(),
                _ => Vec::new(),
            };
            for v in values {
                if self.config.role_map.is_empty() {
                    roles.insert(v.to_owned());
                } else if let Some(mapped) = self.config.role_map.get(v) {
                    roles.insert(mapped.clone());
                }
            }
        }
        let org = claim_path(claims, &self.config.org_claim)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Principal {
            kind: PrincipalKind::User,
            id: format!("{}:{sub}", self.config.name),
            roles,
            org,
            expires_at: claims.get("exp").and_then(Value::as_u64),
        })
    }
}

fn map_jwt_error(e: &jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidAudience => TokenError::Audience,
        K::InvalidIssuer => TokenError::Issuer,
        K::InvalidSignature => TokenError::Signature,
        K::InvalidAlgorithm | K::MissingAlgorithm | K::InvalidAlgorithmName => {
            TokenError::Algorithm("mismatched".into())
        }
        K::MissingRequiredClaim(c) => TokenError::Claims(format!("missing {c}")),
        K::InvalidClaimFormat(c) => TokenError::Claims(format!("invalid {c}")),
        other => TokenError::Malformed(format!("{other:?}")),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_issuer_peeking_reject_garbage_without_panicking() {
        assert!(matches!(peek_issuer("abc"), Err(TokenError::Malformed(_))));
        assert!(matches!(
            peek_issuer("a.b.c"),
            Err(TokenError::Malformed(_))
        ));
        let payload = Base64UrlUnpadded::encode_string(br#"{"iss":"http://idp"}"#);
        assert_eq!(
            peek_issuer(&format!("x.{payload}.y")).unwrap(),
            "http://idp"
        );
        let claims: Value = serde_json::json!({"realm_access": {"roles": ["trader"]}});
        assert_eq!(
            claim_path(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["trader"]))
        );
        assert!(parse_alg("HS256").is_none() && parse_alg("none").is_none());
    }
}
