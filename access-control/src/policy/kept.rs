//! Answers kept per caller, for questions whose answer cannot change while
//! the caller, the policies in force and the hour stay the same. Every
//! asking is still reported to the decision sink (the audit trail is the
//! same whether an answer was kept or judged); only the Cedar evaluation is
//! saved.
//!
//! Two kinds of question qualify:
//! - node-level ones (`Resource::Node` under `Circumstances::Rpc`: may this
//!   caller call this method, view all, act for others), which depend only
//!   on the caller, the action, the policies and the hour;
//! - any question whose applicable policies, for the caller's roles, carry
//!   no condition and do not constrain the resource (see
//!   [`super::RoleSlice::unconditional`]): such policies can only look at who asks
//!   and what for, so the answer holds for every resource and every frame.
//!   A role whose policies cap values or restrict contracts is judged on
//!   every question, as before.

use super::{Decision, PolicyBundle, PolicyEngine, Question};
use std::{collections::HashMap, sync::Arc};

/// Most answers of each kind kept per caller: one per action in the
/// schema, far fewer in practice.
const KEPT_CAP: usize = 256;

/// The answers one caller has been given, and the policies and hour they
/// were given under.
#[derive(Default)]
pub struct KeptAnswers {
    bundle: Option<Arc<PolicyBundle>>,
    hour: u64,
    /// Node-level answers, by action.
    node: HashMap<String, Decision>,
    /// Answers that hold for any resource and circumstances, by action.
    unconditional: HashMap<String, Decision>,
}

impl std::fmt::Debug for KeptAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptAnswers")
            .field("hour", &self.hour)
            .field("node", &self.node.len())
            .field("unconditional", &self.unconditional.len())
            .finish_non_exhaustive()
    }
}

impl KeptAnswers {
    /// Forgets every answer given under other policies or in another hour.
    fn refresh(&mut self, bundle: &Arc<PolicyBundle>, hour: u64) {
        let current =
            self.hour == hour && self.bundle.as_ref().is_some_and(|b| Arc::ptr_eq(b, bundle));
        if !current {
            self.node.clear();
            self.unconditional.clear();
            self.bundle = Some(bundle.clone());
            self.hour = hour;
        }
    }
}

impl PolicyEngine {
    /// A node-level question: answered from the caller's kept answers when
    /// this caller asked it under the same policies in the same hour, else
    /// judged and kept.
    pub(super) fn node_answer(&self, q: Question<'_>) -> Decision {
        let bundle = self.bundle.load_full();
        kept_or_judged(&bundle, q, |k| &mut k.node, || self.judge(&bundle, q))
    }

    /// Any other question: kept when the caller's policies for `action`
    /// are unconditional (see the module docs), judged every time
    /// otherwise.
    pub(super) fn resource_answer(&self, q: Question<'_>) -> Decision {
        let bundle = self.bundle.load_full();
        let unconditional = bundle
            .slices
            .get(q.action)
            .is_some_and(|s| s.for_roles(&q.caller.principal.roles).unconditional);
        if !unconditional {
            return self.judge(&bundle, q);
        }
        // Judged under the very bundle whose slice was found unconditional
        // (not a newer one loaded meanwhile): the answer is reused for any
        // resource and context, so it must come from the policies it is
        // kept under.
        kept_or_judged(
            &bundle,
            q,
            |k| &mut k.unconditional,
            || self.judge(&bundle, q),
        )
    }
}

