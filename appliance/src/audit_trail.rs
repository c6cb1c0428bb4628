//! The appliance's audit trail: where the audit database is, the writer, the
//! request context every event carries, and the sink that turns each policy
//! decision into an event (and any allow it cannot record into a deny).

use access_control::{
    policy::{DecisionEvent, DecisionSink},
    Principal,
};
use anyhow::{Context, Result};
use audit::{
    action, ActorKind, AuditDb, AuditError, AuditEvent, AuditLog, HeadSigner, Outcome, WriterConfig,
};
use serde::{Deserialize, Serialize};
use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};
use storage::SharedCipher;

/// Directory of the signing key, the witness head and the embedded database.
pub const AUDIT_DIR: &str = "audit";
/// Where the node records its audit settings for the CLI.
const SETTINGS_FILE: &str = "audit.json";
/// The latest signed head, kept outside the database.
pub const WITNESS_FILE: &str = "head.json";

/// `[audit]` of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// `postgres://user@host/db` (password via `PGPASSWORD` or `.pgpass`),
    /// or `sqlite://PATH`. Default: SQLite in the data directory.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Events that may wait for the database before requests are refused.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Most events per transaction.
    #[serde(default = "default_batch")]
    pub batch_max: usize,
    /// Keep events this many days (absent: forever); legal holds override.
    #[serde(default)]
    pub retention_days: Option<u64>,
}

fn default_queue() -> usize {
    65_536
}
fn default_batch() -> usize {
    16_384
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            queue_capacity: default_queue(),
            batch_max: default_batch(),
            retention_days: None,
        }
    }
}

impl AuditSettings {
    /// Problems with the settings, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite://"))
            {
                p.push("audit.database_url must start with postgres:// or sqlite://".into());
            }
        }
        if !(1..=10_000_000).contains(&self.queue_capacity) {
            p.push("audit.queue_capacity must be between 1 and 10,000,000".into());
        }
        if !(1..=50_000).contains(&self.batch_max) {
            p.push("audit.batch_max must be between 1 and 50,000".into());
        }
        if self.retention_days == Some(0) {
            p.push("audit.retention_days must be at least 1 (omit it to keep forever)".into());
        }
        p
    }
}

/// The database URL of a data directory: configured, or the embedded file.
fn database_url(data_dir: &Path, settings: &AuditSettings) -> String {
    settings.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            data_dir.join(AUDIT_DIR).join("audit.db").display()
        )
    })
}

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
    pub reads: Arc<crate::read_tally::ReadTally>,
    /// A submission's allowed decisions, folded into its event.
    pub fold: Arc<crate::decision_fold::DecisionFold>,
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
    /// (the node's own work).
    pub fn stamp_current(event: &mut AuditEvent) -> bool {
        let Some(ctx) = Self::current() else {
            return false;
        };
        event.request_id.get_or_insert(ctx.request_id);
        if event.trace_id.is_none() {
            event.trace_id = ctx.trace_id;
        }
        event.source_ip.get_or_insert(ctx.source_ip);
        true
    }
}

/// Actor fields of a principal key (`User:…`, `ApiKey:…`).
pub fn actor_kind(principal_key: &str) -> ActorKind {
    if principal_key.starts_with("ApiKey:") {
        ActorKind::ApiKey
    } else {
        ActorKind::User
    }
}

/// An event by `principal`.
pub fn by(principal: &Principal, action: &str, outcome: Outcome) -> AuditEvent {
    let key = principal.key();
    AuditEvent::new(actor_kind(&key), &key, action, outcome).organization(principal.org.clone())
}

/// The node's audit trail.
#[derive(Debug, Clone)]
pub struct Trail {
    log: AuditLog,
    db: AuditDb,
    signer: Arc<HeadSigner>,
    last_refusal_log: Arc<AtomicI64>,
}

impl Trail {
    /// Records `action` about batch `o` with its public data (block range,
    /// new root, outputs digest) and `extra` details; a failure is logged,
    /// since the batch itself has already happened.
    pub fn record_batch(
        &self,
        action: &str,
        o: &state_transition::BatchOutputs,
        extra: serde_json::Value,
    ) {
        let mut details = serde_json::json!({
            "first_block": o.first_block,
            "last_block": o.last_block,
            "new_state_root": o.new_state_root,
            "outputs_digest": o.digest(),
        });
        if let (Some(d), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
            d.extend(extra);
        }
        let event = AuditEvent::system(action, Outcome::Allow)
            .resource(format!("batch/{}", o.batch_number))
            .details(details);
        if let Err(e) = self.record(event) {
            tracing::error!(error = %e, batch = o.batch_number, action, "batch event not recorded in the audit log");
        }
    }

