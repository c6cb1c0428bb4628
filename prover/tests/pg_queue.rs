//! The Postgres proving queue as the node and worker processes share it:
//! concurrent workers never get the same batch, leases run out, witnesses
//! are sealed and deleted after export, and rotation re-seals them.
//! Needs the machine's Postgres (127.0.0.1:5432, trust auth);
//! `PRIVIDIUM_TEST_PG` overrides the server URL.

use alloy_primitives::Bytes;
use encryption::testing::cipher;
use prover::{
    CutterQueue, ExporterQueue, Job, JobState, Lease, Made, PgJobStore, ProverError, QueueView,
    Retry, WorkerQueue,
};
use sqlx::{Connection, Executor};
use std::sync::{atomic::AtomicBool, Arc};
use storage::SharedCipher;
use test_support::ScratchPg;

/// A row's witness and error as stored.
type Sealed = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A fresh database, dropped at the end.
struct Db(ScratchPg);

impl Db {
    fn fresh() -> Self {
        Self(ScratchPg::create("prividium_queue"))
    }

    fn url(&self) -> String {
        self.0.url()
    }

    fn queue(&self, cipher: Option<SharedCipher>) -> PgJobStore {
        PgJobStore::connect(&self.url(), 7777, cipher).unwrap()
    }

    fn exec(&self, sql: &str) {
        self.0.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.url()).await.unwrap();
            c.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .unwrap();
        });
    }

    fn has_witness(&self, batch: i64) -> bool {
        self.0.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.url()).await.unwrap();
            let w: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT witness FROM prover_jobs WHERE batch_number = $1")
                    .bind(batch)
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            w.is_some()
        })
    }

    /// Every witness and error as stored, concatenated.
    fn raw(&self) -> Vec<u8> {
        self.0.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.url()).await.unwrap();
            let rows: Vec<Sealed> = sqlx::query_as("SELECT witness, last_error FROM prover_jobs")
                .fetch_all(&mut c)
                .await
                .unwrap();
            rows.into_iter()
                .flat_map(|(w, e)| w.into_iter().chain(e).flatten())
                .collect()
        })
    }
}

