//! The asynchronous writer: emitters hand events to a bounded queue and go
//! on; one task commits them in batches. Recording into a full queue is
//! refused, never waited on, so the caller can fail closed instead of
//! acting unaudited (requests may wait for room beforehand, see below).
//!
//! The queue is shared fairly. Events recorded on behalf of a requester
//! ([`AuditLog::record_shared`]) may fill the queue only up to the capacity
//! less a reserve, and each actor may have at most `per_actor` of them
//! waiting: one principal's burst is refused long before it can refuse
//! anyone else's. The reserve is for the node's own events
//! ([`AuditLog::record`]): decisions made while a block is built, batch and
//! key events, which readers' traffic can therefore never crowd out.
//!
//! Before a request is served, the front door may wait a bounded time for
//! its requester's share to drain ([`AuditLog::wait_for_room`]): a sustained
//! load the database cannot keep up with then slows its senders down
//! instead of having its requests refused, and a brief stall of the database
//! (a checkpoint, a lock, a slow disk) is ridden out. Refusal stays the
//! answer once the wait runs out, and at once while commits fail (the
//! database unreachable): waiting would only delay the same answer.

use crate::{
    event::{AuditEvent, StoredEvent},
    head::{HeadSigner, TreeHead},
    store::AuditDb,
    AuditError,
};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, oneshot, watch};

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Events that may wait for the database.
    pub queue_capacity: usize,
    /// Most events committed in one transaction.
    pub batch_max: usize,
    /// Where the latest signed head is also kept outside the database, so a
    /// database-only intruder cannot roll the log back unnoticed.
    pub witness: Option<PathBuf>,
    /// Places only the node's own events may take (see the module docs).
    pub reserved: usize,
    /// Most requesters' events one actor may have waiting.
    pub per_actor: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 65_536,
            // Under load, bigger batches dirty each index page once for
            // many events (write amplification dominates at millions of rows).
            batch_max: 16_384,
            witness: None,
            reserved: 8_192,
            per_actor: 4_096,
        }
    }
}

// Events are the hot path and flushes rare: boxing the large variant would
// cost an allocation per event to save queue memory nobody is short of.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// An event, and the actor whose share it counts against.
    Event(StoredEvent, Option<String>),
    Flush(oneshot::Sender<Option<TreeHead>>),
}

#[derive(Debug, Default)]
struct Stats {
    refused: AtomicU64,
    committed: AtomicU64,
    failing: AtomicBool,
    /// When the commit under way started (µs since the epoch; 0: none).
    commit_since_us: std::sync::atomic::AtomicI64,
}

/// Requesters' events waiting, in all and by actor.
#[derive(Debug, Default)]
struct Shares {
    queued: AtomicUsize,
    by_actor: Mutex<HashMap<String, usize>>,
    /// Woken each time the writer takes events off the queue.
    drained: tokio::sync::Notify,
}

impl Shares {
    fn release(&self, actor: &str) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        let mut by = self.by_actor.lock();
        if let Some(n) = by.get_mut(actor) {
            *n -= 1;
            if *n == 0 {
                by.remove(actor);
            }
        }
    }
}

/// Handle to the audit log; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    /// The latest signed head, as committed.
    head: watch::Receiver<Option<TreeHead>>,
    stats: Arc<Stats>,
    shares: Arc<Shares>,
    shared_capacity: usize,
    per_actor: usize,
}

/// A place in the queue held for one event of `actor`, taken before the
/// work it will record is done, so that work can fail closed up front.
/// Dropping it unused gives the place back.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<mpsc::OwnedPermit<Msg>>,
    actor: String,
    shares: Arc<Shares>,
}

impl Reservation {
    /// Queues `event` (timed now) in the reserved place.
    pub fn record(mut self, event: AuditEvent) -> Result<(), AuditError> {
        event.validate().map_err(AuditError::Invalid)?;
        let permit = self.permit.take().expect("a reservation is used once");
        let actor = std::mem::take(&mut self.actor);
        permit.send(Msg::Event(
            StoredEvent::pending(event, crate::time::now_us()),
            Some(actor),
        ));
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.permit.is_some() {
            self.shares.release(&self.actor);
            self.shares.drained.notify_waiters();
        }
    }
}

/// How [`AuditLog::wait_for_room`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    /// There was room at once (the usual case: no waiting, no allocation).
    Free,
    /// Room came after waiting this long.
    AfterWait(Duration),
    /// None came in time, or the database is failing or the writer gone:
    /// the request goes on and its events are refused as usual.
    None,
}

