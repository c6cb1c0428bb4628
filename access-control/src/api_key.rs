use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Holder of the admin API key.
    Admin,
}

/// API key problems, as reported to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// No `Authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// Header present but not `Bearer <token>`.
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    /// Token does not match.
    #[error("invalid bearer token")]
    Invalid,
    /// Stored hash is not 32 bytes of hex.
    #[error("stored API key hash is invalid")]
    BadHash,
}

/// The admin API key, held only as its SHA-256 hash.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey {
    hash: [u8; 32],
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(<redacted>)")
    }
}

impl AdminKey {
    /// Generates a new random key; returns the key (shown once) and its holder.
    pub fn generate() -> (String, Self) {
        let bytes: [u8; 32] = rand::random();
        let key = format!("pvd_{}", hex::encode(bytes));
        let admin = Self::from_plain(&key);
        (key, admin)
    }

    /// From the plain key.
    pub fn from_plain(key: &str) -> Self {
        Self {
            hash: Sha256::digest(key.as_bytes()).into(),
        }
    }

    /// From the hex SHA-256 hash kept in configuration.
    pub fn from_hash_hex(hash: &str) -> Result<Self, ApiKeyError> {
        let bytes = hex::decode(hash.trim()).map_err(|_| ApiKeyError::BadHash)?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| ApiKeyError::BadHash)?;
        Ok(Self { hash })
    }

    /// Hex of the hash, for configuration files.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, ApiKeyError> {
        let header = header.ok_or(ApiKeyError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiKeyError::Malformed)?
            .trim();
        if token.is_empty() {
            return Err(ApiKeyError::Malformed);
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(presented.ct_eq(&self.hash)) {
            Ok(Principal::Admin)
        } else {
            Err(ApiKeyError::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_issued_key_authenticates() {
        let (key, admin) = AdminKey::generate();
        assert_eq!(
            admin.authenticate(Some(&format!("Bearer {key}"))),
            Ok(Principal::Admin)
        );
        assert_eq!(admin.authenticate(None), Err(ApiKeyError::Missing));
        assert_eq!(admin.authenticate(Some(&key)), Err(ApiKeyError::Malformed));
        assert_eq!(
            admin.authenticate(Some("Bearer ")),
            Err(ApiKeyError::Malformed)
        );
        assert_eq!(
            admin.authenticate(Some("Bearer pvd_wrong")),
            Err(ApiKeyError::Invalid)
        );
    }

    #[test]
    fn hash_round_trips_and_never_shows_the_key() {
        let (key, admin) = AdminKey::generate();
        let restored = AdminKey::from_hash_hex(&admin.hash_hex()).unwrap();
        assert_eq!(
            restored.authenticate(Some(&format!("Bearer {key}"))),
            Ok(Principal::Admin)
        );
        assert!(!format!("{admin:?}").contains(&admin.hash_hex()));
        assert_eq!(AdminKey::from_hash_hex("zz"), Err(ApiKeyError::BadHash));
    }
}
