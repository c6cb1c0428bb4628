//! What one audit event says, and the exact bytes its Merkle leaf commits to.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person authenticated through the bank's IdP.
    User,
    /// A machine authenticated by API key.
    ApiKey,
    /// The appliance itself (key upkeep, pruning, settlement).
    System,
    /// An operator at the console (CLI commands run on the host).
    Operator,
    /// Nobody could be identified (failed authentication).
    Anonymous,
}

impl ActorKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiKey => "api_key",
            Self::System => "system",
            Self::Operator => "operator",
            Self::Anonymous => "anonymous",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "api_key" => Self::ApiKey,
            "system" => Self::System,
            "operator" => Self::Operator,
            "anonymous" => Self::Anonymous,
            _ => return None,
        })
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Permitted / succeeded.
    Allow,
    /// Refused (authentication failure or policy deny).
    Deny,
    /// Attempted but failed for a reason other than a refusal.
    Error,
}

impl Outcome {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Error => "error",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "allow" => Self::Allow,
            "deny" => Self::Deny,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Namespaced action names, so every emitter spells them the same way.
pub mod action {
    /// Bearer token or API key accepted.
    pub const AUTH_SUCCEEDED: &str = "auth.login.succeeded";
    /// Bearer token or API key refused.
    pub const AUTH_FAILED: &str = "auth.login.failed";
    /// A policy permitted.
    pub const POLICY_ALLOWED: &str = "policy.allowed";
    /// A policy refused.
    pub const POLICY_DENIED: &str = "policy.denied";
    /// One request's item reads (transactions, logs, accounts shown or
    /// withheld) of one kind, outcome and rule, summarized: count, first
    /// resources, digest of all.
    pub const POLICY_READS: &str = "policy.reads";
    /// A principal's requests were refused for exceeding its rate; one event
    /// per principal per interval, with the number refused.
    pub const RATE_LIMITED: &str = "rate.limited";
    /// A transaction entered the pool.
    pub const TX_SUBMITTED: &str = "tx.submitted";
    /// The policy set was reloaded.
    pub const POLICIES_RELOADED: &str = "admin.policies.reloaded";
    /// A policy reload was refused (invalid files).
    pub const POLICIES_REJECTED: &str = "admin.policies.rejected";
    /// An API key was created.
    pub const API_KEY_CREATED: &str = "admin.api_key.created";
    /// An API key was revoked.
    pub const API_KEY_REVOKED: &str = "admin.api_key.revoked";
    /// A selective disclosure (one fact with Merkle proofs) was issued.
    pub const DISCLOSURE_ISSUED: &str = "disclosure.issued";
    /// A wallet was bound to a principal.
    pub const WALLET_BOUND: &str = "admin.wallet.bound";
    /// A wallet binding was removed.
    pub const WALLET_UNBOUND: &str = "admin.wallet.unbound";
    /// The key provider unsealed the data keys.
    pub const KEYS_UNSEALED: &str = "key.unsealed";
    /// A new data-encryption key became current.
    pub const DEK_ROTATED: &str = "key.dek.rotated";
    /// The key-encryption key was rotated and data keys re-wrapped.
    pub const KEK_ROTATED: &str = "key.kek.rotated";
    /// Stored records were moved onto the current data key.
    pub const REENCRYPTED: &str = "key.reencrypt.completed";
    /// Data-key versions that no longer seal anything were retired.
    pub const DEKS_RETIRED: &str = "key.dek.retired";
    /// A proof left the appliance.
    pub const PROOF_EXPORTED: &str = "proof.exported";
    /// A commitment was sent to the settlement layer.
    pub const SETTLEMENT_SUBMITTED: &str = "settlement.submitted";
    /// The audit log was queried.
    pub const AUDIT_QUERIED: &str = "audit.queried";
    /// The audit log was exported.
    pub const AUDIT_EXPORTED: &str = "audit.exported";
    /// An inclusion or consistency proof was produced.
    pub const AUDIT_PROVED: &str = "audit.proved";
    /// The audit log was verified.
    pub const AUDIT_VERIFIED: &str = "audit.verified";
    /// Old events were pruned under the retention policy.
    pub const AUDIT_PRUNED: &str = "audit.pruned";
    /// A legal hold was placed.
    pub const HOLD_PLACED: &str = "audit.hold.placed";
    /// A legal hold was released.
    pub const HOLD_RELEASED: &str = "audit.hold.released";
    /// A backup of the data directory was taken.
    pub const BACKUP_TAKEN: &str = "admin.backup.taken";
    /// A data directory was restored from a backup.
    pub const BACKUP_RESTORED: &str = "admin.backup.restored";
}

/// Longest accepted text field; an event is evidence, not a payload store.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Longest accepted details document.
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;

/// One event as an emitter hands it in; the log assigns id and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Kind of actor.
    pub actor_type: ActorKind,
    /// Stable actor id (`User:alice`, `ApiKey:k_…`, `system`).
    pub actor_id: String,
    /// The actor's organization, when known.
    pub organization: Option<String>,
    /// Namespaced action (see [`action`]).
    pub action: String,
    /// What was acted on.
    pub resource: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The deciding policy rule, for decisions.
    pub rule_id: Option<String>,
    /// The request this happened in.
    pub request_id: Option<String>,
    /// Distributed trace id, when the caller sent one.
    pub trace_id: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
    /// Further structured facts (never calldata, amounts or balances).
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// An event with the required fields; the rest empty.
    pub fn new(actor_type: ActorKind, actor_id: &str, action: &str, outcome: Outcome) -> Self {
        Self {
            actor_type,
            actor_id: actor_id.to_owned(),
            organization: None,
            action: action.to_owned(),
            resource: None,
            outcome,
            rule_id: None,
            request_id: None,
            trace_id: None,
            source_ip: None,
            details: serde_json::Value::Null,
        }
    }