/// Counters for health checks and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriterStats {
    /// Events refused because the queue was full or the writer gone.
    pub refused: u64,
    /// Events committed since start.
    pub committed: u64,
    /// The last commit attempt failed (the database is unreachable).
    pub failing: bool,
    /// Events waiting.
    pub queued: usize,
    /// How long the commit under way has been waiting for the database
    /// (0 when none is): a locked or hung database shows here before the
    /// queue fills.
    pub commit_waiting_ms: u64,
}

impl AuditLog {
    /// Starts the writer task on the current runtime.
    pub fn start(
        db: AuditDb,
        signer: Arc<HeadSigner>,
        config: WriterConfig,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let capacity = config.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let stats = Arc::new(Stats::default());
        let shares = Arc::new(Shares::default());
        let (head_tx, head) = watch::channel(None);
        let log = Self {
            tx,
            head,
            stats: stats.clone(),
            shared_capacity: capacity.saturating_sub(config.reserved).max(1),
            per_actor: config.per_actor.max(1),
            shares: shares.clone(),
        };
        let task = tokio::spawn(run(db, signer, config, rx, stats, shares, head_tx));
        (log, task)
    }

    /// The latest signed head the writer committed (at start, the stored
    /// one), without asking the database: what the prover binds a batch
    /// to. `None` while the log is empty or the writer is still starting.
    pub fn latest_head(&self) -> Option<TreeHead> {
        self.head.borrow().clone()
    }

    /// Queues the node's own `event`, timed now, using the whole queue
    /// (the reserve included). Refused (fail closed) when it is full.
    pub fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        event.validate().map_err(AuditError::Invalid)?;
        self.tx
            .try_send(Msg::Event(
                StoredEvent::pending(event, crate::time::now_us()),
                None,
            ))
            .map_err(|e| self.refused(e))
    }

    /// Queues `event` on behalf of a requester: refused when requesters
    /// already fill their part of the queue, or its actor its share.
    pub fn record_shared(&self, event: AuditEvent) -> Result<(), AuditError> {
        event.validate().map_err(AuditError::Invalid)?;
        self.reserve(&event.actor_id.clone())?.record(event)
    }

    /// Holds a place for one of `actor`'s events, under the same rules as
    /// [`record_shared`](Self::record_shared).
    pub fn reserve(&self, actor: &str) -> Result<Reservation, AuditError> {
        if self.shares.queued.fetch_add(1, Ordering::Relaxed) >= self.shared_capacity {
            self.shares.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AuditError::Unavailable(
                "the audit queue's share for requests is full".into(),
            ));
        }
        {
            let mut by = self.shares.by_actor.lock();
            let n = by.entry(actor.to_owned()).or_default();
            if *n >= self.per_actor {
                drop(by);
                self.shares.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(AuditError::Unavailable(format!(
                    "{actor} has {} audit events waiting already",
                    self.per_actor
                )));
            }
            *n += 1;
        }
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(Reservation {
                permit: Some(permit),
                actor: actor.to_owned(),
                shares: self.shares.clone(),
            }),
            Err(e) => {
                self.shares.release(actor);
                Err(self.refused(match e {
                    mpsc::error::TrySendError::Full(_) => mpsc::error::TrySendError::Full(()),
                    mpsc::error::TrySendError::Closed(_) => mpsc::error::TrySendError::Closed(()),
                }))
            }
        }
    }

    /// Waits at most `within` until `actor`'s next `events` fit below the
    /// high-water marks: three quarters of the requesters' part of the
    /// queue, and three quarters of one actor's share. The quarter above
    /// the marks is for requests already past this point, so they are not
    /// refused while others wait (with a share under four the mark is the
    /// whole share). Marks are looked at, not held: requests let through by
    /// one drain may together pass the mark, and the refusal at recording
    /// still bounds them. Returns at once while the database is failing or
    /// the writer has stopped: waiting would not help.
    pub async fn wait_for_room(&self, actor: &str, events: usize, within: Duration) -> Room {
        if self.has_room(actor, events) {
            return Room::Free;
        }
        let started = tokio::time::Instant::now();
        // A day stands in for "forever" (the setting allows a minute).
        let deadline = started + within.min(Duration::from_secs(86_400));
        loop {
            if self.stats.failing.load(Ordering::Relaxed) || self.tx.is_closed() {
                return Room::None;
            }
            // Registered before the check, so a drain between the check
            // and the wait still wakes it.
            let mut drained = std::pin::pin!(self.shares.drained.notified());
            drained.as_mut().enable();
            if self.has_room(actor, events) {
                return Room::AfterWait(started.elapsed());
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return if self.has_room(actor, events) {
                    Room::AfterWait(started.elapsed())
                } else {
                    Room::None
                };
            }
        }
    }

    fn has_room(&self, actor: &str, events: usize) -> bool {
        let below = |limit: usize, used: usize| {
            let mark = (limit - limit / 4).max(1);
            used + events.clamp(1, mark) <= mark
        };
        below(
            self.shared_capacity,
            self.shares.queued.load(Ordering::Relaxed),
        ) && below(
            self.per_actor,
            self.shares.by_actor.lock().get(actor).copied().unwrap_or(0),
        )
    }

    fn refused<T>(&self, e: mpsc::error::TrySendError<T>) -> AuditError {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        AuditError::Unavailable(match e {
            mpsc::error::TrySendError::Full(_) => "the audit queue is full".into(),
            mpsc::error::TrySendError::Closed(_) => "the audit writer stopped".into(),
        })
    }

    /// Waits until every event queued before this call is committed, and
    /// returns the head that covers them (None while the log is empty).
    pub async fn flush(&self) -> Result<Option<TreeHead>, AuditError> {
        let (tx, rx) = oneshot::channel();
        let gone = || AuditError::Unavailable("the audit writer stopped".into());
        self.tx.send(Msg::Flush(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Current counters.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            refused: self.stats.refused.load(Ordering::Relaxed),
            committed: self.stats.committed.load(Ordering::Relaxed),
            failing: self.stats.failing.load(Ordering::Relaxed),
            queued: self.tx.max_capacity() - self.tx.capacity(),
            commit_waiting_ms: match self.stats.commit_since_us.load(Ordering::Relaxed) {
                0 => 0,
                since => (crate::time::now_us().saturating_sub(since) / 1_000).max(0) as u64,
            },
        }
    }
}

