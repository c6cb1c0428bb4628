//! Export formats. Each exported event carries its leaf hash, and the export
//! names the signed head it is consistent with, so a recipient can ask for
//! (or be given) inclusion proofs without trusting the exporter.

use crate::{event::StoredEvent, head::TreeHead};
use serde_json::json;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document per line; the last line is the tree head.
    JsonLines,
    /// RFC 4180 CSV with a header row (the head goes to a side file).
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" | "jsonl" => Ok(Self::JsonLines),
            "csv" => Ok(Self::Csv),
            other => Err(format!("unknown format {other:?} (json or csv)")),
        }
    }
}

impl Format {
    /// The line an export starts with, if the format has one.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Self::Csv => Some(CSV_HEADER),
            Self::JsonLines => None,
        }
    }

    /// One event as one line of this format (no newline).
    pub fn line(self, e: &StoredEvent) -> String {
        match self {
            Self::Csv => event_csv(e),
            Self::JsonLines => event_json(e).to_string(),
        }
    }
}

/// CSV header row.
pub const CSV_HEADER: &str = "id,time,actor_type,actor_id,organization,action,resource,outcome,rule_id,request_id,trace_id,source_ip,details,leaf_hash";

/// An event as a JSON document (times as RFC 3339, details parsed back).
pub fn event_json(e: &StoredEvent) -> serde_json::Value {
    json!({
        "id": e.id,
        "time": e.time_rfc3339(),
        "time_us": e.time_us,
        "actor_type": e.actor_type,
        "actor_id": e.actor_id,
        "organization": e.organization,
        "action": e.action,
        "resource": e.resource,
        "outcome": e.outcome,
        "rule_id": e.rule_id,
        "request_id": e.request_id,
        "trace_id": e.trace_id,
        "source_ip": e.source_ip,
        // The exact hashed text, so the leaf can be recomputed.
        "details": e.details,
        "leaf_hash": hex::encode(e.leaf_hash()),
    })
}

/// An event as one CSV record (no trailing newline).
pub fn event_csv(e: &StoredEvent) -> String {
    let time = e.time_rfc3339();
    let id = e.id.to_string();
    let leaf = hex::encode(e.leaf_hash());
    let fields: [&str; 14] = [
        &id,
        &time,
        &e.actor_type,
        &e.actor_id,
        e.organization.as_deref().unwrap_or(""),
        &e.action,
        e.resource.as_deref().unwrap_or(""),
        &e.outcome,
        e.rule_id.as_deref().unwrap_or(""),
        e.request_id.as_deref().unwrap_or(""),
        e.trace_id.as_deref().unwrap_or(""),
        e.source_ip.as_deref().unwrap_or(""),
        &e.details,
        &leaf,
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// The trailer line of a JSON-lines export.
pub fn head_json(head: &TreeHead, public_key_hex: &str) -> serde_json::Value {
    json!({ "tree_head": head, "public_key": public_key_hex })
}

fn csv_field(f: &str) -> String {
    // Leading formula characters are neutralised: exports are opened in
    // spreadsheets, and an actor id must not run as a formula there.
    let f = if f.starts_with(['=', '+', '-', '@']) {
        format!("'{f}")
    } else {
        f.to_owned()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActorKind, AuditEvent, Outcome};

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut e = StoredEvent::pending(
            AuditEvent::new(
                ActorKind::User,
                "=HYPERLINK(\"x\")",
                "auth.login.failed",
                Outcome::Deny,
            )
            .details(json!({"why": "a, b"})),
            0,
        );
        e.id = 3;
        let line = event_csv(&e);
        assert!(
            line.starts_with(
                "3,1970-01-01T00:00:00Z,user,\"'=HYPERLINK(\"\"x\"\")\",,auth.login.failed,"
            ),
            "{line}"
        );
        assert!(line.contains("\"{\"\"why\"\":\"\"a, b\"\"}\""), "{line}");
        assert_eq!(event_json(&e)["leaf_hash"], hex::encode(e.leaf_hash()));
    }
}