    /// An event by the appliance itself (key upkeep, retention, reloads).
    pub fn system(action: &str, outcome: Outcome) -> Self {
        Self::new(ActorKind::System, "system", action, outcome)
    }

    /// Sets the resource.
    pub fn resource(mut self, r: impl Into<String>) -> Self {
        self.resource = Some(r.into());
        self
    }

    /// Sets the organization.
    pub fn organization(mut self, o: impl Into<String>) -> Self {
        self.organization = Some(o.into());
        self
    }

    /// Sets the rule id.
    pub fn rule(mut self, r: impl Into<String>) -> Self {
        self.rule_id = Some(r.into());
        self
    }

    /// Sets the details document.
    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = d;
        self
    }

    /// Checks what the log would refuse to store.
    pub fn validate(&self) -> Result<(), String> {
        if !is_action_name(&self.action) {
            return Err(format!(
                "action {:?} is not a dotted lower-case name like policy.denied",
                self.action
            ));
        }
        let fields = [
            Some(&self.actor_id),
            self.organization.as_ref(),
            self.resource.as_ref(),
            self.rule_id.as_ref(),
            self.request_id.as_ref(),
            self.trace_id.as_ref(),
            self.source_ip.as_ref(),
        ];
        if fields.iter().flatten().any(|f| f.len() > MAX_FIELD_BYTES) {
            return Err(format!("a field exceeds {MAX_FIELD_BYTES} bytes"));
        }
        Ok(())
    }
}

fn is_action_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        && s.contains('.')
}

/// An event as stored: the log's id and time plus the details as the exact
/// text that was hashed (re-serializing JSON could reorder keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the log (the Merkle leaf index), from 0.
    pub id: u64,
    /// Microseconds since the Unix epoch.
    pub time_us: i64,
    /// Kind of actor (stored form).
    pub actor_type: String,
    /// Actor id.
    pub actor_id: String,
    /// Organization.
    pub organization: Option<String>,
    /// Namespaced action.
    pub action: String,
    /// Resource.
    pub resource: Option<String>,
    /// `allow`, `deny` or `error`.
    pub outcome: String,
    /// Deciding rule.
    pub rule_id: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
    /// Details, as the JSON text that was hashed.
    pub details: String,
}

