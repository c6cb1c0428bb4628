//! Compliance queries: filters on indexed columns, keyset pagination by id.

use super::{resource_key, to_i64, AuditDb, EVENT_COLUMNS};
use crate::{event::Outcome, event::StoredEvent, AuditError};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

/// Largest page a query returns.
pub const MAX_PAGE: u32 = 1_000;

/// How a query matches one resource: its stored prefix through the index
/// of migration 0005, then the whole value on the row.
const RESOURCE_KEY_MATCH: &str = "resource_key = ?";
const RESOURCE_MATCH: &str = "resource = ?";

/// What to look for. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Exact actor id (`User:alice`).
    pub actor: Option<String>,
    /// Exact action, or a namespace ending in `.*` (`policy.*`).
    pub action: Option<String>,
    /// Outcome.
    pub outcome: Option<Outcome>,
    /// Exact resource.
    pub resource: Option<String>,
    /// Exact id of the policy rule that decided (`rpc.admin.admin`).
    pub rule: Option<String>,
    /// Earliest time (inclusive), µs since the epoch.
    pub from_us: Option<i64>,
    /// Latest time (exclusive), µs since the epoch.
    pub to_us: Option<i64>,
    /// Continue after this id (the previous page's `next`).
    pub after: Option<u64>,
    /// Only events below this id (an export pins it to its tree head).
    pub below: Option<u64>,
    /// Newest first.
    pub newest_first: bool,
    /// Page size (1..=[`MAX_PAGE`], default 100).
    pub limit: Option<u32>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Matching events.
    pub events: Vec<StoredEvent>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<u64>,
}

/// A filter as text, as it arrives in a query string or on a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterArgs {
    /// Exact actor id.
    pub actor: Option<String>,
    /// Action or `namespace.*`.
    pub action: Option<String>,
    /// `allow`, `deny` or `error`.
    pub outcome: Option<String>,
    /// Exact resource.
    pub resource: Option<String>,
    /// Exact rule id.
    pub rule: Option<String>,
    /// RFC 3339 time or date, inclusive.
    pub from: Option<String>,
    /// RFC 3339 time or date, exclusive.
    pub to: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub after: Option<u64>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
    /// Export format, `json` (lines) or `csv`; exports only.
    pub format: Option<String>,
}

impl FilterArgs {
    /// Parses into a [`Filter`], naming the first bad field.
    pub fn to_filter(&self) -> Result<Filter, AuditError> {
        let bad = |m: String| AuditError::Invalid(m);
        let outcome = self
            .outcome
            .as_deref()
            .map(|o| {
                Outcome::parse(o)
                    .ok_or_else(|| bad(format!("outcome {o:?}: use allow, deny or error")))
            })
            .transpose()?;
        let time = |v: &Option<String>, name: &str| {
            v.as_deref()
                .map(|t| crate::time::parse_bound(t).map_err(|e| bad(format!("{name}: {e}"))))
                .transpose()
        };
        let newest_first = match self.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => return Err(bad(format!("order {o:?}: use asc or desc"))),
        };
        Ok(Filter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            outcome,
            resource: self.resource.clone(),
            rule: self.rule.clone(),
            from_us: time(&self.from, "from")?,
            to_us: time(&self.to, "to")?,
            after: self.after,
            below: None,
            newest_first,
            limit: self.limit,
        })
    }
}

enum Arg {
    Text(String),
    Int(i64),
}

