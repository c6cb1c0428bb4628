//! What the front door knows about the request it is serving, and how that
//! reaches the audit trail: the request's ids on every event, its item reads
//! summarised ([`read_tally`]) and a submission's allowed decisions folded
//! into its one event ([`decision_fold`]).

pub mod decision_fold;
pub mod read_tally;

use access_control::{
    policy::{Caller, DecisionEvent, DecisionSink},
    Principal,
};
use audit::{action, trail::actor_kind, AuditEvent, Outcome, Trail};
use std::{collections::HashMap, sync::Arc};

/// Per-request facts every event of that request carries.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Random id, also returned to the client as `x-request-id`.
    pub request_id: String,
    /// From the W3C `traceparent` header, when sent.
    pub trace_id: Option<String>,
    /// Client address.
    pub source_ip: String,
    /// The request's item reads, recorded as summaries when it ends.
    pub reads: Arc<read_tally::ReadTally>,
    /// A submission's allowed decisions, folded into its event.
    pub fold: Arc<decision_fold::DecisionFold>,
}

tokio::task_local! {
    /// The request being served on this task.
    pub static REQUEST: RequestContext;
}

impl RequestContext {
    /// A fresh context for a request from `ip`.
    pub fn new(ip: std::net::IpAddr, traceparent: Option<&str>) -> Self {
        // traceparent = version-traceid-parentid-flags
        let trace_id = traceparent
            .and_then(|t| t.split('-').nth(1))
            .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned);
        Self {
            request_id: hex::encode(rand::random::<[u8; 12]>()),
            trace_id,
            source_ip: ip.to_string(),
            reads: Arc::default(),
            fold: Arc::default(),
        }
    }

    /// The current task's context, if it serves a request.
    pub fn current() -> Option<Self> {
        REQUEST.try_with(Clone::clone).ok()
    }

    /// Fills in `event`'s request id, trace id and client address from the
    /// request being served, where it has none. False outside a request
    /// (the node's own work). The [`audit::trail::Stamp`] the node's trail
    /// is opened with.
    pub fn stamp_current(event: &mut AuditEvent) -> bool {
        REQUEST
            .try_with(|ctx| {
                event
                    .request_id
                    .get_or_insert_with(|| ctx.request_id.clone());
                if event.trace_id.is_none() {
                    event.trace_id = ctx.trace_id.clone();
                }
                event.source_ip.get_or_insert_with(|| ctx.source_ip.clone());
            })
            .is_ok()
    }
}

/// An event by `principal`.
pub fn by(principal: &Principal, action: &str, outcome: Outcome) -> AuditEvent {
    by_key(&principal.key(), &principal.org, action, outcome)
}

/// An event by an authenticated caller, whose key is already formatted.
pub fn by_caller(caller: &Caller, action: &str, outcome: Outcome) -> AuditEvent {
    by_key(caller.key(), &caller.principal.org, action, outcome)
}

fn by_key(key: &str, org: &str, action: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent::new(actor_kind(key), key, action, outcome).organization(org)
}

/// Routes policy decisions into the trail: a request's item reads into its
/// tally, a submission's allows into its fold, everything else as its own
/// event.
pub struct TrailSink {
    trail: Trail,
    counters: DecisionCounters,
}

impl TrailSink {
    /// A sink writing into `trail`.
    pub fn new(trail: Trail) -> Self {
        Self {
            trail,
            counters: DecisionCounters::default(),
        }
    }
}

/// Rule ids a decision counter is kept for; further ones (only a policy
/// set reloaded many times with new ids gets here) count under `other`.
const COUNTED_RULES: usize = 1_024;

/// `prividium_policy_decisions_total` by outcome and rule, registered once
/// per rule: a decision is a map lookup and an atomic add, not a label
/// string and a registry search (several per transaction on the submit path).
#[derive(Default)]
struct DecisionCounters {
    /// Denials, then allows.
    by_outcome: [parking_lot::RwLock<HashMap<Box<str>, metrics::Counter>>; 2],
}

impl DecisionCounters {
    fn count(&self, allowed: bool, rule: &str) {
        let map = &self.by_outcome[usize::from(allowed)];
        let hit = map.read().get(rule).cloned();
        let counter = hit.unwrap_or_else(|| {
            let mut map = map.write();
            let rule = if map.len() < COUNTED_RULES {
                rule
            } else {
                "other"
            };
            map.entry(rule.into())
                .or_insert_with(|| {
                    metrics::counter!(
                        "prividium_policy_decisions_total",
                        "outcome" => if allowed { "allow" } else { "deny" },
                        "rule" => rule.to_owned(),
                    )
                })
                .clone()
        });
        counter.increment(1);
    }
}

impl DecisionSink for TrailSink {
    fn record(&self, e: &DecisionEvent<'_>) -> Result<(), String> {
        // Rule ids come from the bank's policy files: a bounded set.
        self.counters.count(e.allowed, e.rule);
        // By reference: a clone of the context per decision cost several
        // allocations on every transaction's path.
        let routed = REQUEST.try_with(|ctx| {
            let reserve = || self.trail.reserve(e.principal).map_err(|e| e.to_string());
            if read_tally::is_item_read(e.action) {
                return Some(ctx.reads.add(e, reserve));
            }
            ctx.fold.add(e, reserve)
        });
        if let Ok(Some(result)) = routed {
            return result;
        }
        let (name, outcome) = if e.allowed {
            (action::POLICY_ALLOWED, Outcome::Allow)
        } else {
            (action::POLICY_DENIED, Outcome::Deny)
        };
        let event = AuditEvent::new(actor_kind(e.principal), e.principal, name, outcome)
            .organization(e.org)
            .resource(e.resource)
            .rule(e.rule)
            .details(serde_json::json!({ "action": e.action }));
        self.trail.record(event).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_traceparent_only_when_well_formed() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let ok = RequestContext::new(
            ip,
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            ok.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(RequestContext::new(ip, Some("00-<script>-x-01"))
            .trace_id
            .is_none());
        assert_ne!(RequestContext::new(ip, None).request_id, ok.request_id);
    }

    #[tokio::test]
    async fn events_recorded_while_serving_carry_the_request_ids() {
        let ip = std::net::IpAddr::from([10, 1, 2, 3]);
        let ctx = RequestContext::new(
            ip,
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let id = ctx.request_id.clone();
        let mut outside = AuditEvent::system(action::POLICY_ALLOWED, Outcome::Allow);
        assert!(!RequestContext::stamp_current(&mut outside));
        assert!(outside.request_id.is_none());
        let inside = REQUEST
            .scope(ctx, async {
                let mut e = AuditEvent::system(action::POLICY_ALLOWED, Outcome::Allow);
                assert!(RequestContext::stamp_current(&mut e));
                e
            })
            .await;
        assert_eq!(inside.request_id.as_deref(), Some(id.as_str()));
        assert_eq!(inside.source_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(
            inside.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
