//! Throw-away Postgres databases on the test server, so suites running in
//! parallel (and CI runs after interrupted ones) never see each other's rows.

use sqlx::{Connection, Executor};

/// The server tests use: `PRIVIDIUM_TEST_PG`, else the machine's Postgres
/// (trust auth on 127.0.0.1:5432).
pub fn pg_server() -> String {
    std::env::var("PRIVIDIUM_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database of its own on [`pg_server`]; drop it with
/// [`PgDatabase::drop_db`] (async, so it cannot be a `Drop`).
#[derive(Debug)]
pub struct PgDatabase {
    server: String,
    name: String,
}

impl PgDatabase {
    /// Creates `<prefix>_<pid>_<random>`.
    ///
    /// # Panics
    /// When the server cannot be reached (a test helper: failing loudly,
    /// with what the tests need, is right).
    pub async fn create(prefix: &str) -> Self {
        let server = pg_server();
        let name = format!("{prefix}_{}_{}", std::process::id(), rand::random::<u32>());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| {
                panic!("the tests need Postgres at {server} (PRIVIDIUM_TEST_PG): {e}")
            });
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        Self { server, name }
    }

    /// Its connection URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Drops it, closing connections still open; errors are ignored (this
    /// runs at the end of tests, also failed ones).
    pub async fn drop_db(self) {
        if let Ok(mut admin) =
            sqlx::PgConnection::connect(&format!("{}/postgres", self.server)).await
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )))
                .await;
        }
    }
}

/// A [`PgDatabase`] for synchronous tests: it owns the runtime it was made
/// on, runs async work on it, and drops the database when it goes out of
/// scope (also when the test panics).
#[derive(Debug)]
pub struct ScratchPg {
    db: Option<PgDatabase>,
    rt: tokio::runtime::Runtime,
}

impl ScratchPg {
    /// Creates `<prefix>_<pid>_<random>` (see [`PgDatabase::create`]).
    pub fn create(prefix: &str) -> Self {
        let rt = tokio::runtime::Runtime::new().expect("a tokio runtime for the test database");
        let db = rt.block_on(PgDatabase::create(prefix));
        Self { db: Some(db), rt }
    }

    /// Its connection URL.
    pub fn url(&self) -> String {
        self.db.as_ref().expect("dropped only at the end").url()
    }

    /// Runs `work` to completion on the database's runtime.
    pub fn block_on<F: std::future::Future>(&self, work: F) -> F::Output {
        self.rt.block_on(work)
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            self.rt.block_on(db.drop_db());
        }
    }
}