impl AuditDb {
    /// Id of the first event at or after `time_us`.
    async fn first_id_at(&self, time_us: i64) -> Result<Option<i64>, AuditError> {
        let row = sqlx::query(
            "SELECT id FROM audit_events WHERE time_us >= $1 ORDER BY time_us, id LIMIT 1",
        )
        .bind(time_us)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Runs `filter`.
    pub async fn query(&self, filter: &Filter) -> Result<Page, AuditError> {
        let limit = filter.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AuditError::Invalid(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut cond = |sql: &str, arg: Arg| {
            args.push(arg);
            conds.push(sql.replace('?', &format!("${}", args.len())));
        };
        // Sealed rows hold keyed hashes of actor and resource (rows written
        // before encryption was on are sealed when the node opens the log).
        let sealing = self.sealing.as_ref();
        if let Some(a) = &filter.actor {
            let stored = sealing.map_or_else(|| a.clone(), |s| s.blind_actor(a));
            cond("actor_id = ?", Arg::Text(stored));
        }
        match filter.action.as_deref().map(|a| (a, a.strip_suffix(".*"))) {
            Some((_, Some(ns))) => {
                // A range on the index instead of LIKE, whose use of the
                // index differs between databases and collations.
                cond("action >= ?", Arg::Text(format!("{ns}.")));
                cond("action < ?", Arg::Text(format!("{ns}/")));
            }
            Some((exact, None)) => cond("action = ?", Arg::Text(exact.to_owned())),
            None => {}
        }
        if let Some(o) = filter.outcome {
            cond("outcome = ?", Arg::Text(o.as_str().to_owned()));
        }
        if let Some(r) = &filter.resource {
            let stored = sealing.map_or_else(|| r.clone(), |s| s.blind_resource(r));
            cond(
                RESOURCE_KEY_MATCH,
                Arg::Text(resource_key(&stored).to_owned()),
            );
            cond(RESOURCE_MATCH, Arg::Text(stored));
        }
        if let Some(r) = &filter.rule {
            cond("rule_id = ?", Arg::Text(r.clone()));
        }
        // Times are non-decreasing in id order, so a time range is the id
        // range between two index probes; filtering on time and sorting by id
        // instead would sort the whole window.
        if let Some(t) = filter.from_us {
            match self.first_id_at(t).await? {
                Some(id) => cond("id >= ?", Arg::Int(id)),
                None => {
                    return Ok(Page {
                        events: Vec::new(),
                        next: None,
                    })
                }
            }
        }
        if let Some(t) = filter.to_us {
            if let Some(id) = self.first_id_at(t).await? {
                cond("id < ?", Arg::Int(id));
            }
        }
        if let Some(b) = filter.below {
            cond("id < ?", Arg::Int(to_i64(b)));
        }
        if let Some(after) = filter.after {
            let op = if filter.newest_first { "<" } else { ">" };
            cond(&format!("id {op} ?"), Arg::Int(to_i64(after)));
        }
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events");
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        // One more row than asked tells whether another page exists.
        sql.push_str(&format!(" ORDER BY id {order} LIMIT {}", limit + 1));
        // The text holds column names and placeholders only; values are bound.
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for a in args {
            q = match a {
                Arg::Text(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        let more = rows.len() > limit as usize;
        let events = rows
            .iter()
            .take(limit as usize)
            .map(|r| self.event_from_row(r).map(|(e, _)| e))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if more {
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok(Page { events, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compliance officer's lookup of one transaction must stay an index
    /// probe on a log of millions of submissions: SQLite's planner is asked
    /// how it runs the condition the query builds, in both page orders.
    #[tokio::test]
    async fn resource_lookups_probe_the_prefix_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let db = AuditDb::connect(&url).await.unwrap();
        for order in ["ASC", "DESC"] {
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT {EVENT_COLUMNS} FROM audit_events WHERE {} AND {} \
                 ORDER BY id {order} LIMIT 101",
                RESOURCE_KEY_MATCH.replace('?', "$1"),
                RESOURCE_MATCH.replace('?', "$2")
            );
            let resource = "tx:0x7a5c0de5eca1ed";
            let plan: Vec<String> = sqlx::query(AssertSqlSafe(sql))
                .bind(resource_key(resource))
                .bind(resource)
                .fetch_all(db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>(3).unwrap())
                .collect();
            assert!(
                plan.iter()
                    .any(|step| step.contains("USING INDEX audit_events_resource")),
                "{order}: {plan:?}"
            );
        }
    }
}
