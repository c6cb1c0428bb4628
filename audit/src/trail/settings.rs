//! Where a node's audit trail lives: the `[audit]` settings, the database URL
//! the node records for the CLI, and how URLs and operators are named in
//! logs and events.

use super::TrailError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Directory of the signing key, the witness head and the embedded database.
pub const AUDIT_DIR: &str = "audit";
/// Where the node records its audit settings for the CLI.
pub const SETTINGS_FILE: &str = "audit.json";
/// The latest signed head, kept outside the database.
pub const WITNESS_FILE: &str = "head.json";

/// `[audit]` of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
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
    /// How long a request may wait for its share of the queue to drain
    /// before it is refused (0: refuse at once, as before this setting).
    #[serde(default = "default_admission_wait")]
    pub admission_wait_ms: u64,
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
/// Long enough to ride out a WAL checkpoint or a lock held a moment;
/// short enough that a client's own timeout has not fired yet.
fn default_admission_wait() -> u64 {
    2_000
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            queue_capacity: default_queue(),
            batch_max: default_batch(),
            admission_wait_ms: default_admission_wait(),
            retention_days: None,
        }
    }
}

impl AuditConfig {
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
        if self.admission_wait_ms > 60_000 {
            p.push("audit.admission_wait_ms must be at most 60,000".into());
        }
        if self.retention_days == Some(0) {
            p.push("audit.retention_days must be at least 1 (omit it to keep forever)".into());
        }
        p
    }

    /// The database URL for `data_dir`: configured, or the embedded file.
    pub fn database_url(&self, data_dir: &Path) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                data_dir.join(AUDIT_DIR).join("audit.db").display()
            )
        })
    }
}

/// What the node records in `audit/audit.json` so CLI commands on the host
/// find the same database without the configuration file.
#[derive(Serialize, Deserialize)]
struct RecordedSettings {
    database_url: String,
}

/// Records `url` as the database of `data_dir`'s trail.
pub(super) fn record_url(data_dir: &Path, url: &str) -> Result<(), TrailError> {
    let path = data_dir.join(AUDIT_DIR).join(SETTINGS_FILE);
    let bytes = serde_json::to_vec_pretty(&RecordedSettings {
        database_url: url.to_owned(),
    })
    .map_err(|e| TrailError::Settings {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    storage::write_atomic(&path, &bytes).map_err(|source| TrailError::Io {
        what: "writing",
        path,
        source,
    })
}

/// Records `url` as the database of `data_dir`'s trail before any node
/// opened it there (a restored data directory's embedded database).
pub fn record_database(data_dir: &Path, url: &str) -> Result<(), TrailError> {
    record_url(data_dir, url)
}

/// Whether a node has opened a trail in `data_dir`.
pub fn has_trail(data_dir: &Path) -> bool {
    data_dir.join(AUDIT_DIR).join(SETTINGS_FILE).exists()
}

/// The database URL the node recorded for `data_dir`.
pub fn recorded_url(data_dir: &Path) -> Result<String, TrailError> {
    let path = data_dir.join(AUDIT_DIR).join(SETTINGS_FILE);
    let text = std::fs::read(&path).map_err(|e| TrailError::Settings {
        path: path.clone(),
        reason: format!("{e}: start the node once, or pass --database-url"),
    })?;
    serde_json::from_slice::<RecordedSettings>(&text)
        .map(|s| s.database_url)
        .map_err(|e| TrailError::Settings {
            path,
            reason: e.to_string(),
        })
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
    fn the_admission_wait_defaults_to_two_seconds_and_is_bounded() {
        let absent: AuditConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.admission_wait_ms, 2_000);
        assert!(absent.problems().is_empty());
        let off: AuditConfig = serde_json::from_str(r#"{"admission_wait_ms": 0}"#).unwrap();
        assert!(off.problems().is_empty(), "0 turns the wait off");
        let long: AuditConfig = serde_json::from_str(r#"{"admission_wait_ms": 60001}"#).unwrap();
        assert_eq!(
            long.problems(),
            ["audit.admission_wait_ms must be at most 60,000"]
        );
    }

    #[test]
    fn the_cli_finds_the_database_the_node_recorded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_trail(dir.path()));
        assert!(recorded_url(dir.path())
            .unwrap_err()
            .to_string()
            .contains("start the node once"));
        let url = AuditConfig::default().database_url(dir.path());
        record_url(dir.path(), &url).unwrap();
        assert!(has_trail(dir.path()));
        assert_eq!(recorded_url(dir.path()).unwrap(), url);
    }
}