/// The asking caller's kept answer to `q`'s action in the map `pick` names,
/// or `judge`'s, kept there (up to [`KEPT_CAP`]). The lock is not held
/// while judging; `bundle` must be the one `judge` decides under.
fn kept_or_judged(
    bundle: &Arc<PolicyBundle>,
    q: Question<'_>,
    pick: impl Fn(&mut KeptAnswers) -> &mut HashMap<String, Decision>,
    judge: impl FnOnce() -> Decision,
) -> Decision {
    {
        let mut kept = q.caller.answers.0.lock();
        kept.refresh(bundle, q.hour);
        if let Some(known) = pick(&mut kept).get(q.action) {
            return known.clone();
        }
    }
    let decision = judge();
    let mut kept = q.caller.answers.0.lock();
    kept.refresh(bundle, q.hour);
    let map = pick(&mut kept);
    if map.len() < KEPT_CAP {
        map.insert(q.action.to_owned(), decision.clone());
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::super::{test_support, AccountFacts, Circumstances, FrameFacts, Resource};
    use super::*;
    use alloy_primitives::{Address, U256};
    use test_support::caller;

    fn account(byte: u8) -> Resource {
        Resource::Account(AccountFacts {
            address: Address::repeat_byte(byte),
            ..AccountFacts::default()
        })
    }

    /// A top-level transfer of `eth` ether.
    fn transfer(eth: u64) -> Circumstances {
        Circumstances::Frame(FrameFacts {
            kind: "call",
            caller: Address::repeat_byte(1),
            signer: Address::repeat_byte(1),
            value: U256::from(eth) * U256::from(1_000_000_000_000_000_000u128),
            ..FrameFacts::default()
        })
    }

    fn engine() -> (tempfile::TempDir, PolicyEngine) {
        let dir = test_support::shipped_policies_copy();
        let engine = PolicyEngine::load(dir.path()).unwrap();
        (dir, engine)
    }

    /// Which shipped (action, role) slices can be kept: only those whose
    /// policies look at nothing but the caller.
    #[test]
    fn only_slices_without_conditions_are_unconditional() {
        let (_dir, engine) = engine();
        let bundle = engine.bundle();
        let unconditional = |action: &str, role: &str| {
            let roles = [role.to_owned()].into_iter().collect();
            bundle.slices[action].for_roles(&roles).unconditional
        };
        assert!(unconditional("transfer", "admin"));
        assert!(unconditional("transfer", "service"));
        // Value caps read the context.
        assert!(!unconditional("transfer", "trader"));
        // Other organizations' contracts are off limits: reads the resource.
        assert!(!unconditional("call", "admin"));
    }

    /// An unconditional answer is kept across resources and values, and
    /// every asking is still recorded, naming its own resource.
    #[test]
    fn kept_answers_still_record_every_resource() {
        let (_dir, engine) = engine();
        let recorded = test_support::Recording::on(&engine);
        let admin = caller("admin");
        for (byte, eth) in [(7, 1), (8, 5_000)] {
            let d = engine.decide(&admin, "transfer", &account(byte), &transfer(eth));
            assert!(d.allowed);
            assert_eq!(d.rule, "exec.admin.all");
        }
        assert_eq!(admin.answers.0.lock().unconditional.len(), 1);
        let recorded = recorded.lock();
        let names: Vec<&str> = recorded.iter().map(|(r, _, _)| r.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("Prividium::Account::\"{:#x}\"", Address::repeat_byte(7)),
                format!("Prividium::Account::\"{:#x}\"", Address::repeat_byte(8)),
            ]
        );
        assert!(recorded
            .iter()
            .all(|(_, allowed, rule)| *allowed && rule == "exec.admin.all"));
    }

    /// A trader's transfers are capped by value, so each is judged: the
    /// same caller is allowed 50 ETH and then refused 500 ETH.
    #[test]
    fn capped_roles_are_judged_on_every_frame() {
        let (_dir, engine) = engine();
        let trader = caller("trader");
        assert!(
            engine
                .decide(&trader, "transfer", &account(7), &transfer(50))
                .allowed
        );
        let d = engine.decide(&trader, "transfer", &account(7), &transfer(500));
        assert!(!d.allowed);
        assert_eq!(d.rule, "exec.trader.value-cap-tx");
        assert!(trader.answers.0.lock().unconditional.is_empty());
    }

    /// A kept answer ends with the policies that gave it: a cap added for
    /// everyone applies to the very next transfer of the same caller.
    #[test]
    fn kept_answers_end_with_a_reload() {
        let (dir, engine) = engine();
        let admin = caller("admin");
        assert!(
            engine
                .decide(&admin, "transfer", &account(7), &transfer(10))
                .allowed
        );
        test_support::add_policy(
            &engine,
            dir.path(),
            "@id(\"cap.everyone\")\nforbid (principal, action == Prividium::Action::\"transfer\", resource)\nwhen { context.value_gwei > 5000000000 };",
        );
        let d = engine.decide(&admin, "transfer", &account(7), &transfer(10));
        assert!(!d.allowed);
        assert_eq!(d.rule, "cap.everyone");
        assert!(
            engine
                .decide(&admin, "transfer", &account(7), &transfer(1))
                .allowed
        );
    }
}