impl StoredEvent {
    /// `event` as it will be stored, timed `time_us`; the log gives it its
    /// position (`id`) when it commits it. Serializing here keeps that work
    /// on the emitting thread, off the single writer.
    pub fn pending(event: AuditEvent, time_us: i64) -> Self {
        let mut details = serde_json::to_string(&event.details).unwrap_or_else(|_| "null".into());
        if details.len() > MAX_DETAILS_BYTES {
            details = serde_json::json!({ "truncated": true, "bytes": details.len() }).to_string();
        }
        Self {
            id: 0,
            time_us,
            actor_type: event.actor_type.as_str().to_owned(),
            actor_id: event.actor_id,
            organization: event.organization,
            action: event.action,
            resource: event.resource,
            outcome: event.outcome.as_str().to_owned(),
            rule_id: event.rule_id,
            request_id: event.request_id,
            trace_id: event.trace_id,
            source_ip: event.source_ip,
            details,
        }
    }

    /// The bytes the Merkle leaf commits to: every field, length-prefixed
    /// and in a fixed order, so no two different events encode alike.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.details.len());
        out.extend_from_slice(b"prividium-audit-event/1");
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.time_us.to_be_bytes());
        let text = [
            Some(&self.actor_type),
            Some(&self.actor_id),
            self.organization.as_ref(),
            Some(&self.action),
            self.resource.as_ref(),
            Some(&self.outcome),
            self.rule_id.as_ref(),
            self.request_id.as_ref(),
            self.trace_id.as_ref(),
            self.source_ip.as_ref(),
            Some(&self.details),
        ];
        for field in text {
            match field {
                None => out.push(0),
                Some(s) => {
                    out.push(1);
                    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        out
    }

    /// The Merkle leaf hash of this event.
    pub fn leaf_hash(&self) -> crate::merkle::Hash {
        crate::merkle::leaf_hash(&self.leaf_bytes())
    }

    /// RFC 3339 time.
    pub fn time_rfc3339(&self) -> String {
        crate::time::format_us(self.time_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_must_be_namespaced() {
        let ok = AuditEvent::new(ActorKind::User, "User:a", "policy.denied", Outcome::Deny);
        assert!(ok.validate().is_ok());
        for bad in [
            "denied",
            "Policy.Denied",
            "policy..x",
            "policy.",
            "a b.c",
            "",
        ] {
            let e = AuditEvent::new(ActorKind::User, "User:a", bad, Outcome::Deny);
            assert!(e.validate().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let mut base = StoredEvent::pending(
            AuditEvent::new(ActorKind::User, "User:a", "tx.submitted", Outcome::Allow)
                .resource("tx:0x01")
                .details(serde_json::json!({"wallet": "0xab"})),
            1_700_000_000_000_000,
        );
        base.id = 7;
        let h = base.leaf_hash();
        let mut variants = Vec::new();
        let mut e = base.clone();
        e.id = 8;
        variants.push(e);
        let mut e = base.clone();
        e.time_us += 1;
        variants.push(e);
        let mut e = base.clone();
        e.outcome = "deny".into();
        variants.push(e);
        let mut e = base.clone();
        e.resource = None;
        variants.push(e);
        let mut e = base.clone();
        e.organization = Some(String::new());
        variants.push(e);
        // Moving bytes between adjacent fields must not collide.
        let mut e = base.clone();
        e.actor_type = "use".into();
        e.actor_id = "rUser:a".into();
        variants.push(e);
        for v in variants {
            assert_ne!(v.leaf_hash(), h, "{v:?}");
        }
    }
}
