//! A fresh audit database per test: a SQLite file in a temp dir, or a new
//! database on the machine's Postgres (127.0.0.1:5432, trust auth), dropped
//! afterwards. `PRIVIDIUM_TEST_PG` overrides the server URL.

use audit::{ActorKind, AuditDb, AuditEvent, HeadSigner, Outcome};
use sqlx::{Connection, Executor};
use std::sync::Arc;

pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) db: AuditDb,
    pub(crate) dir: tempfile::TempDir,
    pg_name: Option<String>,
}

fn pg_server() -> String {
    std::env::var("PRIVIDIUM_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

impl TestDb {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let db = AuditDb::connect(&url).await.unwrap();
        Self {
            url,
            db,
            dir,
            pg_name: None,
        }
    }

    pub(crate) async fn postgres() -> Self {
        let name = format!(
            "prividium_audit_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_server()))
            .await
            .expect("the tests need Postgres at 127.0.0.1:5432 (see deploy/dev/README.md)");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let url = format!("{}/{name}", pg_server());
        let db = AuditDb::connect(&url).await.unwrap();
        Self {
            url,
            db,
            dir: tempfile::tempdir().unwrap(),
            pg_name: Some(name),
        }
    }

    pub(crate) async fn both() -> [Self; 2] {
        [Self::sqlite().await, Self::postgres().await]
    }

    pub(crate) fn label(&self) -> &'static str {
        if self.pg_name.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    pub(crate) async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(self.db.pool())
            .await
            .unwrap();
    }

    pub(crate) async fn drop_db(self) {
        self.db.close().await;
        if let Some(name) = self.pg_name {
            let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_server()))
                .await
                .unwrap();
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

pub(crate) fn signer() -> Arc<HeadSigner> {
    Arc::new(HeadSigner::ephemeral())
}

/// A varied event: actor `i % 3`, alternating outcomes, a few actions.
pub(crate) fn event(i: u64) -> AuditEvent {
    let actions = [
        "auth.login.succeeded",
        "policy.denied",
        "policy.allowed",
        "tx.submitted",
    ];
    let outcome = if i.is_multiple_of(2) {
        Outcome::Allow
    } else {
        Outcome::Deny
    };
    AuditEvent::new(
        ActorKind::User,
        &format!("User:u{}", i % 3),
        actions[(i % 4) as usize],
        outcome,
    )
    .organization("bank")
    .resource(format!("Node:{i}"))
    .details(serde_json::json!({ "n": i }))
}
