//! A caller as the policy engine sees it: the authenticated principal, the
//! wallets bound to it right now, and what the engine has already worked
//! out for it (its Cedar entity, its kept answers). Those memos live with the
//! caller, shared by its clones, so a request's method check, read checks
//! and every call frame of its transaction reuse them without a shared map.

use super::KeptAnswers;
use crate::principal::Principal;
use alloy_primitives::Address;
use std::collections::BTreeSet;

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
    /// [`KeptAnswers`].
    pub(crate) answers: AnswerCache,
}

/// Shared by the clones of one caller; like the entity, derived from the
/// other fields and so no part of equality.
#[derive(Debug, Clone, Default)]
pub(crate) struct AnswerCache(pub(crate) std::sync::Arc<parking_lot::Mutex<KeptAnswers>>);

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
