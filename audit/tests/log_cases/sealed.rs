//! Sealed rows: what events say about people, accounts and transactions is
//! unreadable in the database, still answers queries, and any edit, swap or
//! wrong key is named.

use super::{fill, support};
use audit::{verify_log, AuditDb, AuditLog, Filter, WriterConfig};
use encryption::testing::cipher;
use std::sync::atomic::AtomicBool;
use storage::SharedCipher;
use support::{event, signer, TestDb};

async fn sealed_dbs(c: &SharedCipher) -> [TestDb; 2] {
    let [mut a, mut b] = TestDb::both().await;
    a.db = a.db.clone().sealed_with(c.clone());
    b.db = b.db.clone().sealed_with(c.clone());
    [a, b]
}

const WALLET: &str = "0x5eca1ed0ca11ab1e000000000000000000c0ffee";
const TX: &str = "tx:0x7a5c0de5eca1ed0000000000000000000000000000000000000000000000beef";

/// Every identifying column as stored, concatenated.
async fn raw_columns(t: &TestDb) -> String {
    let rows: Vec<(String, Option<String>, Option<String>, String)> =
        sqlx::query_as("SELECT actor_id, organization, resource, details FROM audit_events")
            .fetch_all(t.db.pool())
            .await
            .unwrap();
    format!("{rows:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_rows_hide_identities_and_still_answer_queries() {
    let c = cipher(&[1], 1);
    for t in sealed_dbs(&c).await {
        let s = signer();
        let (log, _task) = AuditLog::start(t.db.clone(), s.clone(), WriterConfig::default());
        for i in 0..30 {
            let mut e = event(i);
            if i == 17 {
                e = e
                    .resource(TX)
                    .details(serde_json::json!({ "wallet": WALLET }));
                e.source_ip = Some("10.20.30.40".into());
            }
            log.record(e).unwrap();
        }
        log.flush().await.unwrap();

        let raw = raw_columns(&t).await;
        for needle in [
            "User:u",
            "bank",
            "Node:",
            "7a5c0de5",
            "c0ffee",
            "10.20.30.40",
        ] {
            assert!(!raw.contains(needle), "{needle} readable on {}", t.label());
        }
        if t.label() == "sqlite" {
            for entry in std::fs::read_dir(t.dir.path()).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                for needle in [WALLET.as_bytes(), b"User:u1", b"7a5c0de5"] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle),
                        "plaintext in the SQLite files"
                    );
                }
            }
        }

        let by_actor =
            t.db.query(&Filter {
                actor: Some("User:u1".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_actor.events.len(), 10, "{}", t.label());
        assert!(by_actor.events.iter().all(|e| e.actor_id == "User:u1"));
        let by_tx =
            t.db.query(&Filter {
                resource: Some(TX.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_tx.events.len(), 1, "{}", t.label());
        let found = &by_tx.events[0];
        assert_eq!(found.id, 17);
        assert_eq!(found.source_ip.as_deref(), Some("10.20.30.40"));
        assert!(found.details.contains(WALLET));
        assert_eq!(found.organization.as_deref(), Some("bank"));
        assert!(verify_log(&t.db, &s.public_key(), None).await.unwrap().ok());

        // Without the data keys the log is unreadable, and says why.
        let keyless = AuditDb::connect(&t.url).await.unwrap();
        let err = keyless.query(&Filter::default()).await.unwrap_err();
        assert!(err.to_string().contains("sealed at rest"), "{err}");
        keyless.close().await;
        t.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_swapped_or_foreign_sealed_row_is_named() {
    let c = cipher(&[1], 1);
    let swap = "UPDATE audit_events SET sealed = (SELECT sealed FROM audit_events WHERE id = 8) \
                WHERE id = 9";
    let relabel = "UPDATE audit_events SET actor_id = (SELECT actor_id FROM audit_events \
                   WHERE id = 4) WHERE id = 5";
    let plant = "UPDATE audit_events SET details = '{\"n\":99}' WHERE id = 20";
    let cases: &[(&str, Option<&str>, u64)] = &[
        ("sealed blob swapped between rows", Some(swap), 9),
        ("lookup column copied from another row", Some(relabel), 5),
        ("plain column written on a sealed row", Some(plant), 20),
        ("one ciphertext byte flipped", None, 12),
        (
            "key version column edited",
            Some("UPDATE audit_events SET key_version = 7 WHERE id = 3"),
            3,
        ),
    ];
    for (name, sql, bad) in cases {
        for t in sealed_dbs(&c).await {
            let s = fill(&t, 30, 5).await;
            match sql {
                Some(sql) => t.exec(sql).await,
                None => {
                    let (mut blob,): (Vec<u8>,) =
                        sqlx::query_as("SELECT sealed FROM audit_events WHERE id = 12")
                            .fetch_one(t.db.pool())
                            .await
                            .unwrap();
                    let last = blob.len() - 1;
                    blob[last] ^= 1;
                    sqlx::query("UPDATE audit_events SET sealed = $1 WHERE id = 12")
                        .bind(blob)
                        .execute(t.db.pool())
                        .await
                        .unwrap();
                }
            }
            let r = verify_log(&t.db, &s.public_key(), None).await.unwrap();
            let f = r
                .finding
                .unwrap_or_else(|| panic!("{name} on {} went unnoticed", t.label()));
            assert_eq!(
                f.event,
                Some(*bad),
                "{name} on {}: {}",
                t.label(),
                f.problem
            );
            assert!(f.problem.contains("altered"), "{name}: {}", f.problem);
            // Reading the row names it too, rather than returning wrong data.
            let err = t.db.event(*bad).await.unwrap_err();
            assert!(err.to_string().contains(&format!("event {bad}")), "{err}");
            t.drop_db().await;
        }
    }
    // Keys from another appliance open nothing.
    for t in sealed_dbs(&c).await {
        let s = fill(&t, 10, 5).await;
        let foreign = t.db.clone().sealed_with(cipher(&[1], 1).clone());
        let other = AuditDb::connect(&t.url)
            .await
            .unwrap()
            .sealed_with(cipher(&[2], 2));
        let r = verify_log(&other, &s.public_key(), None).await.unwrap();
        assert_eq!(r.finding.map(|f| f.event), Some(Some(0)), "{}", t.label());
        assert!(verify_log(&foreign, &s.public_key(), None)
            .await
            .unwrap()
            .ok());
        other.close().await;
        t.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_rows_are_sealed_and_rotation_moves_every_row_to_the_new_key() {
    let no_stop = AtomicBool::new(false);
    for mut t in TestDb::both().await {
        // A log written before encryption was turned on.
        let s = fill(&t, 30, 5).await;
        t.db = t.db.clone().sealed_with(cipher(&[1], 1));
        let first = t.db.reseal(&no_stop).await.unwrap();
        assert_eq!(
            (first.resealed, first.complete),
            (30, true),
            "{}",
            t.label()
        );
        assert!(!raw_columns(&t).await.contains("User:u"), "{}", t.label());

        // Rotate: new rows go under version 2, the old ones are moved.
        t.db = t.db.clone().sealed_with(cipher(&[1, 2], 2));
        fill_more(&t, &s, 30, 5).await;
        let moved = t.db.reseal(&no_stop).await.unwrap();
        assert_eq!(moved.resealed, 30, "{}", t.label());
        assert_eq!(t.db.reseal(&no_stop).await.unwrap().resealed, 0);
        let (old,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE key_version <> 2")
                .fetch_one(t.db.pool())
                .await
                .unwrap();
        assert_eq!(old, 0);

        // Version 1 can now be retired: a keyring without it reads all.
        let retired = t.db.clone().sealed_with(cipher(&[2], 2));
        let r = verify_log(&retired, &s.public_key(), None).await.unwrap();
        assert!(r.ok(), "{}: {:?}", t.label(), r.finding);
        assert_eq!(r.events_checked, 35);
        let u1 = retired
            .query(&Filter {
                actor: Some("User:u1".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(u1.events.len(), 12, "{}", t.label());
        // Resealing rewrote each row's resource as a keyed hash; its
        // indexed prefix must have moved with it.
        let one = retired
            .query(&Filter {
                resource: Some("Node:7".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<u64> = one.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [7], "{}", t.label());
        t.drop_db().await;
    }
}

/// Appends events `from..from + n` on top of what is there.
async fn fill_more(t: &TestDb, s: &audit::HeadSigner, from: u64, n: u64) {
    let mut batch: Vec<_> = (from..from + n)
        .map(|k| audit::StoredEvent::pending(event(k), 1_800_000_000_000_000 + k as i64))
        .collect();
    t.db.append(&mut batch, s).await.unwrap();
}
