//! Sealed event rows: what an event says about people, accounts and
//! transactions (actor, organization, resource, request and trace ids,
//! client address, details) is kept AES-256-GCM sealed at rest through the
//! appliance's [`RecordCipher`], bound to the event's id so a sealed blob
//! moved to another row fails to open. Actor and resource stay queryable
//! through keyed hashes (the same input always blinds alike, but nothing can
//! be read from the hash). The kind of event — id, time, actor type, action,
//! outcome, rule id — stays plain: compliance filters and counts on it, and
//! it names no account.
//!
//! A row written before encryption was turned on keeps its plain columns
//! until [`AuditDb::reseal`](super::AuditDb::reseal) moves it under the key.

use crate::{event::StoredEvent, AuditError};
use serde::{Deserialize, Serialize};
use std::{borrow::Cow, collections::HashMap};
use storage::{CipherError, SharedCipher};

const ACTOR: &[u8] = b"audit.actor";
const RESOURCE: &[u8] = b"audit.resource";

/// The fields of an event that are sealed, as one JSON document.
#[derive(Serialize, Deserialize)]
struct Private<'a> {
    actor_id: Cow<'a, str>,
    organization: Option<Cow<'a, str>>,
    resource: Option<Cow<'a, str>>,
    request_id: Option<Cow<'a, str>>,
    trace_id: Option<Cow<'a, str>>,
    source_ip: Option<Cow<'a, str>>,
    details: Cow<'a, str>,
}

/// The values stored in an event row's identifying columns.
#[derive(Debug)]
pub(crate) struct RowFields<'a> {
    pub actor_id: Cow<'a, str>,
    pub organization: Option<&'a str>,
    pub resource: Option<Cow<'a, str>>,
    pub request_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub details: &'a str,
    pub sealed: Option<Vec<u8>>,
    pub key_version: Option<i64>,
}

impl RowFields<'_> {
    /// The indexed prefix stored beside the resource column's value.
    pub(crate) fn resource_key(&self) -> Option<&str> {
        self.resource.as_deref().map(super::resource_key)
    }
}

/// Seals and opens event rows; `None` in [`super::AuditDb`] keeps rows plain.
#[derive(Debug, Clone)]
pub(crate) struct Sealing {
    cipher: SharedCipher,
}

fn context(id: u64) -> Vec<u8> {
    let mut c = b"audit_events/".to_vec();
    c.extend_from_slice(&id.to_be_bytes());
    c
}

fn sealed_err(id: u64, why: impl std::fmt::Display) -> AuditError {
    AuditError::BadRow {
        event: id,
        reason: why.to_string(),
    }
}

impl Sealing {
    pub(crate) fn new(cipher: SharedCipher) -> Self {
        Self { cipher }
    }

    /// Data-key version new rows are sealed under.
    pub(crate) fn current_version(&self) -> u32 {
        self.cipher.current_version()
    }

    /// The stored form of an actor id (what queries compare with).
    pub(crate) fn blind_actor(&self, actor: &str) -> String {
        hex::encode(self.cipher.blind(ACTOR, actor.as_bytes()))
    }

    /// The stored form of a resource.
    pub(crate) fn blind_resource(&self, resource: &str) -> String {
        hex::encode(self.cipher.blind(RESOURCE, resource.as_bytes()))
    }

