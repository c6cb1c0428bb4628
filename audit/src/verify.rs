//! End-to-end verification: every stored event re-hashed, the ids gap-free,
//! every stored tree head re-derived, and the latest head's signature checked
//! under the appliance's public key (and against the head witnessed outside
//! the database). The first problem is named.

use crate::{
    head::TreeHead,
    merkle::{Frontier, Hash},
    store::AuditDb,
    AuditError,
};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

const PAGE: u32 = 5_000;

/// What verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The first bad event, when one can be named.
    pub event: Option<u64>,
    /// What is wrong.
    pub problem: String,
}

/// The result of verifying the log.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Events re-hashed.
    pub events_checked: u64,
    /// Tree heads re-derived.
    pub heads_checked: u64,
    /// First event still stored (earlier ones were pruned).
    pub starts_at: u64,
    /// The head everything was checked against.
    pub latest: Option<TreeHead>,
    /// The first problem; `None` when the log is intact.
    pub finding: Option<Finding>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.finding.is_none()
    }
}

fn found(event: Option<u64>, problem: String) -> Option<Finding> {
    Some(Finding { event, problem })
}

/// Verifies the whole log under `key`; `witness` is the head the appliance
/// kept outside the database, if any.
pub async fn verify_log(
    db: &AuditDb,
    key: &VerifyingKey,
    witness: Option<&TreeHead>,
) -> Result<VerifyReport, AuditError> {
    let latest = db.latest_head().await?;
    let mut report = VerifyReport {
        events_checked: 0,
        heads_checked: 0,
        starts_at: 0,
        latest: latest.clone(),
        finding: None,
    };
    let state = match db.state().await {
        Ok(s) => s,
        Err(AuditError::Corrupt(why)) => {
            report.finding = found(None, why);
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.starts_at = state.checkpoint.size();
    report.finding = check(
        db,
        key,
        witness,
        state.checkpoint,
        latest.as_ref(),
        &mut report,
    )
    .await?;
    if report.finding.is_none() && state.tree_size != report.starts_at + report.events_checked {
        report.finding = found(
            None,
            format!(
                "the writer's state records {} events but {} are stored",
                state.tree_size,
                report.starts_at + report.events_checked
            ),
        );
    }
    Ok(report)
}

async fn check(
    db: &AuditDb,
    key: &VerifyingKey,
    witness: Option<&TreeHead>,
    checkpoint: Frontier,
    latest: Option<&TreeHead>,
    report: &mut VerifyReport,
) -> Result<Option<Finding>, AuditError> {
    let signed_size = match latest {
        Some(h) if !h.verify(key) => {
            return Ok(found(
                None,
                format!(
                    "the latest tree head (size {}) is not signed by key {}",
                    h.tree_size,
                    crate::head::key_id(key)
                ),
            ))
        }
        Some(h) => h.tree_size,
        None => 0,
    };
    if let Some(w) = witness {
        if !w.verify(key) {
            return Ok(found(
                None,
                "the witnessed head's signature is invalid".into(),
            ));
        }
        if w.tree_size > signed_size {
            return Ok(found(
                Some(signed_size),
                format!(
                    "the log was truncated: the appliance signed a head of {} events but the database's latest head covers {signed_size}",
                    w.tree_size
                ),
            ));
        }
    }
    let start = checkpoint.size();
    if start > 0 {
        let head = db.head_at(start).await?;
        match head {
            Some(h) if h.verify(key) && h.root == checkpoint.root() => {}
            _ => {
                return Ok(found(
                    Some(start),
                    format!("the prune checkpoint at {start} does not match a signed head"),
                ))
            }
        }
    }
    let mut frontier = checkpoint;
    let mut heads = HeadCursor::new(start);
    let mut last_good_head = start;
    loop {
        // A row that contradicts itself (sealed fields that do not open, a
        // lookup column that does not match) is reported after the rows
        // before it are checked, so the first bad event is the one named.
        let (page, unopened) = match db.events_from(frontier.size(), PAGE).await {
            Ok(page) => (page, None),
            Err(AuditError::BadRow { event, reason }) => {
                let page = db.events_between(frontier.size(), event).await?;
                (page, Some((event, reason)))
            }
            Err(e) => return Err(e),
        };
        if page.is_empty() && unopened.is_none() {
            break;
        }
        for (event, stored_leaf) in page {
            let expected = frontier.size();
            if event.id != expected {
                return Ok(found(
                    Some(expected),
                    format!("event {expected} is missing (deleted)"),
                ));
            }
            if expected >= signed_size {
                return Ok(found(
                    Some(expected),
                    format!(
                        "event {expected} and later are not covered by any signed head (inserted)"
                    ),
                ));
            }
            let leaf = event.leaf_hash();
            if leaf != stored_leaf {
                return Ok(found(
                    Some(expected),
                    format!("event {expected} was altered (its contents no longer hash to the stored leaf)"),
                ));
            }
            frontier.push(leaf);
            report.events_checked += 1;
            if let Some(bad) = heads
                .check(db, key, &frontier, &mut last_good_head, report)
                .await?
            {
                return Ok(Some(bad));
            }
        }
        if let Some((event, reason)) = unopened {
            return Ok(found(Some(event), format!("event {event}: {reason}")));
        }
    }
    let size = frontier.size();
    if size < signed_size {
        return Ok(found(
            Some(size),
            format!("events {size}..{signed_size} are missing (deleted from the end of the log)"),
        ));
    }
    if let Some(w) = witness {
        let head = db.head_at(w.tree_size).await?;
        if w.tree_size > start && head.as_ref().map(|h| h.root) != Some(w.root) {
            return Ok(found(
                None,
                format!(
                    "the log at size {} differs from the witnessed head",
                    w.tree_size
                ),
            ));
        }
    }
    Ok(None)
}

/// Walks the stored heads in step with the events.
struct HeadCursor {
    buf: std::collections::VecDeque<TreeHead>,
    next_from: u64,
}

impl HeadCursor {
    fn new(start: u64) -> Self {
        Self {
            buf: Default::default(),
            next_from: start + 1,
        }
    }

    async fn check(
        &mut self,
        db: &AuditDb,
        key: &VerifyingKey,
        frontier: &Frontier,
        last_good: &mut u64,
        report: &mut VerifyReport,
    ) -> Result<Option<Finding>, AuditError> {
        let size = frontier.size();
        if self.buf.is_empty() && self.next_from <= size {
            let page = db.heads_from(self.next_from, PAGE).await?;
            self.next_from = page.last().map_or(u64::MAX, |h| h.tree_size + 1);
            self.buf.extend(page);
        }
        let Some(head) = self.buf.front() else {
            return Ok(None);
        };
        if head.tree_size != size {
            return Ok(None);
        }
        let head = self.buf.pop_front().expect("front exists");
        report.heads_checked += 1;
        let root: Hash = frontier.root();
        if head.root == root {
            *last_good = size;
            return Ok(None);
        }
        let first = *last_good;
        Ok(if head.verify(key) {
            found(
                Some(first),
                format!(
                    "events {first}..{size} do not match the signed head at {size} (altered with recomputed hashes, or reordered)"
                ),
            )
        } else {
            found(
                None,
                format!("the tree head at {size} was altered (bad signature)"),
            )
        })
    }
}
