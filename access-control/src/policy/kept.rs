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
//! - any other question whose policies, for the caller's roles, read the
//!   context only through its attributes (see `super::reads`): its answer
//!   is kept under the resource (whole) and the values of the attributes
//!   those policies can read. An admin's calls into a contract read only
//!   the contract's organization, so every update of an oracle asks the
//!   first one's question; a trader's capped transfers read the value and
//!   the day's spend, so they are kept only when those repeat.

use super::{request, Decision, PolicyBundle, PolicyEngine, Question};
use std::{collections::HashMap, sync::Arc};

/// Most answers of each kind kept per caller: one per action in the
/// schema, far fewer in practice.
const KEPT_CAP: usize = 256;

/// Most answers kept per caller by resource and context: a caller
/// touching more distinct (resource, facts) pairs than this in an hour
/// starts again (a cold answer costs one evaluation, nothing more).
const KEYED_CAP: usize = 4_096;

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
    /// Answers by action, resource and the context attributes the
    /// policies read (`keyed_question`).
    keyed: HashMap<Vec<u8>, Decision>,
}

impl std::fmt::Debug for KeptAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptAnswers")
            .field("hour", &self.hour)
            .field("node", &self.node.len())
            .field("unconditional", &self.unconditional.len())
            .field("keyed", &self.keyed.len())
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
            self.keyed.clear();
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

    /// Any other question: kept under its action when the caller's
    /// policies for it are unconditional, under its action, resource and
    /// the context attributes they read when they read the context only
    /// through attributes (see the module docs), judged every time
    /// otherwise.
    pub(super) fn resource_answer(&self, q: Question<'_>) -> Decision {
        let bundle = self.bundle.load_full();
        let Some(slice) = bundle
            .slices
            .get(q.action)
            .map(|s| s.for_roles(&q.caller.principal.roles))
        else {
            return self.judge(&bundle, q);
        };
        // Judged under the very bundle whose slice was analysed (not a
        // newer one loaded meanwhile): the answer is reused for other
        // questions, so it must come from the policies it is kept under.
        if slice.unconditional {
            return kept_or_judged(
                &bundle,
                q,
                |k| &mut k.unconditional,
                || self.judge(&bundle, q),
            );
        }
        let Some(reads) = &slice.context_reads else {
            return self.judge(&bundle, q);
        };
        let key = keyed_question(q, reads);
        let mut kept = q.caller.answers.0.lock();
        kept.refresh(&bundle, q.hour);
        if let Some(known) = kept.keyed.get(&key) {
            return known.clone();
        }
        drop(kept);
        let decision = self.judge(&bundle, q);
        let mut kept = q.caller.answers.0.lock();
        kept.refresh(&bundle, q.hour);
        if kept.keyed.len() >= KEYED_CAP {
            kept.keyed.clear();
        }
        kept.keyed.insert(key, decision.clone());
        decision
    }
}

/// Everything the answer to `q` can depend on besides the caller, the
/// policies and the hour: the action, the resource whole, and the values of
/// the context attributes `reads` (what the policies can read).
fn keyed_question(q: Question<'_>, reads: &[String]) -> Vec<u8> {
    let mut key = Vec::with_capacity(128);
    key.extend_from_slice(&(q.action.len() as u32).to_be_bytes());
    key.extend_from_slice(q.action.as_bytes());
    request::resource_key(&mut key, q.resource);
    request::context_key(&mut key, q.circumstances, q.hour, reads);
    key
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

    /// Kept answers are the answers: for every shipped role, a grid of
    /// frame questions (contracts of the caller's and another
    /// organization, wallets; functions, arguments naming the caller's or
    /// another wallet, values under and over the caps, depths, the day's
    /// spend) is asked twice, the second time in reverse order, and each
    /// answer equals a fresh evaluation. A key that left out something a
    /// policy reads would hand one question another's answer.
    #[test]
    fn keyed_answers_equal_fresh_judgements() {
        use super::super::ArgValue;
        let (_dir, engine) = engine();
        let own = Address::repeat_byte(1);
        let other = Address::repeat_byte(2);
        let contract = |org: &str| {
            Resource::Account(AccountFacts {
                address: Address::repeat_byte(0xc0),
                is_contract: true,
                deployer: Some(other),
                deployer_org: org.into(),
            })
        };
        let resources = [contract("bank-a"), contract("bank-b"), account(7)];
        let mut frames = Vec::new();
        for function in [
            None,
            Some("transfer"),
            Some("transferFrom"),
            Some("balanceOf"),
            Some("mint"),
        ] {
            for holder in [own, other] {
                for (eth, spent_eth, depth) in [
                    (0, 0, 0),
                    (50, 0, 0),
                    (500, 0, 0),
                    (500, 0, 1),
                    (1, 2_000, 0),
                ] {
                    frames.push(Circumstances::Frame(FrameFacts {
                        kind: "call",
                        depth,
                        caller: own,
                        signer: own,
                        function: function.map(str::to_owned),
                        args: vec![
                            ("from".into(), ArgValue::Address(holder)),
                            ("amount".into(), ArgValue::Uint(U256::from(eth))),
                        ],
                        value: U256::from(eth) * U256::from(1_000_000_000_000_000_000u128),
                        spent_today_gwei: spent_eth * 1_000_000_000,
                        ..FrameFacts::default()
                    }));
                }
            }
        }
        let mut questions = Vec::new();
        for action in ["call", "read", "transfer", "view_account"] {
            for resource in &resources {
                for frame in &frames {
                    questions.push((action, resource, frame));
                }
                questions.push((action, resource, &Circumstances::Rpc));
            }
        }
        let mut kept_somewhere = false;
        for role in [
            "admin",
            "operator",
            "trader",
            "auditor",
            "service",
            "counterparty",
            "trader+auditor",
        ] {
            let who = caller(role);
            let mut allowed = 0;
            for (action, resource, circumstances) in questions.iter().chain(questions.iter().rev())
            {
                let kept = engine.decide(&who, action, resource, circumstances);
                let fresh = engine.dry_run(&who, action, resource, circumstances);
                assert_eq!(
                    kept, fresh,
                    "{role} {action} {resource:?} {circumstances:?}"
                );
                allowed += usize::from(kept.allowed);
            }
            assert!(
                allowed > 0 || role == "counterparty",
                "{role} was allowed nothing"
            );
            kept_somewhere |= !who.answers.0.lock().keyed.is_empty();
        }
        assert!(kept_somewhere, "no answer was kept by its key");
    }

    /// Keyed answers are bounded per caller.
    #[test]
    fn keyed_answers_are_bounded() {
        let (_dir, engine) = engine();
        let trader = caller("trader");
        for gwei in 0..(KEYED_CAP as u64 + 10) {
            let frame = Circumstances::Frame(FrameFacts {
                kind: "call",
                caller: Address::repeat_byte(1),
                signer: Address::repeat_byte(1),
                value: U256::from(gwei) * U256::from(1_000_000_000u64),
                ..FrameFacts::default()
            });
            engine.decide(&trader, "transfer", &account(7), &frame);
        }
        assert!(trader.answers.0.lock().keyed.len() <= KEYED_CAP);
    }
}
