//! A fresh audit database per test: a SQLite file in a temp dir, or a new
//! database on the machine's Postgres (127.0.0.1:5432, trust auth), dropped
//! afterwards. `PRIVIDIUM_TEST_PG` overrides the server URL.

use audit::{ActorKind, AuditDb, AuditEvent, HeadSigner, Outcome};
use std::sync::Arc;
use test_support::PgDatabase;

pub(crate) struct TestDb {
    pub(crate) url: String,
    pub(crate) db: AuditDb,
    pub(crate) dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
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
            pg: None,
        }
    }

    pub(crate) async fn postgres() -> Self {
        let pg = PgDatabase::create("prividium_audit").await;
        let url = pg.url();
        let db = AuditDb::connect(&url).await.unwrap();
        Self {
            url,
            db,
            dir: tempfile::tempdir().unwrap(),
            pg: Some(pg),
        }
    }

    pub(crate) async fn both() -> [Self; 2] {
        [Self::sqlite().await, Self::postgres().await]
    }

    pub(crate) fn label(&self) -> &'static str {
        if self.pg.is_some() {
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
        if let Some(pg) = self.pg {
            pg.drop_db().await;
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