    /// Records `event`, filling in the current request's context.
    /// Refused when the queue is full: the caller must then fail closed.
    /// An event of a request counts against the requesters' share of the
    /// queue and its actor's; the node's own events (no request: block
    /// building, batches, keys) may use the reserve too.
    pub fn record(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        let r = if RequestContext::stamp_current(&mut event) {
            self.log.record_shared(event)
        } else {
            self.log.record(event)
        };
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    /// Records `event` into the place reserved for it, if one was, filling
    /// in the current request's context; otherwise as [`record`](Self::record).
    pub fn record_reserved(
        &self,
        place: Option<audit::Reservation>,
        mut event: AuditEvent,
    ) -> Result<(), AuditError> {
        let Some(place) = place else {
            return self.record(event);
        };
        RequestContext::stamp_current(&mut event);
        let r = place.record(event);
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    /// A place for one of `actor`'s events in the requesters' share.
    pub fn reserve(&self, actor: &str) -> Result<audit::Reservation, AuditError> {
        let r = self.log.reserve(actor);
        if let Err(e) = &r {
            self.note_refusal(e);
        }
        r
    }

    fn note_refusal(&self, e: &AuditError) {
        // Under overload every request is refused; one line a second says
        // so (the writer's counters on /health have the totals).
        let now = audit::time::now_us() / 1_000_000;
        if self.last_refusal_log.swap(now, Ordering::Relaxed) != now {
            tracing::error!(error = %e, refused = self.log.stats().refused, "audit events refused; requests fail closed");
        }
    }

    /// The database, for queries.
    pub fn db(&self) -> &AuditDb {
        &self.db
    }

    /// The writer, for flushes and counters.
    pub fn log(&self) -> &AuditLog {
        &self.log
    }

    /// The public key heads are signed with.
    pub fn public_key(&self) -> audit::VerifyingKey {
        self.signer.public_key()
    }
}

/// Routes policy decisions into the trail.
pub struct TrailSink(pub Trail);

impl DecisionSink for TrailSink {
    fn record(&self, e: &DecisionEvent<'_>) -> Result<(), String> {
        if let Some(ctx) = RequestContext::current() {
            let reserve = || self.0.reserve(e.principal).map_err(|e| e.to_string());
            if crate::read_tally::is_item_read(e.action) {
                return ctx.reads.add(e, reserve);
            }
            if let Some(folded) = ctx.fold.add(e, reserve) {
                return folded;
            }
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
        self.0.record(event).map_err(|e| e.to_string())
    }
}

/// Opens the node's trail: database (migrated), signing key (sealed when
/// encryption is on) and the writer. Records where the database is so the
/// CLI finds it.
pub async fn open(
    data_dir: &Path,
    settings: &AuditSettings,
    cipher: Option<SharedCipher>,
) -> Result<Trail> {
    let dir = data_dir.join(AUDIT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let url = database_url(data_dir, settings);
    storage::write_atomic(
        &dir.join(SETTINGS_FILE),
        &serde_json::to_vec_pretty(&RecordedSettings {
            database_url: url.clone(),
        })?,
    )?;
    let mut db = AuditDb::connect(&url)
        .await
        .with_context(|| format!("opening the audit database {}", redact(&url)))?;
    if let Some(c) = &cipher {
        db = db.sealed_with(c.clone());
        spawn_seal_plain_rows(db.clone());
    }
    let signer = Arc::new(HeadSigner::load_or_create(&dir, cipher.as_deref())?);
    let (log, _task) = AuditLog::start(
        db.clone(),
        signer.clone(),
        WriterConfig {
            queue_capacity: settings.queue_capacity,
            batch_max: settings.batch_max,
            witness: Some(dir.join(WITNESS_FILE)),
            // An eighth of the queue is the node's alone; no principal may
            // hold more than a sixteenth of it.
            reserved: settings.queue_capacity / 8,
            per_actor: (settings.queue_capacity / 16).max(1),
        },
    );
    tracing::info!(database = %redact(&url), "audit trail open");
    Ok(Trail {
        log,
        db,
        signer,
        last_refusal_log: Arc::default(),
    })
}

/// Seals, in the background, rows of a log written before encryption was
/// turned on (and rows a stopped re-encryption left under an older key);
/// until then they stay readable, but queries by actor or resource find
/// only sealed rows.
fn spawn_seal_plain_rows(db: AuditDb) {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(5);
        loop {
            match db.reseal(&std::sync::atomic::AtomicBool::new(false)).await {
                Ok(r) => {
                    if r.resealed > 0 {
                        tracing::info!(
                            sealed = r.resealed,
                            "audit rows moved under the current data key"
                        );
                    }
                    return;
                }
                Err(e) => tracing::error!(
                    error = %e,
                    retry_in_s = wait.as_secs(),
                    "sealing audit rows failed"
                ),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(600));
        }
    });
}

/// Hourly upkeep (and once at start): refresh query statistics and, with a
/// retention period, prune.
pub fn spawn_upkeep(trail: Trail, retention_days: Option<u64>) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = trail.db.analyze().await {
                tracing::warn!(error = %e, "audit statistics refresh failed");
            }
            let Some(days) = retention_days else {
                tokio::time::sleep(Duration::from_secs(3_600)).await;
                continue;
            };
            let cutoff = audit::time::now_us() - (days as i64) * 86_400 * 1_000_000;
            match trail.db.prune(cutoff).await {
                Ok(r) if r.pruned > 0 => {
                    tracing::info!(
                        pruned = r.pruned,
                        starts_at = r.starts_at,
                        "audit retention pruned old events"
                    );
                    let _ = trail.record(
                        AuditEvent::system(action::AUDIT_PRUNED, Outcome::Allow)
                            .details(serde_json::to_value(&r).unwrap_or_default()),
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "audit retention failed"),
            }
            tokio::time::sleep(Duration::from_secs(3_600)).await;
        }
    });
}

