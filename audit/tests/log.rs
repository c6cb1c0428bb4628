//! The audit log against real databases: SQLite and the machine's Postgres.

#[path = "log_cases/sealed.rs"]
mod sealed;
mod support;

use audit::{
    prove_consistency, prove_inclusion, verify_log, AuditLog, Filter, Outcome, WriterConfig,
};
use support::{event, signer, TestDb};

async fn fill(t: &TestDb, n: u64, per_batch: u64) -> std::sync::Arc<audit::HeadSigner> {
    let s = signer();
    let mut i = 0;
    while i < n {
        let mut batch: Vec<_> = (i..(i + per_batch).min(n))
            .map(|k| {
                audit::StoredEvent::pending(event(k), 1_700_000_000_000_000 + k as i64 * 1_000_000)
            })
            .collect();
        i += batch.len() as u64;
        t.db.append(&mut batch, &s).await.unwrap();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_filter_and_page_on_both_databases() {
    for t in TestDb::both().await {
        let s = signer();
        let (log, _task) = AuditLog::start(t.db.clone(), s.clone(), WriterConfig::default());
        for i in 0..60 {
            log.record(event(i)).unwrap();
        }
        let head = log.flush().await.unwrap().unwrap();
        assert_eq!(head.tree_size, 60, "{}", t.label());
        assert!(head.verify(&s.public_key()));
        // What the prover binds a batch to, without a database read.
        assert_eq!(log.latest_head(), Some(head.clone()), "{}", t.label());

        let db = &t.db;
        let page = |f: Filter| async move { db.query(&f).await.unwrap() };
        let by_actor = page(Filter {
            actor: Some("User:u1".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await;
        assert_eq!(by_actor.events.len(), 20);
        assert!(by_actor.events.iter().all(|e| e.actor_id == "User:u1"));

        let policy = page(Filter {
            action: Some("policy.*".into()),
            outcome: Some(Outcome::Deny),
            limit: Some(1000),
            ..Default::default()
        })
        .await;
        // i % 4 == 1 is policy.denied (odd, so deny); policy.allowed is even.
        assert_eq!(policy.events.len(), 15, "{}", t.label());
        assert!(policy.events.iter().all(|e| e.action == "policy.denied"));

        // Pagination walks everything exactly once, in both directions.
        for newest_first in [false, true] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let p = page(Filter {
                    after,
                    newest_first,
                    limit: Some(7),
                    ..Default::default()
                })
                .await;
                seen.extend(p.events.iter().map(|e| e.id));
                match p.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            let mut expected: Vec<u64> = (0..60).collect();
            if newest_first {
                expected.reverse();
            }
            assert_eq!(seen, expected);
        }

        let bad =
            t.db.query(&Filter {
                limit: Some(5000),
                ..Default::default()
            })
            .await;
        assert!(bad.is_err());
        t.drop_db().await;
    }
}

/// A log written before migrations 0004 and 0005 (resources indexed whole,
/// no `resource_key` column) gets the column filled and the prefix index
/// when the node next opens it; a lookup by resource still finds exactly
/// the events about it, old ones included, and `audit verify` agrees with
/// every filled key. Two resources share their first 16 characters, some of
/// them beyond ASCII: the database's backfill and the writer must count the
/// prefix in characters alike, and the whole value must tell them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_from_before_the_resource_key_migrates_and_answers_resource_lookups() {
    let long = ["Ledger:Zürich/€/账户/0001", "Ledger:Zürich/€/账户/0002"];
    for t in TestDb::both().await {
        let s = fill(&t, 300, 100).await;
        let mut more: Vec<_> = long
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let k = 300 + i as u64;
                let time = 1_700_000_000_000_000 + k as i64 * 1_000_000;
                audit::StoredEvent::pending(event(k).resource(*r), time)
            })
            .collect();
        t.db.append(&mut more, &s).await.unwrap();
        t.exec("DROP INDEX audit_events_resource").await;
        t.exec("ALTER TABLE audit_events DROP COLUMN resource_key")
            .await;
        t.exec("CREATE INDEX audit_events_resource ON audit_events (resource, id)")
            .await;
        t.exec("DELETE FROM _sqlx_migrations WHERE version >= 4")
            .await;

        let reopened = audit::AuditDb::connect(&t.url).await.unwrap();
        let status = audit::schema_status(&t.url, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        assert!(status.pending().is_empty(), "{}: {status:?}", t.label());
        for (resource, expected) in [
            ("Node:7", vec![7]),
            ("Node:299", vec![299]),
            ("Node:300", vec![]),
            (long[0], vec![300]),
            (long[1], vec![301]),
            ("Ledger:Zürich/€/账户/0003", vec![]),
        ] {
            let page = reopened
                .query(&Filter {
                    resource: Some(resource.into()),
                    limit: Some(10),
                    ..Default::default()
                })
                .await
                .unwrap();
            let ids: Vec<u64> = page.events.iter().map(|e| e.id).collect();
            assert_eq!(ids, expected, "{} {resource}", t.label());
        }
        let r = verify_log(&reopened, &s.public_key(), None).await.unwrap();
        assert!(r.ok(), "{}: {:?}", t.label(), r.finding);
        assert_eq!(r.events_checked, 302);
        reopened.close().await;
        t.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_convince_a_verifier_with_only_the_public_key() {
    for t in TestDb::both().await {
        let s = fill(&t, 37, 5).await;
        let key = s.public_key();
        for id in [0, 1, 17, 36] {
            let p = prove_inclusion(&t.db, id, None).await.unwrap();
            let e = t.db.event(id).await.unwrap().unwrap();
            p.verify(&key, Some(&e)).unwrap();
            let mut edited = e.clone();
            edited.outcome = "allow".into();
            edited.actor_id = "User:someone-else".into();
            assert!(p.verify(&key, Some(&edited)).is_err());
            // Proof against an older head too.
            let old = prove_inclusion(&t.db, 0, Some(5)).await.unwrap();
            old.verify(&key, None).unwrap();
        }
        // Time bounds (inclusive from, exclusive to) select exactly the
        // events recorded in between.
        let t0 = 1_700_000_000_000_000i64;
        let window =
            t.db.query(&Filter {
                from_us: Some(t0 + 10_000_000),
                to_us: Some(t0 + 20_000_000),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<u64> = window.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, (10..20).collect::<Vec<_>>());
        let late = Filter {
            from_us: Some(t0 + 1_000_000_000),
            ..Default::default()
        };
        assert!(t.db.query(&late).await.unwrap().events.is_empty());
        let c = prove_consistency(&t.db, 10, None).await.unwrap();
        assert_eq!((c.old.tree_size, c.new.tree_size), (10, 37));
        c.verify(&key).unwrap();
        assert!(c
            .verify(&audit::HeadSigner::ephemeral().public_key())
            .is_err());
        assert!(
            prove_consistency(&t.db, 11, None).await.is_err(),
            "no head at 11"
        );
        let report = verify_log(&t.db, &key, None).await.unwrap();
        assert!(report.ok(), "{:?}", report.finding);
        assert_eq!(report.events_checked, 37);
        assert_eq!(report.heads_checked, 8);
        t.drop_db().await;
    }
}

/// Each way an intruder with database access could rewrite history, and the
/// event `audit verify` must name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tamper_case_is_named() {
    let cases: &[(&str, &[&str], Option<u64>, &str)] = &[
        (
            "edited column",
            &["UPDATE audit_events SET outcome = 'allow' WHERE id = 13"],
            Some(13),
            "altered",
        ),
        (
            "edited details",
            &["UPDATE audit_events SET details = '{\"n\":99}' WHERE id = 20"],
            Some(20),
            "altered",
        ),
        (
            "deleted row",
            &["DELETE FROM audit_events WHERE id = 7"],
            Some(7),
            "missing",
        ),
        (
            "deleted tail",
            &["DELETE FROM audit_events WHERE id >= 27"],
            Some(27),
            "deleted from the end",
        ),
        (
            "reordered rows",
            &[
                "UPDATE audit_events SET id = -1 WHERE id = 4",
                "UPDATE audit_events SET id = 4 WHERE id = 5",
                "UPDATE audit_events SET id = 5 WHERE id = -1",
            ],
            Some(4),
            "altered",
        ),
        (
            "forged head",
            &["UPDATE audit_tree_heads SET root = (SELECT root FROM audit_tree_heads WHERE tree_size = 5) \
               WHERE tree_size = 10"],
            None,
            "bad signature",
        ),
        (
            // Resource searches use only the indexed prefix: an edited one
            // would hide the event from them while every hash still held.
            "edited resource key",
            &["UPDATE audit_events SET resource_key = 'Node:1' WHERE id = 11"],
            Some(11),
            "resource_key column does not match",
        ),
        (
            "inserted row",
            &["INSERT INTO audit_events SELECT 30, time_us, actor_type, actor_id, organization, action, \
               resource, outcome, rule_id, request_id, trace_id, source_ip, details, leaf_hash, sealed, \
               key_version, resource_key FROM audit_events WHERE id = 29"],
            Some(30),
            "not covered",
        ),
    ];
    for (name, sql, first_bad, says) in cases {
        for t in TestDb::both().await {
            let s = fill(&t, 30, 5).await;
            let clean = verify_log(&t.db, &s.public_key(), None).await.unwrap();
            assert!(clean.ok());
            for stmt in *sql {
                t.exec(stmt).await;
            }
            let r = verify_log(&t.db, &s.public_key(), None).await.unwrap();
            let f = r
                .finding
                .unwrap_or_else(|| panic!("{name} on {} went unnoticed", t.label()));
            assert_eq!(
                f.event,
                *first_bad,
                "{name} on {}: {}",
                t.label(),
                f.problem
            );
            assert!(
                f.problem.contains(says),
                "{name} on {}: {}",
                t.label(),
                f.problem
            );
            t.drop_db().await;
        }
    }
}

/// An intruder who also recomputes the leaf hash: the stored heads still
/// pin the edit to the batch it was in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_with_a_recomputed_leaf_hash_is_pinned_to_its_batch() {
    for t in TestDb::both().await {
        let s = fill(&t, 30, 5).await;
        let mut e = t.db.event(16).await.unwrap().unwrap();
        e.outcome = "allow".into();
        e.rule_id = Some("exec.admin.all".into());
        sqlx::query(
            "UPDATE audit_events SET outcome = $1, rule_id = $2, leaf_hash = $3 WHERE id = 16",
        )
        .bind(e.outcome.clone())
        .bind(e.rule_id.clone())
        .bind(e.leaf_hash().to_vec())
        .execute(t.db.pool())
        .await
        .unwrap();
        let f = verify_log(&t.db, &s.public_key(), None)
            .await
            .unwrap()
            .finding
            .expect("unnoticed");
        assert_eq!(f.event, Some(15), "{}", f.problem);
        assert!(
            f.problem
                .contains("events 15..20 do not match the signed head at 20"),
            "{}",
            f.problem
        );
        t.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_back_log_and_heads_together_is_caught_by_the_witness() {
    for t in TestDb::both().await {
        let s = fill(&t, 20, 5).await;
        let witness = t.db.latest_head().await.unwrap().unwrap();
        // Remove the last batch and its head: the database alone is
        // consistent again...
        t.exec("DELETE FROM audit_events WHERE id >= 15").await;
        t.exec("DELETE FROM audit_tree_heads WHERE tree_size = 20")
            .await;
        let mut edge = audit::merkle::Frontier::new();
        for leaf in t.db.leaf_hashes(0, 15).await.unwrap() {
            edge.push(leaf);
        }
        sqlx::query("UPDATE audit_state SET tree_size = 15, frontier = $1")
            .bind(edge.to_bytes())
            .execute(t.db.pool())
            .await
            .unwrap();
        let alone = verify_log(&t.db, &s.public_key(), None).await.unwrap();
        assert!(alone.ok(), "{:?}", alone.finding);
        // ...but not with the head the appliance kept outside it.
        let r = verify_log(&t.db, &s.public_key(), Some(&witness))
            .await
            .unwrap();
        let f = r.finding.expect("truncation went unnoticed");
        assert!(f.problem.contains("truncated"), "{}", f.problem);
        assert_eq!(f.event, Some(15));
        t.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_to_a_verifiable_checkpoint_and_respects_holds() {
    for t in TestDb::both().await {
        let s = fill(&t, 40, 4).await;
        let t0 = 1_700_000_000_000_000i64;
        // Hold events 10..12 (by time); retention would drop 0..25.
        let hold =
            t.db.place_hold(
                t0 + 10_000_000,
                t0 + 12_000_000,
                "case 42",
                "User:compliance",
            )
            .await
            .unwrap();
        let r = t.db.prune(t0 + 25_000_000).await.unwrap();
        assert_eq!((r.pruned, r.starts_at), (8, 8), "{r:?}");
        assert!(r.stopped_by.contains("legal hold"), "{r:?}");
        assert!(t.db.event(7).await.unwrap().is_none());
        assert!(t.db.event(10).await.unwrap().is_some());

        assert!(t.db.release_hold(hold).await.unwrap());
        assert!(!t.db.release_hold(hold).await.unwrap());
        let r = t.db.prune(t0 + 25_000_000).await.unwrap();
        // Rounded down to the signed head at 24.
        assert_eq!((r.pruned, r.starts_at), (16, 24), "{r:?}");

        let report = verify_log(&t.db, &s.public_key(), None).await.unwrap();
        assert!(report.ok(), "{:?}", report.finding);
        assert_eq!((report.starts_at, report.events_checked), (24, 16));
        let p = prove_inclusion(&t.db, 30, None).await.unwrap();
        p.verify(&s.public_key(), None).unwrap();
        assert!(prove_inclusion(&t.db, 3, None).await.is_err());

        // Tampering with the checkpoint is caught.
        t.exec("UPDATE audit_state SET checkpoint = (SELECT frontier FROM audit_state)")
            .await;
        let bad = verify_log(&t.db, &s.public_key(), None).await.unwrap();
        assert!(bad.finding.unwrap().problem.contains("checkpoint"));
        t.drop_db().await;
    }
}

/// Another connection takes the write lock: appends wait until it rolls
/// back.
async fn stall(t: &TestDb) -> sqlx::SqliteConnection {
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&t.url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_fills_the_queue_and_the_log_fails_closed_without_losing_events() {
    let t = TestDb::sqlite().await;
    let s = signer();
    let mut blocker = stall(&t).await;
    let config = WriterConfig {
        queue_capacity: 50,
        batch_max: 10,
        witness: Some(t.dir.path().join("head.json")),
        reserved: 10,
        per_actor: 20,
    };
    let (log, _task) = AuditLog::start(t.db.clone(), s.clone(), config);
    let mut accepted = 0u64;
    let mut refused = 0u64;
    for i in 0..200 {
        match log.record(event(i)) {
            Ok(()) => accepted += 1,
            Err(audit::AuditError::Unavailable(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0, "a full queue must refuse");
    assert!((50..=60).contains(&accepted), "{accepted}");
    assert_eq!(log.stats().refused, refused);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let head = log.flush().await.unwrap().unwrap();
    assert_eq!(
        head.tree_size, accepted,
        "every accepted event is committed"
    );
    let witness = audit::read_witness(&t.dir.path().join("head.json")).unwrap();
    assert_eq!(witness, Some(head));
    t.drop_db().await;
}

/// A writer with a queue of 100 (`reserved` of them the node's, `per_actor`
/// per requester, batches of 10) on a database `stall` holds, already stuck
/// committing one node event of its own: the whole queue is free and stays
/// where the test puts it. (A writer still idle takes its first batch, and
/// frees that batch's places, whenever it is scheduled: on a loaded machine
/// that came after the test had filled the requesters' part, and an event
/// the test expects refused got in.)
async fn stalled_log(
    t: &TestDb,
    reserved: usize,
    per_actor: usize,
) -> (AuditLog, sqlx::SqliteConnection) {
    let blocker = stall(t).await;
    let config = WriterConfig {
        queue_capacity: 100,
        batch_max: 10,
        witness: None,
        reserved,
        per_actor,
    };
    let (log, _task) = AuditLog::start(t.db.clone(), signer(), config);
    log.record(event(1_000_000)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stats = log.stats();
        if stats.queued == 0 && stats.commit_waiting_ms > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never took the first event: {stats:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (log, blocker)
}

/// Event `i`, recorded on behalf of `actor`.
fn by(actor: &str, i: u64) -> audit::AuditEvent {
    let mut e = event(i);
    e.actor_id = actor.to_owned();
    e
}

/// A stalled database lets the queue fill: one requester's burst stops at
/// its own share, another requester still gets in, and the node's own
/// events (block building, batches) still have the reserve when requesters
/// have used up their part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_requesters_burst_refuses_neither_other_requesters_nor_the_node() {
    let t = TestDb::sqlite().await;
    let (log, mut blocker) = stalled_log(&t, 40, 25).await;
    let mut flooder = 0u64;
    for i in 0..1_000 {
        if log.record_shared(by("ApiKey:k_flood", i)).is_ok() {
            flooder += 1;
        }
    }
    assert_eq!(flooder, 25, "its share and not one more");
    let mut other = 0u64;
    for i in 0..20 {
        if log.record_shared(by("User:idp:alice", i)).is_ok() {
            other += 1;
        }
    }
    assert_eq!(other, 20, "another requester is served in full");
    // Requesters now hold their part; a third one is refused…
    for i in 0..20 {
        let _ = log.record_shared(by(&format!("ApiKey:k_{i}"), i));
    }
    assert!(log.record_shared(by("ApiKey:k_late", 0)).is_err());
    // …but not the node.
    for i in 0..30 {
        log.record(event(i)).expect("the reserve is the node's");
    }
    // A reservation given back unused frees its place.
    let held = log.reserve("User:idp:alice").ok();
    drop(held);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let head = log.flush().await.unwrap().unwrap();
    // The writer's first event, the requesters' 60 places, the node's 30.
    assert_eq!(head.tree_size, 1 + 60 + 30, "nothing accepted is lost");
    t.drop_db().await;
}

/// A requester over its mark waits for the database instead of being
/// refused: the wait ends when the writer drains the queue; one that runs
/// out says so (its events then meet the usual refusal); another requester
/// does not wait at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_over_its_mark_waits_until_the_writer_drains() {
    use audit::Room;
    use std::time::{Duration, Instant};
    let t = TestDb::sqlite().await;
    let (log, mut blocker) = stalled_log(&t, 20, 40).await;
    let alice = "User:idp:alice";
    assert_eq!(
        log.wait_for_room(alice, 1, Duration::ZERO).await,
        Room::Free
    );
    // Alice fills her share (40) while the database is stalled, all of it
    // queued: over her mark (three quarters of 40).
    let mut accepted = 0u64;
    while log.record_shared(by(alice, accepted)).is_ok() {
        accepted += 1;
        assert!(accepted <= 40, "her share must stop her");
    }
    let started = Instant::now();
    assert_eq!(
        log.wait_for_room(alice, 1, Duration::from_millis(200))
            .await,
        Room::None
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        log.wait_for_room("User:idp:bob", 1, Duration::ZERO).await,
        Room::Free,
        "another requester is below both marks"
    );
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_for_room(alice, 1, Duration::from_secs(8)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "no room while the database is stalled"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    match waiter.await.unwrap() {
        // Woken by the drain, not by its own deadline (8 s).
        Room::AfterWait(waited) => assert!(
            (Duration::from_millis(100)..Duration::from_secs(4)).contains(&waited),
            "{waited:?}"
        ),
        other => panic!("the drain must end the wait: {other:?}"),
    }
    log.record_shared(by(alice, accepted))
        .expect("after the wait her event is taken");
    let head = log.flush().await.unwrap().unwrap();
    // Hers, and the writer's first event.
    assert_eq!(head.tree_size, accepted + 2, "nothing accepted is lost");
    t.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_database_interleave_safely() {
    for t in TestDb::both().await {
        let s = signer();
        let other = audit::AuditDb::connect(&t.url).await.unwrap();
        let (a, _) = AuditLog::start(t.db.clone(), s.clone(), WriterConfig::default());
        let (b, _) = AuditLog::start(other, s.clone(), WriterConfig::default());
        for i in 0..300 {
            let log = if i % 2 == 0 { &a } else { &b };
            log.record(event(i)).unwrap();
            if i % 37 == 0 {
                tokio::task::yield_now().await;
            }
        }
        a.flush().await.unwrap();
        b.flush().await.unwrap();
        let r = verify_log(&t.db, &s.public_key(), None).await.unwrap();
        assert!(r.ok(), "{}: {:?}", t.label(), r.finding);
        assert_eq!(r.events_checked, 300);
        t.drop_db().await;
    }
}
