//! How a transaction submission is audited: one event, not five.
//!
//! Submitting a transaction asks the policies several questions: may the
//! caller call `eth_sendRawTransaction`, and may each call frame of the
//! transaction do what it does. Each allowed answer used to be its own
//! `policy.allowed` event next to the `tx.submitted` event, so one transfer
//! cost the single audit writer several sealed rows. Instead, while a
//! submission is being decided, its allowed decisions are folded into the
//! `tx.submitted` event (`details.allowed_by`: action, resource and rule of
//! each, in order). Nothing is lost: the submission's event names every
//! permit that let it through, under the same request id. Denials are never
//! folded: each stays its own `policy.denied` event.
//!
//! Fail closed is kept: the first folded decision takes a place in the audit
//! queue before it is allowed (a refused place turns the allow into a deny,
//! as for any decision), and the submission's event is written into that
//! place. A submission that ends without its event (bad input after the
//! method was allowed) has its folded decisions recorded as one
//! `policy.allowed` event when the request ends.

use access_control::policy::DecisionEvent;
use audit::{action, AuditEvent, Outcome, Reservation};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// Decisions listed in one event; more are counted.
pub const LISTED: usize = 32;

#[derive(Default)]
struct Folded {
    active: bool,
    principal: String,
    org: String,
    decisions: Vec<Value>,
    unlisted: u64,
    place: Option<Reservation>,
}

/// One request's folding of allowed decisions into its submission event.
#[derive(Default)]
pub struct DecisionFold(Mutex<Folded>);

impl std::fmt::Debug for DecisionFold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.0.lock();
        f.debug_struct("DecisionFold")
            .field("active", &g.active)
            .field("decisions", &g.decisions.len())
            .finish()
    }
}

/// What a submission's event carries from the fold.
pub struct Taken {
    /// The place reserved by the first folded decision.
    pub place: Option<Reservation>,
    /// `allowed_by` for the event's details.
    pub allowed_by: Value,
}

impl DecisionFold {
    /// Folds the allowed decisions made from now on (one submission).
    pub fn begin(&self) {
        let leftover = {
            let mut g = self.0.lock();
            let leftover = std::mem::take(&mut *g);
            g.active = true;
            leftover
        };
        record_leftover(leftover);
    }

    /// Takes `e` into the fold if it is an allowed decision while folding;
    /// `None` when the caller must record it as usual. The first decision
    /// reserves the event's place with `reserve`.
    pub fn add(
        &self,
        e: &DecisionEvent<'_>,
        reserve: impl FnOnce() -> Result<Reservation, String>,
    ) -> Option<Result<(), String>> {
        if !e.allowed {
            return None;
        }
        let mut g = self.0.lock();
        if !g.active {
            return None;
        }
        if g.place.is_none() {
            match reserve() {
                Ok(place) => g.place = Some(place),
                Err(why) => return Some(Err(why)),
            }
            g.principal = e.principal.to_owned();
            g.org = e.org.to_owned();
        }
        if g.decisions.len() < LISTED {
            // Built field by field: `json!` serializes each string through
            // serde, on every transaction's path.
            let mut d = serde_json::Map::new();
            d.insert("action".into(), Value::String(e.action.to_owned()));
            d.insert("resource".into(), Value::String(e.resource.to_owned()));
            d.insert("rule".into(), Value::String(e.rule.to_owned()));
            g.decisions.push(Value::Object(d));
        } else {
            g.unlisted += 1;
        }
        Some(Ok(()))
    }

    /// Ends the fold for the submission's own event.
    pub fn take(&self) -> Taken {
        let f = std::mem::take(&mut *self.0.lock());
        Taken {
            place: f.place,
            allowed_by: allowed_by(f.decisions, f.unlisted),
        }
    }

    /// At the end of the request: folded decisions no submission event
    /// took are recorded on their own.
    pub fn flush(&self) {
        record_leftover(std::mem::take(&mut *self.0.lock()));
    }
}

fn allowed_by(decisions: Vec<Value>, unlisted: u64) -> Value {
    if unlisted == 0 {
        Value::Array(decisions)
    } else {
        json!({ "listed": decisions, "unlisted": unlisted })
    }
}

fn record_leftover(f: Folded) {
    let Some(place) = f.place else {
        return;
    };
    let mut event = AuditEvent::new(
        audit::trail::actor_kind(&f.principal),
        &f.principal,
        action::POLICY_ALLOWED,
        Outcome::Allow,
    )
    .organization(f.org)
    .details(json!({ "decisions": allowed_by(f.decisions, f.unlisted) }));
    crate::request::RequestContext::stamp_current(&mut event);
    if let Err(err) = place.record(event) {
        tracing::error!(error = %err, "folded decisions not recorded");
    }
}
