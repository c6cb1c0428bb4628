//! The audit database through `sqlx`: Postgres in production, SQLite
//! embedded. Both run the same SQL (the `Any` driver, `$n` parameters);
//! only the migrations differ in column types.

mod append;
mod query;
mod reseal;
mod retention;
mod schema;
mod sealing;

pub use query::{Filter, FilterArgs, Page, MAX_PAGE};
pub use reseal::ResealReport;
pub use retention::{Hold, PruneReport};
pub use schema::{schema_status, SchemaStatus};

use crate::{
    event::StoredEvent,
    head::TreeHead,
    merkle::{Frontier, Hash},
    AuditError,
};
use sealing::Sealing;
use sqlx::{
    any::{AnyPoolOptions, AnyRow},
    migrate::Migrator,
    AnyPool, AssertSqlSafe, Executor, Row,
};
use std::{sync::Once, time::Duration};
use storage::SharedCipher;

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// Takes the write lock on the tree state (a row lock on Postgres, the
/// reserved lock on SQLite) before anything reads it.
pub(crate) const LOCK_STATE: &str = "UPDATE audit_state SET tree_size = tree_size WHERE id = 1";
/// The tree state; [`state_from_row`] decodes the first four columns.
pub(crate) const READ_STATE: &str =
    "SELECT tree_size, frontier, pruned_to, checkpoint, last_time_us FROM audit_state WHERE id = 1";

/// Columns of an event row, in [`AuditDb::event_from_row`]'s order.
pub(crate) const EVENT_COLUMNS: &str = "id, time_us, actor_type, actor_id, organization, action, \
    resource, outcome, rule_id, request_id, trace_id, source_ip, details, leaf_hash, sealed, \
    key_version, resource_key";

/// Characters of a stored resource kept in the indexed `resource_key`
/// column: 64 bits of a sealed row's keyed hash, or the start of a plain
/// one (`tx:0x` and 11 hex digits), enough to make an index probe exact in
/// practice; queries then compare the whole value on the row.
const RESOURCE_KEY_CHARS: usize = 16;

/// The `resource_key` stored beside a resource: its first characters,
/// counted as both databases' `substr` counts them (migration 0005 filled
/// the column for older rows that way).
pub(crate) fn resource_key(resource: &str) -> &str {
    match resource.char_indices().nth(RESOURCE_KEY_CHARS) {
        Some((end, _)) => &resource[..end],
        None => resource,
    }
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite (embedded).
    Sqlite,
}

/// The writer's view of the tree.
#[derive(Debug, Clone)]
pub struct LogState {
    /// Events appended so far (pruned ones included).
    pub tree_size: u64,
    /// Right edge at `tree_size`.
    pub frontier: Frontier,
    /// Right edge at the prune point (size 0 when nothing was pruned).
    pub checkpoint: Frontier,
}

/// A connection pool to the audit database.
#[derive(Debug, Clone)]
pub struct AuditDb {
    pool: AnyPool,
    backend: Backend,
    /// Native pool for appends on Postgres (array binds).
    pg: Option<sqlx::PgPool>,
    /// The one connection SQLite appends use (its page cache stays warm).
    appender: Option<AnyPool>,
    /// Seals identifying fields at rest; None keeps rows plain.
    sealing: Option<Sealing>,
}

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        AuditError::Db(e.to_string())
    }
}

fn install_drivers() {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
}

