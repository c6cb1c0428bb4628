//! Policy as code: Cedar policies from a directory, validated against the
//! checked-in schema, hot-reloadable, default deny, and a stable rule id on
//! every decision.

mod abi;
mod caller;
mod error;
mod guard;
mod kept;
mod load;
mod reads;
mod request;
mod slice;
#[cfg(test)]
mod test_support;

pub use abi::{AbiRegistry, ArgValue, Function};
pub use caller::Caller;
pub use error::{PolicyError, Problem};
pub use guard::{AccountDirectory, ExecMode, PolicyGuard};
pub use kept::KeptAnswers;
pub use load::{load_dir, PolicyBundle, ABI_DIR, SCHEMA_FILE};
pub use request::{gwei_ceil, AccountFacts, Circumstances, FrameFacts, Resource, TxFacts};
pub use slice::{ActionSlice, RoleSlice};

use arc_swap::ArcSwap;
use cedar_policy::{
    Authorizer, Decision as CedarDecision, Entities, Entity, EntityUid, PolicySet, Request,
};
use parking_lot::Mutex;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

/// Rule id reported when no policy permits (and none forbids).
pub const DEFAULT_DENY: &str = "default-deny";

/// The outcome of one authorization question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or denied.
    pub allowed: bool,
    /// The deciding rule: the forbid that fired, the first permit that
    /// matched, or `default-deny`.
    pub rule: String,
    /// Policy evaluation errors (a policy that errors does not apply).
    pub errors: Vec<String>,
}

/// One decision as handed to the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct DecisionEvent<'a> {
    /// `User:alice`, `ApiKey:k_…`.
    pub principal: &'a str,
    /// Organization of the principal.
    pub org: &'a str,
    /// Action name.
    pub action: &'a str,
    /// Resource, as a Cedar uid.
    pub resource: &'a str,
    /// Outcome.
    pub allowed: bool,
    /// Deciding rule id.
    pub rule: &'a str,
}

/// Rule id reported when a permit was overturned because the decision could
/// not be recorded: nothing is allowed unaudited.
pub const AUDIT_UNAVAILABLE: &str = "audit-unavailable";

/// Where decisions are reported (the audit log).
pub trait DecisionSink: Send + Sync {
    /// Records one decision; must not block. An error turns an allow into a
    /// deny with rule [`AUDIT_UNAVAILABLE`].
    fn record(&self, event: &DecisionEvent<'_>) -> Result<(), String>;
}

/// Reports decisions as `tracing` events (target `decision`).
#[derive(Debug, Default)]
pub struct TracingSink;

impl DecisionSink for TracingSink {
    fn record(&self, e: &DecisionEvent<'_>) -> Result<(), String> {
        if e.allowed {
            tracing::debug!(target: "decision", principal = e.principal, action = e.action, resource = e.resource, rule = e.rule, "allow");
        } else {
            tracing::info!(target: "decision", principal = e.principal, action = e.action, resource = e.resource, rule = e.rule, "deny");
        }
        Ok(())
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Number of rules now active.
    pub rules: usize,
    /// Digest of the active policy files.
    pub digest: String,
    /// False when nothing changed.
    pub changed: bool,
}

/// The active policy set and the authorizer.
pub struct PolicyEngine {
    dir: PathBuf,
    bundle: ArcSwap<PolicyBundle>,
    authorizer: Authorizer,
    sink: ArcSwap<Box<dyn DecisionSink>>,
    seen: Mutex<Option<SystemTime>>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("dir", &self.dir)
            .field("digest", &self.bundle.load().digest)
            .finish_non_exhaustive()
    }
}

/// Newest modification time of anything in the directory tree (one level of
/// sub-directories, which is all a policy directory has).
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    let mut visit = |p: &Path| {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(t));
            }
        }
    };
    visit(dir);
    visit(&dir.join(ABI_DIR));
    newest
}