fn job(n: u64) -> Job {
    Job {
        batch_number: n,
        first_block: n * 10 - 9,
        last_block: n * 10,
        outputs: Bytes::from(vec![n as u8; 8]),
        state: JobState::Queued { not_before_ms: 0 },
        attempts: 0,
        last_error: None,
        created_ms: 1,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn workers_share_the_queue_without_taking_the_same_batch() {
    let db = Db::fresh();
    let key = cipher(&[1], 1);
    let ledger: Arc<dyn storage::KvStore> = Arc::new(storage::MemoryStore::default());
    let node = db.queue(Some(key.clone())).with_ledger(ledger.clone());
    assert_eq!(node.last_cut().unwrap(), None);
    for n in 1..=4 {
        node.insert(&job(n), format!("secret witness {n}").as_bytes())
            .unwrap();
    }
    assert!(
        node.insert(&job(6), b"gap").is_err(),
        "batch numbers are contiguous"
    );
    assert_eq!(node.last_cut().unwrap(), Some((4, 40)));
    assert!(!contains(&db.raw(), b"secret witness"), "witnesses sealed");

    // Four worker processes claim at the same moment: each gets its own
    // batch (a fifth, racing them, gets none).
    let url = db.url();
    let start = std::sync::Barrier::new(5);
    let claimed: Vec<(u64, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let (url, key, start) = (url.clone(), key.clone(), &start);
                s.spawn(move || {
                    let q = PgJobStore::connect(&url, 7777, Some(key)).unwrap();
                    start.wait();
                    q.claim(Lease::new(&format!("w{i}"), 1_000, 500))
                        .unwrap()
                        .map(|(j, w)| (j.batch_number, w))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    let mut batches: Vec<u64> = claimed.iter().map(|c| c.0).collect();
    batches.sort_unstable();
    assert_eq!(batches, vec![1, 2, 3, 4]);
    for (n, w) in &claimed {
        assert_eq!(w, format!("secret witness {n}").as_bytes());
    }
    assert!(
        node.claim(Lease::new("w9", 1_000, 500)).unwrap().is_none(),
        "all leased"
    );

    // A worker that dies loses its lease; the late one cannot finish.
    let holder = |n: u64| match node.job(n).unwrap().unwrap().state {
        JobState::Proving { worker, .. } => worker,
        other => panic!("{other:?}"),
    };
    let first = holder(1);
    let (j, _) = node
        .claim(Lease::new("w9", 2_000, 60_000))
        .unwrap()
        .unwrap();
    assert_eq!((j.batch_number, j.attempts), (1, 2));
    assert!(matches!(
        node.finish(1, &first, Made::new(b"late", 1, None)),
        Err(ProverError::LeaseLost(1))
    ));
    node.finish(1, "w9", Made::new(b"proof 1", 900, Some(42)))
        .unwrap();
    assert_eq!(
        node.job(1).unwrap().unwrap().state,
        JobState::Proven {
            proving_ms: 900,
            cycles: Some(42),
            worker: "w9".into()
        }
    );
    assert_eq!(node.proof(1).unwrap().as_deref(), Some(&b"proof 1"[..]));

    // A failure goes back with backoff; its text is sealed too.
    let second = holder(2);
    node.fail(2, &second, Retry::new("secret error text", 2_000, 5_000))
        .unwrap();
    assert!(!contains(&db.raw(), b"secret error"));
    let j = node.job(2).unwrap().unwrap();
    assert_eq!(
        j.state,
        JobState::Queued {
            not_before_ms: 7_000
        }
    );
    assert_eq!(j.last_error.as_deref(), Some("secret error text"));
    // Without the keys the error text stays unreadable, but the job is
    // still there to be proven (an error only informs).
    let keyless = db.queue(None);
    let seen = keyless.job(2).unwrap().unwrap().last_error.unwrap();
    assert!(
        seen.contains("unreadable") && !seen.contains("secret"),
        "{seen}"
    );
    let wrong = PgJobStore::connect(&db.url(), 7777, Some(cipher(&[9], 9))).unwrap();
    let seen = wrong.job(2).unwrap().unwrap().last_error.unwrap();
    assert!(
        seen.contains("unreadable"),
        "another appliance's keys: {seen}"
    );

    // Export deletes the witness; a refused proof requeues the batch.
    node.reject(1, Retry::new("bad proof", 3_000, 0)).unwrap();
    assert_eq!(node.proof(1).unwrap(), None);
    let (j, w) = node
        .claim(Lease::new("w9", 3_000, 60_000))
        .unwrap()
        .unwrap();
    assert_eq!(
        (j.batch_number, w.as_slice()),
        (1, &b"secret witness 1"[..])
    );
    node.finish(1, "w9", Made::new(b"proof 1b", 800, None))
        .unwrap();
    assert_eq!(node.exported_through().unwrap(), 0);
    node.set_exported(1).unwrap();
    assert_eq!(node.exported_through().unwrap(), 1);
    assert!(!db.has_witness(1), "an exported batch's witness is deleted");
    assert!(db.has_witness(2));

    // A queue user rewriting a batch's outputs (a worker holds the keys and
    // may write to the queue) is caught by the node's ledger.
    db.exec("UPDATE prover_jobs SET outputs = '\\x00' WHERE batch_number = 3");
    let e = node.job(3).unwrap_err().to_string();
    assert!(e.contains("not the ones this node cut"), "{e}");
    assert!(
        keyless.job(3).is_ok(),
        "a store without the ledger cannot tell"
    );

    // A claim this worker cannot open goes straight back to the queue.
    let wrong_claim = wrong.claim(Lease::new("stale", 10_000, 3_600_000));
    assert!(wrong_claim.is_err());
    let j = node.job(2).unwrap().unwrap();
    assert!(
        matches!(j.state, JobState::Queued { not_before_ms } if not_before_ms < 3_600_000),
        "not held for the lease: {j:?}"
    );

    // Survives reopening: another connection sees the same queue.
    let reopened = db.queue(Some(key));
    assert_eq!(reopened.last_cut().unwrap(), Some((4, 40)));
    assert_eq!(reopened.jobs(1, 10).unwrap().len(), 4);
}

#[test]
fn rotation_reseals_witnesses_so_the_old_key_can_go() {
    let db = Db::fresh();
    let old = db.queue(Some(cipher(&[1], 1)));
    for n in 1..=3 {
        old.insert(&job(n), format!("witness {n}").as_bytes())
            .unwrap();
    }
    let (j, _) = old.claim(Lease::new("w", 1, 60_000)).unwrap().unwrap();
    old.fail(j.batch_number, "w", Retry::new("retry me", 2, 0))
        .unwrap();

    let rotated = db.queue(Some(cipher(&[1, 2], 2)));
    let count = rotated.reseal(&AtomicBool::new(false)).unwrap();
    assert_eq!((count.examined, count.resealed), (3, 3));
    let again = rotated.reseal(&AtomicBool::new(false)).unwrap();
    assert_eq!(again.resealed, 0, "nothing left under v1");

    // With v1 retired, every witness and error still opens.
    let retired = db.queue(Some(cipher(&[2], 2)));
    assert_eq!(
        retired.job(1).unwrap().unwrap().last_error.as_deref(),
        Some("retry me")
    );
    for n in 1..=3 {
        let (j, w) = retired
            .claim(Lease::new("w2", 10, 60_000))
            .unwrap()
            .unwrap();
        assert_eq!(
            (j.batch_number, w),
            (n, format!("witness {n}").into_bytes())
        );
    }
}