impl AuditDb {
    /// Connects to `url` (`postgres://…` or `sqlite://PATH`) and brings the
    /// schema up to date. A SQLite file is created when missing.
    pub async fn connect(url: &str) -> Result<Self, AuditError> {
        install_drivers();
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            let mode = if path.contains('?') { "&" } else { "?" };
            let url = if path.contains("mode=") {
                url.to_owned()
            } else {
                format!("{url}{mode}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            return Err(AuditError::Db(format!(
                "database url must start with postgres:// or sqlite:// (got {:?})",
                url.split(':').next().unwrap_or("")
            )));
        };
        let options = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL lets readers run beside the writer; FULL sync
                            // because an acknowledged audit event must survive
                            // power loss.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // Rows re-sealed in place (or pruned) must not
                            // leave their old bytes in free pages.
                            conn.execute("PRAGMA secure_delete = ON").await?;
                            // Four secondary indexes over millions of rows: the
                            // default 2 MiB page cache makes every insert a miss.
                            conn.execute("PRAGMA cache_size = -65536").await?;
                            // Fewer, larger checkpoints: each one fsyncs the
                            // database file.
                            conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                            conn.execute("PRAGMA mmap_size = 1073741824").await?;
                            // Statement journals (a statement that may have to
                            // undo itself alone inside a transaction copies
                            // each page it changes aside first) and temporary
                            // sorts stay in memory: in a file each page was a
                            // write syscall, an eighth of the writer's time
                            // under load (perf) before appends stopped needing
                            // one (see append/any.rs). They guard nothing after
                            // a crash — the WAL does.
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                        }
                        Ok(())
                    })
                })
        };
        let pool = options(if backend == Backend::Sqlite { 4 } else { 8 })
            .connect(&url)
            .await?;
        let migrator = match backend {
            Backend::Postgres => &POSTGRES,
            Backend::Sqlite => &SQLITE,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| AuditError::Db(format!("migrations: {e}")))?;
        let pg = match backend {
            Backend::Postgres => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await?,
            ),
            Backend::Sqlite => None,
        };
        // SQLite appends on a connection of their own, kept open: a
        // connection drops its page cache whenever another one wrote since
        // its last transaction, so appends taking turns on the pool read
        // every index page they touched back from the WAL (perf: a tenth of
        // the writer's time).
        let appender = match backend {
            Backend::Sqlite => Some(
                options(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect(&url)
                    .await?,
            ),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            pg,
            appender,
            sealing: None,
        })
    }

    /// Seals what events say about people, accounts and transactions under
    /// `cipher` from now on, and opens rows sealed earlier. Rows written
    /// plain before stay readable until [`AuditDb::reseal`] moves them.
    pub fn sealed_with(mut self, cipher: SharedCipher) -> Self {
        self.sealing = Some(Sealing::new(cipher));
        self
    }

    /// The stored column values of `events` (sealed or plain).
    pub(crate) fn row_fields<'a>(
        &self,
        events: &'a [StoredEvent],
    ) -> Result<Vec<sealing::RowFields<'a>>, AuditError> {
        match &self.sealing {
            Some(s) => s.seal_all(events),
            None => Ok(events.iter().map(sealing::plain).collect()),
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for tests that tamper with rows the way an intruder with
    /// database access would.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The tree state as last committed.
    pub async fn state(&self) -> Result<LogState, AuditError> {
        let row = sqlx::query(READ_STATE).fetch_one(&self.pool).await?;
        state_from_row(&row)
    }

    /// Events with `from <= id`, in id order, at most `limit`, with the
    /// leaf hash stored beside each.
    pub async fn events_from(
        &self,
        from: u64,
        limit: u32,
    ) -> Result<Vec<(StoredEvent, Hash)>, AuditError> {
        self.select_events(
            "id >= $1 ORDER BY id LIMIT $2",
            to_i64(from),
            i64::from(limit),
        )
        .await
    }

    /// Events with `from <= id < to`, in id order.
    pub async fn events_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(StoredEvent, Hash)>, AuditError> {
        self.select_events("id >= $1 AND id < $2 ORDER BY id", to_i64(from), to_i64(to))
            .await
    }

    /// Events matching `clause` (with its two bound values), decoded.
    async fn select_events(
        &self,
        clause: &str,
        a: i64,
        b: i64,
    ) -> Result<Vec<(StoredEvent, Hash)>, AuditError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE {clause}");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(a)
            .bind(b)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| self.event_from_row(r)).collect()
    }

    /// One event.
    pub async fn event(&self, id: u64) -> Result<Option<StoredEvent>, AuditError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(to_i64(id))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| self.event_from_row(r).map(|(e, _)| e))
            .transpose()
    }

    /// Stored leaf hashes of events `from..to`, in order.
    pub async fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, AuditError> {
        fetch_leaf_hashes(&self.pool, from, to).await
    }

    /// The newest signed head.
    pub async fn latest_head(&self) -> Result<Option<TreeHead>, AuditError> {
        let row = sqlx::query(
            "SELECT tree_size, root, signed_at_ms, key_id, signature FROM audit_tree_heads \
             ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(head_from_row).transpose()
    }

    /// The head signed at exactly `tree_size`, if one was.
    pub async fn head_at(&self, tree_size: u64) -> Result<Option<TreeHead>, AuditError> {
        let row = sqlx::query(
            "SELECT tree_size, root, signed_at_ms, key_id, signature FROM audit_tree_heads \
             WHERE tree_size = $1",
        )
        .bind(to_i64(tree_size))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(head_from_row).transpose()
    }

    /// Heads with `tree_size >= from`, ascending, at most `limit`.
    pub async fn heads_from(&self, from: u64, limit: u32) -> Result<Vec<TreeHead>, AuditError> {
        let rows = sqlx::query(
            "SELECT tree_size, root, signed_at_ms, key_id, signature FROM audit_tree_heads \
             WHERE tree_size >= $1 ORDER BY tree_size LIMIT $2",
        )
        .bind(to_i64(from))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(head_from_row).collect()
    }

    /// Refreshes the planner's statistics (the node runs it hourly; query
    /// plans over millions of rows depend on them).
    pub async fn analyze(&self) -> Result<(), AuditError> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
        self.pool.close().await;
    }
}