#[derive(Serialize, Deserialize)]
struct RecordedSettings {
    database_url: String,
}

/// The trail as the CLI sees it: the database and the signing key (every
/// CLI command records what it did).
pub struct CliTrail {
    /// Database.
    pub db: AuditDb,
    /// The audit directory of the data directory.
    pub dir: PathBuf,
    signer: HeadSigner,
    /// The data keys, when the directory is encrypted.
    at_rest: Option<crate::at_rest::AtRest>,
}

impl CliTrail {
    /// Opens the trail of `data_dir` (the database the node recorded, or
    /// `url`) and its signing key, unsealed if need be.
    pub async fn open(data_dir: &Path, url: Option<&str>) -> Result<Self> {
        let dir = data_dir.join(AUDIT_DIR);
        let url = match url {
            Some(u) => u.to_owned(),
            None => {
                let path = dir.join(SETTINGS_FILE);
                let text = std::fs::read(&path).with_context(|| {
                    format!(
                        "{} not found: start the node once, or pass --database-url",
                        path.display()
                    )
                })?;
                serde_json::from_slice::<RecordedSettings>(&text)
                    .with_context(|| format!("reading {}", path.display()))?
                    .database_url
            }
        };
        let mut db = AuditDb::connect(&url)
            .await
            .with_context(|| format!("opening the audit database {}", redact(&url)))?;
        let at_rest = crate::at_rest::open_recorded(data_dir).await?;
        let cipher = at_rest.as_ref().map(|a| a.cipher.clone() as SharedCipher);
        if let Some(c) = &cipher {
            db = db.sealed_with(c.clone());
        }
        let signer = HeadSigner::load_or_create(&dir, cipher.as_deref())?;
        Ok(Self {
            db,
            dir,
            signer,
            at_rest,
        })
    }

    /// Appends one event by the operator at this console.
    pub async fn record(
        &self,
        event_action: &str,
        resource: Option<String>,
        details: serde_json::Value,
    ) -> Result<()> {
        let mut e = AuditEvent::new(
            ActorKind::Operator,
            &operator(),
            event_action,
            Outcome::Allow,
        )
        .details(details);
        e.resource = resource;
        // The node may have rotated (and retired the key this process
        // started with) meanwhile: seal under the keyring's current key.
        if let Some(a) = &self.at_rest {
            a.keyring
                .refresh(a.provider.as_ref(), &a.cipher, a.limits)
                .await
                .context("reloading the data keys")?;
        }
        self.db
            .append(
                &mut [audit::StoredEvent::pending(e, audit::time::now_us())],
                &self.signer,
            )
            .await
            .context("recording the audit event")?;
        Ok(())
    }
}

/// `os:<user>` of whoever runs the CLI.
pub fn operator() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("os:{user}")
}

/// A URL without its password (in the user part or as a `password=`
/// query parameter), for logs and errors.
pub fn redact(url: &str) -> String {
    if let Some((base, query)) = url.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        return format!("{}?{}", redact(base), query.join("&"));
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Records a key-management event by the operator, when the trail exists.
pub async fn record_key_op(
    data_dir: &Path,
    event_action: &str,
    resource: Option<String>,
    details: serde_json::Value,
) -> Result<()> {
    if !data_dir.join(AUDIT_DIR).join(SETTINGS_FILE).exists() {
        tracing::warn!("no audit trail in this data directory yet; {event_action} not recorded");
        return Ok(());
    }
    CliTrail::open(data_dir, None)
        .await?
        .record(event_action, resource, details)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("postgres://audit:s3cret@db.bank:5432/audit"),
            "postgres://audit:***@db.bank:5432/audit"
        );
        assert_eq!(redact("postgres://audit@db/a"), "postgres://audit@db/a");
        assert_eq!(
            redact("postgres://db/a?user=p&password=s3cret&sslmode=require"),
            "postgres://db/a?user=p&password=***&sslmode=require"
        );
        assert_eq!(
            redact("sqlite:///var/lib/p/audit.db"),
            "sqlite:///var/lib/p/audit.db"
        );
    }

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
}
