//! A look at an audit database that changes nothing: is it reachable, and
//! are the schema migrations this build ships all applied? For
//! `prividium doctor`, which must not migrate a database an operator is
//! only asking about.

use super::{Backend, POSTGRES, SQLITE};
use crate::AuditError;
use sqlx::{any::AnyPoolOptions, Row};
use std::time::Duration;

/// What [`schema_status`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Which database.
    pub backend: Backend,
    /// Migrations this build ships.
    pub shipped: Vec<i64>,
    /// Of those, the ones the database has applied successfully.
    pub applied: Vec<i64>,
    /// Events in the log (pruned ones included), when the schema has them.
    pub tree_size: Option<u64>,
}

impl SchemaStatus {
    /// Shipped migrations not applied yet (the node applies them at start).
    pub fn pending(&self) -> Vec<i64> {
        self.shipped
            .iter()
            .filter(|v| !self.applied.contains(v))
            .copied()
            .collect()
    }
}

/// Connects to `url` read-only (a SQLite file must exist; it is opened
/// with `mode=ro`) within `timeout`, and reads which migrations are applied.
pub async fn schema_status(url: &str, timeout: Duration) -> Result<SchemaStatus, AuditError> {
    super::install_drivers();
    let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (Backend::Postgres, url.to_owned())
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(file).exists() {
            return Err(AuditError::NotFound(format!("no audit database at {file}")));
        }
        (Backend::Sqlite, format!("sqlite://{file}?mode=ro"))
    } else {
        return Err(AuditError::Db(
            "database url must start with postgres:// or sqlite://".into(),
        ));
    };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect(&url)
        .await?;
    let migrator = match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    };
    let shipped: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    // A database never migrated has no bookkeeping table: nothing applied.
    let applied: Vec<i64> =
        match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_all(&pool)
            .await
        {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r.try_get::<i64, _>(0).ok())
                .collect(),
            Err(_) => Vec::new(),
        };
    let tree_size = sqlx::query("SELECT tree_size FROM audit_state WHERE id = 1")
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<i64, _>(0).ok())
        .map(|n| n.max(0) as u64);
    pool.close().await;
    Ok(SchemaStatus {
        backend,
        shipped,
        applied,
        tree_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_pending_migrations_without_applying_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let missing = schema_status(&url, Duration::from_secs(5)).await;
        assert!(
            matches!(missing, Err(AuditError::NotFound(_))),
            "{missing:?}"
        );
        // An empty file: reachable, nothing applied, and still nothing
        // applied after looking.
        std::fs::write(dir.path().join("audit.db"), b"").unwrap();
        let s = schema_status(&url, Duration::from_secs(5)).await.unwrap();
        assert!(s.applied.is_empty() && !s.pending().is_empty(), "{s:?}");
        assert_eq!(
            schema_status(&url, Duration::from_secs(5)).await.unwrap(),
            s
        );
        // After the node's own connect: all applied.
        crate::AuditDb::connect(&url).await.unwrap();
        let s = schema_status(&url, Duration::from_secs(5)).await.unwrap();
        assert!(s.pending().is_empty(), "{s:?}");
        assert_eq!(s.tree_size, Some(0));
    }
}
