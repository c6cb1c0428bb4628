//! Audit events about access itself: policy reloads (from any trigger) and
//! rate-limit refusals.

use crate::request::by;
use access_control::policy::{PolicyError, ReloadReport};
use audit::{action, trail::actor_kind, AuditEvent, Outcome, Trail};
use serde_json::json;

/// Logs a policy reload (or its rejection) and records it in the audit
/// trail: the one place every trigger (file change, SIGHUP, RPC) reports to.
pub fn record_reload(
    trail: &Trail,
    who: Option<&access_control::Principal>,
    trigger: &str,
    result: &Result<ReloadReport, PolicyError>,
) {
    let name_of = who.map(|p| p.key()).unwrap_or_else(|| "system".into());
    let (name, outcome, details) = match result {
        Ok(r) => {
            tracing::info!(trigger, by = %name_of, rules = r.rules, digest = %r.digest, changed = r.changed, "policies reloaded");
            (
                action::POLICIES_RELOADED,
                Outcome::Allow,
                json!({ "trigger": trigger, "rules": r.rules, "digest": r.digest, "changed": r.changed }),
            )
        }
        Err(e) => {
            tracing::error!(trigger, by = %name_of, error = %e, "policy reload rejected; previous policies stay in force");
            (
                action::POLICIES_REJECTED,
                Outcome::Error,
                json!({ "trigger": trigger, "problems": e.to_string() }),
            )
        }
    };
    let event = match who {
        Some(p) => by(p, name, outcome),
        None => AuditEvent::system(name, outcome),
    };
    let _ = trail.record(event.resource("policies").details(details));
}

/// Records that `r.principal` was refused `r.refused` requests for its rate
/// since the last such event.
pub fn record_rate_report(trail: &Trail, r: &access_control::rate::RefusalReport) {
    let kind = if r.principal.starts_with("anonymous:") {
        audit::ActorKind::Anonymous
    } else {
        actor_kind(&r.principal)
    };
    let event = AuditEvent::new(kind, &r.principal, action::RATE_LIMITED, Outcome::Deny)
        .organization(r.org.clone())
        .rule("rate-limit")
        .details(json!({ "refused": r.refused }));
    // Into the node's lane, whose reserve the requesters' share cannot
    // fill: a flood cannot hide itself.
    if let Err(e) = trail.record_node_lane(event) {
        tracing::error!(error = %e, principal = %r.principal, refused = r.refused, "rate-limit summary not recorded");
    }
}