async fn run(
    db: AuditDb,
    signer: Arc<HeadSigner>,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Msg>,
    stats: Arc<Stats>,
    shares: Arc<Shares>,
    head: watch::Sender<Option<TreeHead>>,
) {
    let mut msgs = Vec::with_capacity(config.batch_max);
    let mut latest: Option<TreeHead> = db.latest_head().await.ok().flatten();
    head.send_replace(latest.clone());
    let mut witnessed = Instant::now() - Duration::from_secs(60);
    loop {
        if rx.recv_many(&mut msgs, config.batch_max).await == 0 {
            break;
        }
        let mut events = Vec::with_capacity(msgs.len());
        let mut waiters = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Event(e, actor) => {
                    if let Some(a) = actor {
                        shares.release(&a);
                    }
                    events.push(e)
                }
                Msg::Flush(w) => waiters.push(w),
            }
        }
        shares.drained.notify_waiters();
        if !events.is_empty() {
            let n = events.len() as u64;
            latest = Some(commit(&db, &signer, &mut events, &stats, &shares).await);
            stats.committed.fetch_add(n, Ordering::Relaxed);
            head.send_replace(latest.clone());
        }
        // Witness at most once a second, and always when someone waits.
        if let (Some(path), Some(head)) = (&config.witness, &latest) {
            if !waiters.is_empty() || witnessed.elapsed() >= Duration::from_secs(1) {
                write_witness(path, head);
                witnessed = Instant::now();
            }
        }
        for w in waiters {
            let _ = w.send(latest.clone());
        }
    }
    if let (Some(path), Some(head)) = (&config.witness, &latest) {
        write_witness(path, head);
    }
}

/// Commits `events`, retrying until the database takes them: events are
/// never dropped, and meanwhile the queue fills and new requests are refused.
async fn commit(
    db: &AuditDb,
    signer: &HeadSigner,
    events: &mut [StoredEvent],
    stats: &Stats,
    shares: &Shares,
) -> TreeHead {
    let mut delay = Duration::from_millis(100);
    stats
        .commit_since_us
        .store(crate::time::now_us(), Ordering::Relaxed);
    loop {
        match db.append(events, signer).await {
            Ok(head) => {
                stats.commit_since_us.store(0, Ordering::Relaxed);
                if stats.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("audit database reachable again");
                }
                return head;
            }
            Err(e) => {
                if !stats.failing.swap(true, Ordering::Relaxed) {
                    // Waiting requests stop waiting: no room is coming.
                    shares.drained.notify_waiters();
                    tracing::error!(error = %e, events = events.len(), "audit append failed; retrying (requests are refused once the queue is full)");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn write_witness(path: &std::path::Path, head: &TreeHead) {
    let json = serde_json::to_vec_pretty(head).unwrap_or_default();
    if let Err(e) = storage::write_atomic(path, &json) {
        tracing::warn!(path = %path.display(), error = %e, "could not write the audit head witness");
    }
}

/// Reads the witness file, if any.
pub fn read_witness(path: &std::path::Path) -> Result<Option<TreeHead>, AuditError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| AuditError::Corrupt(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::Corrupt(format!("{}: {e}", path.display()))),
    }
}
