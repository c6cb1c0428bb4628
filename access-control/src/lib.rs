//! Access control for the appliance: who is calling, and may they do this?
//!
//! Authentication ([`authn`]): OIDC access tokens from the bank's IdP and
//! API keys for machines, both presented as `Authorization: Bearer …`.
//! Wallets ([`wallets`], [`siwe`]) tie EOAs to principals. Authorization
//! ([`policy`]): Cedar policies from the `policies/` directory, default
//! deny, a stable rule id on every decision, applied to RPC methods, to
//! read filtering and — through [`policy::PolicyGuard`] — to every call
//! frame a transaction makes inside the EVM. Fair share ([`rate`]): token
//! buckets per principal and organization, so no signed-in user can starve
//! the others.

pub mod authn;
pub mod directory;
pub mod policy;
mod principal;
pub mod rate;
pub mod siwe;
pub mod spend;
pub mod store;
pub mod wallets;

pub use authn::{AuthError, Authenticator};
pub use policy::Caller;
pub use principal::{addr_str, Principal, PrincipalKind};

/// Sub-directory of the data directory holding keys, bindings and the
/// contract directory.
pub const ACCESS_DIR: &str = "access";
