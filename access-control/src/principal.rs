//! Who is calling: the authenticated identity every decision is about.

use alloy_primitives::Address;
use std::{collections::BTreeSet, fmt};

/// How a principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person, via an OIDC access token from the bank's IdP.
    User,
    /// A machine, via an API key.
    ApiKey,
}

impl PrincipalKind {
    /// Cedar entity type (inside the `Prividium` namespace).
    pub fn entity_type(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::ApiKey => "ApiKey",
        }
    }
}

/// An authenticated caller. Wallets are not part of it: bindings change
/// while a token is cached, so they are looked up per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User or API key.
    pub kind: PrincipalKind,
    /// Stable id: `<issuer name>:<sub>` for users, the key id for API keys.
    pub id: String,
    /// Roles (policy groups).
    pub roles: BTreeSet<String>,
    /// Organization ("" when unknown).
    pub org: String,
    /// Credential expiry (unix seconds), if any.
    pub expires_at: Option<u64>,
}

impl Principal {
    /// `kind:id`, the form used in bindings and audit records.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.entity_type(), self.id)
    }

    /// True when the principal holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::\"{}\"", self.kind.entity_type(), self.id)
    }
}

/// Lower-case 0x-hex, the one spelling policies compare against.
pub fn addr_str(a: &Address) -> String {
    format!("{a:#x}")
}
