//! How high-volume item reads are audited: summarized per request, never
//! dropped.
//!
//! Filtering what a caller may see asks one policy question per transaction,
//! log or account shown (`view_tx`, `view_log`, `view_account`): one
//! eth_getLogs can ask ten thousand. Recording each as its own event let a
//! reader flood the audit queue. Instead, the item decisions of one request
//! are tallied by (action, outcome, rule) and recorded when the request ends
//! as one `policy.reads` event each, carrying the count, the first
//! [`LISTED`] resources and a SHA-256 over every resource in order: who read
//! what stays on record (the chain is immutable, so the request's method and
//! parameters re-run against the recorded block give the full list, and the
//! digest proves it is the same list).
//!
//! Fail closed is kept: the first decision of each kind takes a place in the
//! audit queue before it is allowed (a refused place turns the allow into a
//! deny, as for any decision); the summary is written into that place.

use access_control::policy::DecisionEvent;
use audit::{action, AuditEvent, Outcome, Reservation};
use parking_lot::Mutex;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Resources listed by name in one summary.
pub const LISTED: usize = 64;

/// Policy actions that ask about one item of a result.
pub fn is_item_read(action: &str) -> bool {
    matches!(action, "view_tx" | "view_log" | "view_account")
}

struct Entry {
    principal: String,
    org: String,
    count: u64,
    listed: Vec<String>,
    digest: Sha256,
    place: Reservation,
}

/// One request's item decisions.
#[derive(Default)]
pub struct ReadTally {
    entries: Mutex<HashMap<(String, bool, String), Entry>>,
    methods: Mutex<Vec<String>>,
}

impl std::fmt::Debug for ReadTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTally")
            .field("kinds", &self.entries.lock().len())
            .finish()
    }
}

impl ReadTally {
    /// Notes a method the request called (named in its summaries).
    pub fn method(&self, name: &str) {
        let mut m = self.methods.lock();
        if m.len() < 16 && !m.iter().any(|x| x == name) {
            m.push(name.to_owned());
        }
    }

    /// Counts one decision; the first of its kind reserves the place of its
    /// summary with `reserve` (an error there refuses the decision).
    pub fn add(
        &self,
        e: &DecisionEvent<'_>,
        reserve: impl FnOnce() -> Result<Reservation, String>,
    ) -> Result<(), String> {
        let mut entries = self.entries.lock();
        let key = (e.action.to_owned(), e.allowed, e.rule.to_owned());
        let entry = match entries.get_mut(&key) {
            Some(entry) => entry,
            None => {
                let place = reserve()?;
                entries.entry(key).or_insert(Entry {
                    principal: e.principal.to_owned(),
                    org: e.org.to_owned(),
                    count: 0,
                    listed: Vec::new(),
                    digest: Sha256::new(),
                    place,
                })
            }
        };
        entry.count += 1;
        entry.digest.update(e.resource.as_bytes());
        entry.digest.update(b"\n");
        if entry.listed.len() < LISTED {
            entry.listed.push(e.resource.to_owned());
        }
        Ok(())
    }

    /// Records the summaries into their reserved places.
    pub fn flush(&self) {
        let entries: Vec<_> = self.entries.lock().drain().collect();
        let methods = self.methods.lock().clone();
        for ((item, allowed, rule), e) in entries {
            let outcome = if allowed {
                Outcome::Allow
            } else {
                Outcome::Deny
            };
            let mut event = AuditEvent::new(
                audit::trail::actor_kind(&e.principal),
                &e.principal,
                action::POLICY_READS,
                outcome,
            )
            .organization(e.org)
            .rule(rule)
            .details(json!({
                "action": item,
                "count": e.count,
                "methods": methods,
                "resources": e.listed,
                "resources_sha256": hex::encode(e.digest.finalize()),
            }));
            crate::request::RequestContext::stamp_current(&mut event);
            if let Err(err) = e.place.record(event) {
                tracing::error!(error = %err, "read summary not recorded");
            }
        }
    }
}
