//! Policy as code: Cedar policies from a directory, validated against the
//! checked-in schema, hot-reloadable, default deny, and a stable rule id on
//! every decision.

mod abi;
mod guard;
mod load;
mod request;

pub use abi::{AbiRegistry, ArgValue, Function};
pub use guard::{AccountDirectory, ExecMode, PolicyGuard};
pub use load::{load_dir, PolicyBundle, PolicyError, Problem, ABI_DIR, SCHEMA_FILE};
pub use request::{gwei_ceil, AccountFacts, Circumstances, FrameFacts, Resource, TxFacts};

use crate::principal::Caller;
use arc_swap::ArcSwap;
use cedar_policy::{Authorizer, Decision as CedarDecision, Entity, EntityUid, Request};
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
        let (resource_uid, resource_entity) = request::resource_entity(resource);
        let decision = self.evaluate(
            caller,
            action,
            &resource_uid,
            resource_entity,
            circumstances,
        );
        let recorded = self.sink.load().record(&DecisionEvent {
            principal: &caller.principal.key(),
            org: &caller.principal.org,
            action,
            resource: &resource_uid.to_string(),
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

    fn evaluate(
        &self,
        caller: &Caller,
        action: &str,
        resource_uid: &EntityUid,
        resource_entity: Option<Entity>,
        circumstances: &Circumstances,
    ) -> Decision {
        let principal = request::principal_entity(caller);
        let principal_uid = principal.uid();
        let bundle = self.bundle.load();
        let entities = match bundle
            .actions
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
            request::context(circumstances),
            None,
        ) {
            Ok(r) => r,
            Err(e) => return deny_with_error(e.to_string()),
        };
        let response = self
            .authorizer
            .is_authorized(&request, &bundle.set, &entities);
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

fn deny_with_error(e: String) -> Decision {
    Decision {
        allowed: false,
        rule: DEFAULT_DENY.to_owned(),
        errors: vec![e],
    }
}