impl PolicyEngine {
    /// Loads `dir`; fails with every problem found.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        let seen = newest_mtime(dir);
        let bundle = load_dir(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            bundle: ArcSwap::from_pointee(bundle),
            authorizer: Authorizer::new(),
            sink: ArcSwap::from_pointee(Box::new(TracingSink)),
            seen: Mutex::new(seen),
        })
    }

    /// Directory the policies come from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Routes decision events to `sink` from now on.
    pub fn set_sink(&self, sink: Box<dyn DecisionSink>) {
        self.sink.store(Arc::new(sink));
    }

    /// The active bundle.
    pub fn bundle(&self) -> Arc<PolicyBundle> {
        self.bundle.load_full()
    }

    /// Re-reads the directory. An invalid directory leaves the active
    /// policies in force and returns the problems.
    pub fn reload(&self) -> Result<ReloadReport, PolicyError> {
        let mut seen = self.seen.lock();
        let mtime = newest_mtime(&self.dir);
        let bundle = load_dir(&self.dir)?;
        *seen = mtime;
        let changed = bundle.digest != self.bundle.load().digest;
        let report = ReloadReport {
            rules: bundle.origins.len(),
            digest: bundle.digest.clone(),
            changed,
        };
        if changed {
            self.bundle.store(Arc::new(bundle));
        }
        Ok(report)
    }

    /// Reloads when a file in the directory changed since the last load.
    pub fn reload_if_changed(&self) -> Option<Result<ReloadReport, PolicyError>> {
        let mtime = newest_mtime(&self.dir);
        if *self.seen.lock() == mtime {
            return None;
        }
        let result = self.reload();
        if result.is_err() {
            // Don't re-report the same broken files every poll.
            *self.seen.lock() = mtime;
        }
        Some(result)
    }

    /// Decides whether `caller` may do `action` on `resource`.
    pub fn decide(
        &self,
        caller: &Caller,
        action: &str,
        resource: &Resource,
        circumstances: &Circumstances,
    ) -> Decision {
        let q = Question::now(caller, action, resource, circumstances);
        let decision = match (resource, circumstances) {
            (Resource::Node, Circumstances::Rpc) => self.node_answer(q),
            _ => self.resource_answer(q),
        };
        // Written directly: a Cedar uid built and printed for it cost more
        // than a kept answer.
        let resource_name = request::resource_name(resource);
        let recorded = self.sink.load().record(&DecisionEvent {
            principal: caller.key(),
            org: &caller.principal.org,
            action,
            resource: &resource_name,
            allowed: decision.allowed,
            rule: &decision.rule,
        });
        match recorded {
            Err(why) if decision.allowed => Decision {
                allowed: false,
                rule: AUDIT_UNAVAILABLE.to_owned(),
                errors: vec![why],
            },
            _ => decision,
        }
    }

    /// What `decide` would answer, without recording a decision: the admin
    /// dry-run (`prividium policies explain`, the console), whose own
    /// request is what the trail records.
    pub fn dry_run(
        &self,
        caller: &Caller,
        action: &str,
        resource: &Resource,
        circumstances: &Circumstances,
    ) -> Decision {
        let q = Question::now(caller, action, resource, circumstances);
        self.judge(&self.bundle.load(), q)
    }

    /// The decision under `bundle`. The caller loads the bundle once, so
    /// whatever it keeps of the answer is keyed by the policies that gave
    /// it.
    fn judge(&self, bundle: &PolicyBundle, q: Question<'_>) -> Decision {
        let (resource_uid, resource_entity) = request::resource_entity(q.resource);
        self.evaluate(bundle, q, &resource_uid, resource_entity)
    }

    fn evaluate(
        &self,
        bundle: &PolicyBundle,
        q: Question<'_>,
        resource_uid: &EntityUid,
        resource_entity: Option<Entity>,
    ) -> Decision {
        // An action the schema does not know still gets a decision (from
        // the policies that name no action): the whole set.
        let sliced;
        let (set, actions) = match bundle.slices.get(q.action) {
            Some(s) => {
                sliced = s.for_roles(&q.caller.principal.roles);
                (&sliced.set, &s.entities)
            }
            None => (&bundle.set, &bundle.actions),
        };
        self.evaluate_against(set, actions, q, resource_uid, resource_entity)
    }

    fn evaluate_against(
        &self,
        set: &PolicySet,
        actions: &Entities,
        q: Question<'_>,
        resource_uid: &EntityUid,
        resource_entity: Option<Entity>,
    ) -> Decision {
        let Question {
            caller,
            action,
            circumstances,
            hour,
            ..
        } = q;
        let principal = caller
            .entity(|c| request::principal_entity(&c.principal, &c.wallets))
            .clone();
        let principal_uid = principal.uid();
        let entities = match actions
            .clone()
            .add_entities(std::iter::once(principal).chain(resource_entity), None)
        {
            Ok(e) => e,
            Err(e) => return deny_with_error(e.to_string()),
        };
        let request = match Request::new(
            principal_uid,
            request::uid("Action", action),
            resource_uid.clone(),
            request::context(circumstances, hour),
            None,
        ) {
            Ok(r) => r,
            Err(e) => return deny_with_error(e.to_string()),
        };
        let response = self.authorizer.is_authorized(&request, set, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(|e| e.to_string()).collect();
        // Several policies may agree; report the alphabetically first so the
        // id is stable across runs.
        let rule = diagnostics
            .reason()
            .map(|id| id.to_string())
            .min()
            .unwrap_or_else(|| DEFAULT_DENY.to_owned());
        Decision {
            allowed: response.decision() == CedarDecision::Allow,
            rule,
            errors,
        }
    }
}

