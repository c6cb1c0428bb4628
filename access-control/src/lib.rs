//! Access control for the appliance's front door.
//!
//! Role: decide who is calling. Today that is one admin API key presented as
//! `Authorization: Bearer <key>`, stored only as a SHA-256 hash and compared
//! in constant time. OIDC, per-machine keys, wallet binding and Cedar
//! policies build on these types.

mod api_key;

pub use api_key::{AdminKey, ApiKeyError, Principal};
