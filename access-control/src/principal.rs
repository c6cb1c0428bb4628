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

/// A principal together with the wallets bound to it right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Identity.
    pub principal: std::sync::Arc<Principal>,
    /// Bound EOAs.
    pub wallets: BTreeSet<Address>,
    /// The principal's policy entity, built by the first decision and
    /// shared by the rest (a request's method and read checks, every call
    /// frame of a transaction).
    entity: EntityCache,
    /// `principal.key()`, which every decision's audit record names.
    key: std::sync::Arc<str>,
    /// Answers already given to this exact caller that cannot change while
    /// it, the policies and the hour stay the same; see
    /// [`crate::policy::KeptAnswers`].
    pub(crate) answers: AnswerCache,
}

/// Shared by the clones of one caller; like the entity, derived from the
/// other fields and so no part of equality.
#[derive(Debug, Clone, Default)]
pub(crate) struct AnswerCache(
    pub(crate) std::sync::Arc<parking_lot::Mutex<crate::policy::KeptAnswers>>,
);

impl PartialEq for AnswerCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for AnswerCache {}

/// Derived from the other fields, so it takes no part in equality.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntityCache(std::sync::Arc<std::sync::OnceLock<cedar_policy::Entity>>);

impl PartialEq for EntityCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for EntityCache {}

impl Caller {
    /// `principal` acting with `wallets`.
    pub fn new(principal: std::sync::Arc<Principal>, wallets: BTreeSet<Address>) -> Self {
        Self {
            key: principal.key().into(),
            principal,
            wallets,
            entity: EntityCache::default(),
            answers: AnswerCache::default(),
        }
    }

    /// The principal's policy entity, built once.
    pub(crate) fn entity(
        &self,
        build: impl FnOnce(&Self) -> cedar_policy::Entity,
    ) -> &cedar_policy::Entity {
        self.entity.0.get_or_init(|| build(self))
    }

    /// `kind:id` of the principal (see [`Principal::key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// True when `address` is one of the caller's wallets.
    pub fn owns(&self, address: &Address) -> bool {
        self.wallets.contains(address)
    }
}

/// Lower-case 0x-hex, the one spelling policies compare against.
pub fn addr_str(a: &Address) -> String {
    format!("{a:#x}")
}
