//! The audit trail as the binary uses it beyond the node's own
//! [`audit::Trail`]: the CLI's handle (every operator command records what
//! it did) and the one event shape for batches (proof exported, settled).

use anyhow::{Context, Result};
use audit::{
    trail::{operator, recorded_url, redact, AUDIT_DIR},
    ActorKind, AuditDb, AuditEvent, HeadSigner, Outcome, Trail,
};
use std::path::{Path, PathBuf};
use storage::SharedCipher;

/// Records `action` about batch `o` with its public data (block range, new
/// root, outputs digest) and `extra` details; a failure is logged, since
/// the batch itself has already happened.
pub fn record_batch(
    trail: &Trail,
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
    if let Err(e) = trail.record(event) {
        tracing::error!(error = %e, batch = o.batch_number, action, "batch event not recorded in the audit log");
    }
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
    at_rest: Option<crate::keys::at_rest::AtRest>,
}

impl CliTrail {
    /// Opens the trail of `data_dir` (the database the node recorded, or
    /// `url`) and its signing key, unsealed if need be.
    pub async fn open(data_dir: &Path, url: Option<&str>) -> Result<Self> {
        let dir = data_dir.join(AUDIT_DIR);
        let url = match url {
            Some(u) => u.to_owned(),
            None => recorded_url(data_dir)?,
        };
        let mut db = AuditDb::connect(&url)
            .await
            .with_context(|| format!("opening the audit database {}", redact(&url)))?;
        let at_rest = crate::keys::at_rest::open_recorded(data_dir).await?;
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

/// Records a key-management event by the operator, when the trail exists.
pub async fn record_key_op(
    data_dir: &Path,
    event_action: &str,
    resource: Option<String>,
    details: serde_json::Value,
) -> Result<()> {
    if !audit::trail::has_trail(data_dir) {
        tracing::warn!("no audit trail in this data directory yet; {event_action} not recorded");
        return Ok(());
    }
    CliTrail::open(data_dir, None)
        .await?
        .record(event_action, resource, details)
        .await
}