/// One question to the policies: who asks to do what, to which resource,
/// in which circumstances, at which hour (UTC).
#[derive(Clone, Copy)]
struct Question<'a> {
    caller: &'a Caller,
    action: &'a str,
    resource: &'a Resource,
    circumstances: &'a Circumstances,
    hour: u64,
}

impl<'a> Question<'a> {
    /// The question asked now (policies may depend on the hour).
    fn now(
        caller: &'a Caller,
        action: &'a str,
        resource: &'a Resource,
        circumstances: &'a Circumstances,
    ) -> Self {
        Self {
            caller,
            action,
            resource,
            circumstances,
            hour: request::hour_utc(),
        }
    }
}

fn deny_with_error(e: String) -> Decision {
    Decision {
        allowed: false,
        rule: DEFAULT_DENY.to_owned(),
        errors: vec![e],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, U256};
    use test_support::caller;

    /// Slicing by action must change nothing: every (role, action) decides
    /// the same, with the same rule and errors, as over the whole set.
    #[test]
    fn sliced_decisions_match_the_whole_set() {
        let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("../policies");
        let engine = PolicyEngine::load(&dir).unwrap();
        let bundle = engine.bundle();
        let contract = Resource::Account(AccountFacts {
            address: Address::repeat_byte(7),
            is_contract: true,
            deployer: Some(Address::repeat_byte(2)),
            deployer_org: "bank-b".into(),
        });
        let frame = |value: u64, function: &str| {
            Circumstances::Frame(FrameFacts {
                kind: "call",
                caller: Address::repeat_byte(1),
                signer: Address::repeat_byte(1),
                function: Some(function.into()),
                value: U256::from(value) * U256::from(1_000_000_000_000_000_000u128),
                ..FrameFacts::default()
            })
        };
        let log = Circumstances::Log {
            topic0: None,
            addresses: vec![Address::repeat_byte(1)],
        };
        let mut questions: Vec<(String, Resource, Circumstances)> = bundle
            .slices
            .keys()
            .map(|a| (a.clone(), Resource::Node, Circumstances::Rpc))
            .collect();
        for (value, function) in [(0, "transfer"), (0, "mint"), (500, "transfer")] {
            for action in ["call", "read", "transfer"] {
                questions.push((action.into(), contract.clone(), frame(value, function)));
            }
            questions.push(("deploy".into(), Resource::Node, frame(value, function)));
        }
        questions.push(("view_log".into(), contract.clone(), log));
        questions.push(("no_such_action".into(), Resource::Node, Circumstances::Rpc));
        let roles = [
            "admin",
            "operator",
            "trader",
            "auditor",
            "compliance",
            "counterparty",
            "service",
            "nobody",
            "trader+auditor",
        ];
        let mut allowed = 0;
        for role in roles {
            let c = caller(role);
            for (action, resource, circumstances) in &questions {
                let (uid, entity) = request::resource_entity(resource);
                let q = Question {
                    caller: &c,
                    action,
                    resource,
                    circumstances,
                    hour: 9,
                };
                let sliced = engine.evaluate(&bundle, q, &uid, entity.clone());
                let whole = engine.evaluate_against(&bundle.set, &bundle.actions, q, &uid, entity);
                assert_eq!(sliced, whole, "{role} {action}");
                allowed += usize::from(sliced.allowed);
            }
        }
        // The questions are not trivially all-deny (or all-allow).
        let denied = roles.len() * questions.len() - allowed;
        assert!(
            allowed > 20 && denied > 20,
            "{allowed} allowed, {denied} denied"
        );
    }

    /// A caller's kept answer to "may I send transactions" must not outlive
    /// the policy that gave it: revoking the permit takes effect on the
    /// very next request of the same caller, and every asking is recorded.
    #[test]
    fn kept_node_answers_end_with_the_policy_that_gave_them() {
        let dir = test_support::shipped_policies_copy();
        let engine = PolicyEngine::load(dir.path()).unwrap();
        let recorded = test_support::Counting::on(&engine);
        let trader = caller("trader");
        let send = |c: &Caller| {
            engine
                .decide(
                    c,
                    "eth_sendRawTransaction",
                    &Resource::Node,
                    &Circumstances::Rpc,
                )
                .allowed
        };
        assert!(send(&trader));
        assert!(send(&trader.clone()), "the kept answer is the same");

        test_support::add_policy(
            &engine,
            dir.path(),
            "@id(\"freeze.sends\")\nforbid (principal, action == Prividium::Action::\"eth_sendRawTransaction\", resource);",
        );
        let d = engine.decide(
            &trader,
            "eth_sendRawTransaction",
            &Resource::Node,
            &Circumstances::Rpc,
        );
        assert!(!d.allowed);
        assert_eq!(d.rule, "freeze.sends");
        assert_eq!(
            recorded.load(std::sync::atomic::Ordering::Relaxed),
            3,
            "each asking is recorded"
        );
    }
}