    /// The rows for a batch of events (ids already assigned). A batch
    /// comes mostly from a handful of principals, so each actor is blinded
    /// once per batch, not once per event (a keyed hash each).
    pub(crate) fn seal_all<'a>(
        &self,
        events: &'a [StoredEvent],
    ) -> Result<Vec<RowFields<'a>>, AuditError> {
        let mut blinded: HashMap<&str, String> = HashMap::new();
        events
            .iter()
            .map(|e| {
                let actor = blinded
                    .entry(e.actor_id.as_str())
                    .or_insert_with(|| self.blind_actor(&e.actor_id))
                    .clone();
                self.seal(e, actor)
            })
            .collect()
    }

    /// The row for one event (its id already assigned).
    pub(crate) fn seal_one<'a>(&self, e: &'a StoredEvent) -> Result<RowFields<'a>, AuditError> {
        self.seal(e, self.blind_actor(&e.actor_id))
    }

    /// The row for `e` (its id already assigned), its actor blinded as
    /// `actor`.
    fn seal<'a>(&self, e: &'a StoredEvent, actor: String) -> Result<RowFields<'a>, AuditError> {
        let private = Private {
            actor_id: Cow::Borrowed(&e.actor_id),
            organization: e.organization.as_deref().map(Cow::Borrowed),
            resource: e.resource.as_deref().map(Cow::Borrowed),
            request_id: e.request_id.as_deref().map(Cow::Borrowed),
            trace_id: e.trace_id.as_deref().map(Cow::Borrowed),
            source_ip: e.source_ip.as_deref().map(Cow::Borrowed),
            details: Cow::Borrowed(&e.details),
        };
        let plain = serde_json::to_vec(&private).map_err(|err| sealed_err(e.id, err))?;
        let sealed = self
            .cipher
            .seal(&context(e.id), &plain)
            .map_err(|err| match err {
                // Not damage: the writer retries, the operator must rotate.
                CipherError::Exhausted(_) => AuditError::Unavailable(err.to_string()),
                other => sealed_err(e.id, other),
            })?;
        let version = self
            .cipher
            .key_version(&sealed)
            .map_err(|err| sealed_err(e.id, err))?;
        Ok(RowFields {
            actor_id: Cow::Owned(actor),
            organization: None,
            resource: e
                .resource
                .as_deref()
                .map(|r| Cow::Owned(self.blind_resource(r))),
            request_id: None,
            trace_id: None,
            source_ip: None,
            details: "",
            sealed: Some(sealed),
            key_version: Some(i64::from(version)),
        })
    }

    /// Fills `e`'s identifying fields from its sealed blob, after checking
    /// that the row's other identifying columns are exactly what sealing
    /// left there: an edit to any column of a sealed row is noticed.
    pub(crate) fn open(
        &self,
        e: &mut StoredEvent,
        sealed: &[u8],
        key_version: Option<i64>,
    ) -> Result<(), AuditError> {
        let id = e.id;
        let plain = self.cipher.open(&context(id), sealed).map_err(|err| match err {
            CipherError::UnknownKey(v) => sealed_err(
                id,
                format!("sealed under data key v{v}, which these keys do not include (retired, or another appliance's)"),
            ),
            other => sealed_err(
                id,
                format!("altered: the sealed fields do not open ({other}); changed, moved from another row or sealed under another key"),
            ),
        })?;
        // Re-sealing finds rows by this column: one edited to claim the
        // current key would otherwise keep an old key in use unnoticed.
        let version = self.cipher.key_version(sealed).ok().map(i64::from);
        if version != key_version {
            return Err(sealed_err(
                id,
                "altered: its key_version column does not match its sealed fields",
            ));
        }
        let p: Private<'static> =
            serde_json::from_slice(&plain).map_err(|err| sealed_err(id, err))?;
        let lookups_match = e.actor_id == self.blind_actor(&p.actor_id)
            && e.resource.as_deref()
                == p.resource
                    .as_deref()
                    .map(|r| self.blind_resource(r))
                    .as_deref();
        let rest_empty = e.organization.is_none()
            && e.request_id.is_none()
            && e.trace_id.is_none()
            && e.source_ip.is_none()
            && e.details.is_empty();
        if !lookups_match || !rest_empty {
            return Err(sealed_err(
                id,
                "altered: its plain columns no longer match its sealed fields",
            ));
        }
        e.actor_id = p.actor_id.into_owned();
        e.organization = p.organization.map(Cow::into_owned);
        e.resource = p.resource.map(Cow::into_owned);
        e.request_id = p.request_id.map(Cow::into_owned);
        e.trace_id = p.trace_id.map(Cow::into_owned);
        e.source_ip = p.source_ip.map(Cow::into_owned);
        e.details = p.details.into_owned();
        Ok(())
    }
}

/// The row for `e` with nothing sealed.
pub(crate) fn plain(e: &StoredEvent) -> RowFields<'_> {
    RowFields {
        actor_id: Cow::Borrowed(&e.actor_id),
        organization: e.organization.as_deref(),
        resource: e.resource.as_deref().map(Cow::Borrowed),
        request_id: e.request_id.as_deref(),
        trace_id: e.trace_id.as_deref(),
        source_ip: e.source_ip.as_deref(),
        details: &e.details,
        sealed: None,
        key_version: None,
    }
}