/// Leaf hashes of `from..to`; a gap is reported as damage, not skipped.
pub(crate) async fn fetch_leaf_hashes<'e, E>(
    exec: E,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, AuditError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT id, leaf_hash FROM audit_events WHERE id >= $1 AND id < $2 ORDER BY id",
    )
    .bind(to_i64(from))
    .bind(to_i64(to))
    .fetch_all(exec)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (expected, row) in (from..).zip(&rows) {
        let id: i64 = row.try_get(0)?;
        if id as u64 != expected {
            return Err(AuditError::Corrupt(format!(
                "event {expected} is missing; run `prividium audit verify`"
            )));
        }
        out.push(hash_col(row, 1)?);
    }
    if out.len() as u64 != to.saturating_sub(from) {
        return Err(AuditError::Corrupt(format!(
            "events {}..{to} are missing; run `prividium audit verify`",
            from + out.len() as u64
        )));
    }
    Ok(out)
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64, what: &str) -> Result<u64, AuditError> {
    u64::try_from(v).map_err(|_| AuditError::Corrupt(format!("negative {what}: {v}")))
}

fn hash_col(row: &AnyRow, i: usize) -> Result<Hash, AuditError> {
    let bytes: Vec<u8> = row.try_get(i)?;
    bytes
        .try_into()
        .map_err(|_| AuditError::Corrupt("a stored hash is not 32 bytes".into()))
}

/// Decodes `tree_size, frontier, pruned_to, checkpoint` (the first four
/// columns of [`READ_STATE`]) from a row of either driver.
pub(crate) fn state_from_row<R>(row: &R) -> Result<LogState, AuditError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let size = to_u64(row.try_get(0)?, "tree size")?;
    let frontier: Vec<u8> = row.try_get(1)?;
    let pruned = to_u64(row.try_get(2)?, "prune point")?;
    let checkpoint: Vec<u8> = row.try_get(3)?;
    let bad = |what| AuditError::Corrupt(format!("audit_state {what} does not match its size"));
    Ok(LogState {
        tree_size: size,
        frontier: Frontier::from_parts(size, &frontier).ok_or_else(|| bad("frontier"))?,
        checkpoint: Frontier::from_parts(pruned, &checkpoint).ok_or_else(|| bad("checkpoint"))?,
    })
}

impl AuditDb {
    /// Decodes a row selected with [`EVENT_COLUMNS`], opening its sealed
    /// fields when it has them.
    pub(crate) fn event_from_row(&self, row: &AnyRow) -> Result<(StoredEvent, Hash), AuditError> {
        let mut event = StoredEvent {
            id: to_u64(row.try_get(0)?, "event id")?,
            time_us: row.try_get(1)?,
            actor_type: row.try_get(2)?,
            actor_id: row.try_get(3)?,
            organization: row.try_get(4)?,
            action: row.try_get(5)?,
            resource: row.try_get(6)?,
            outcome: row.try_get(7)?,
            rule_id: row.try_get(8)?,
            request_id: row.try_get(9)?,
            trace_id: row.try_get(10)?,
            source_ip: row.try_get(11)?,
            details: row.try_get(12)?,
        };
        // Resource searches go through this column alone: a key edited to
        // differ from its resource would hide the row from them unnoticed.
        // Checked on the stored form, before any sealed fields are opened.
        let key: Option<&str> = row.try_get(16)?;
        if key != event.resource.as_deref().map(resource_key) {
            return Err(AuditError::BadRow {
                event: event.id,
                reason: "altered: its resource_key column does not match its resource".into(),
            });
        }
        let sealed: Option<Vec<u8>> = row.try_get(14)?;
        if let Some(sealed) = sealed {
            let Some(sealing) = &self.sealing else {
                return Err(AuditError::Unavailable(format!(
                    "event {} is sealed at rest; open the log with the appliance's data keys",
                    event.id
                )));
            };
            sealing.open(&mut event, &sealed, row.try_get(15)?)?;
        }
        Ok((event, hash_col(row, 13)?))
    }
}

fn head_from_row(row: &AnyRow) -> Result<TreeHead, AuditError> {
    Ok(TreeHead {
        tree_size: to_u64(row.try_get(0)?, "head size")?,
        root: hash_col(row, 1)?,
        signed_at_ms: to_u64(row.try_get(2)?, "head time")?,
        key_id: row.try_get(3)?,
        signature: row.try_get(4)?,
    })
}
