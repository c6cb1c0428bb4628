//! Per-action views of the policy set, prepared at load.
//!
//! Cedar evaluates every policy of the set it is given. A policy whose
//! action scope cannot match a request's action is never satisfied and
//! raises no error (the scope is checked before any condition), so leaving
//! it out changes no decision, no reason and no diagnostic. Slicing the set
//! by action once per load keeps a decision to the handful of policies that
//! can apply, which is what keeps it within the per-request budget.
//!
//! The same holds for the principal scope: a principal's only ancestors are
//! its roles, so `principal in Role::"x"` cannot match without role `x`.
//! Each action's set is narrowed further per set of roles, on first use.

use cedar_policy::{
    ActionConstraint, Entities, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};
use parking_lot::RwLock;
use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

/// Distinct role sets remembered per action; an IdP sending unusual group
/// combinations must not grow memory without bound.
const ROLE_SETS_CACHED: usize = 256;

/// What one action's decisions are evaluated against.
#[derive(Debug)]
pub struct ActionSlice {
    /// The policies whose action scope admits this action.
    pub set: PolicySet,
    /// The action's entity and its ancestors (method families), enough for
    /// any `action in …` condition.
    pub entities: Entities,
    by_roles: RwLock<HashMap<BTreeSet<String>, Arc<RoleSlice>>>,
}

/// One action's policies for one set of roles.
#[derive(Debug)]
pub struct RoleSlice {
    /// The policies that can apply.
    pub set: PolicySet,
    /// No policy of `set` has a `when` or `unless` clause or constrains
    /// the resource. Its scope can then only look at the principal (its
    /// identity, type and roles) and the action, so one caller's answer for
    /// this action is the same for every resource, context and hour.
    pub unconditional: bool,
    /// The context attributes `set` can read, sorted; `None` when a
    /// policy uses the context as a whole. A caller's answer is the same
    /// for every question with the same resource and the same values of
    /// these attributes (see `super::reads`).
    pub context_reads: Option<Vec<String>>,
}

impl RoleSlice {
    fn new(set: PolicySet) -> Self {
        let unconditional = set.policies().all(|p| {
            !p.has_non_scope_constraint() && p.resource_constraint() == ResourceConstraint::Any
        });
        let context_reads = super::reads::context_reads(&set);
        Self {
            set,
            unconditional,
            context_reads,
        }
    }
}

impl ActionSlice {
    /// The policies that can apply to a principal holding exactly `roles`.
    pub fn for_roles(&self, roles: &BTreeSet<String>) -> Arc<RoleSlice> {
        if let Some(slice) = self.by_roles.read().get(roles) {
            return slice.clone();
        }
        let narrowed = Arc::new(RoleSlice::new(subset(&self.set, |policy| {
            match policy.principal_constraint() {
                PrincipalConstraint::In(group) if is_role(&group) => {
                    roles.contains(group.id().unescaped())
                }
                // `==` a principal, `is`, or no constraint: kept (they do not
                // depend on roles alone).
                _ => true,
            }
        })));
        let mut cache = self.by_roles.write();
        if cache.len() < ROLE_SETS_CACHED {
            cache.insert(roles.clone(), narrowed.clone());
        }
        narrowed
    }
}

/// The policies of `set` that `keep` accepts.
fn subset(set: &PolicySet, keep: impl Fn(&Policy) -> bool) -> PolicySet {
    let mut out = PolicySet::new();
    for policy in set.policies().filter(|p| keep(p)) {
        // Ids are unique in `set`, so adding cannot fail.
        let _ = out.add(policy.clone());
    }
    out
}

fn is_role(uid: &EntityUid) -> bool {
    uid.type_name().basename() == "Role"
}

/// The action and every group it is (transitively) in.
fn lineage(actions: &Entities, action: &EntityUid) -> HashSet<EntityUid> {
    let mut out: HashSet<EntityUid> = actions
        .ancestors(action)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    out.insert(action.clone());
    out
}

/// One slice per action entity of the schema.
pub(super) fn by_action(set: &PolicySet, actions: &Entities) -> HashMap<String, ActionSlice> {
    let mut slices = HashMap::new();
    for entity in actions.iter() {
        let uid = entity.uid();
        let lineage = lineage(actions, &uid);
        let sliced = subset(set, |policy| match policy.action_constraint() {
            ActionConstraint::Any => true,
            ActionConstraint::Eq(a) => a == uid,
            ActionConstraint::In(groups) => groups.iter().any(|g| lineage.contains(g)),
        });
        let members = lineage.iter().filter_map(|u| actions.get(u)).cloned();
        let Ok(entities) = Entities::from_entities(members, None) else {
            continue; // not sliced: decisions fall back to the whole set
        };
        slices.insert(
            uid.id().unescaped().to_owned(),
            ActionSlice {
                set: sliced,
                entities,
                by_roles: RwLock::new(HashMap::new()),
            },
        );
    }
    slices
}
