//! A backup round trip over real files, a live SQLite writer and a redb
//! store, and each way a backup can be damaged.

use crate::{restore, verify, AuditCopy, BackupError, Head, Staging};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};
use storage::{KvRead, KvStore, RedbStore, Table, WriteBatch};

fn head() -> Head {
    Head {
        number: 3,
        block_hash: format!("0x{}", "11".repeat(32)),
    }
}

fn sqlite_audit() -> AuditCopy {
    AuditCopy::Sqlite {
        file: "audit/audit.db".into(),
    }
}

/// A data directory with a log, a sub-directory, a store and a database
/// that a thread keeps writing to while the backup is taken.
fn take_backup(src: &Path, dest: &Path) -> crate::Manifest {
    std::fs::write(src.join("log"), b"HEADER|frame1|frame2|torn").unwrap();
    std::fs::create_dir_all(src.join("docs/sub")).unwrap();
    std::fs::write(src.join("docs/a.json"), b"{}").unwrap();
    std::fs::write(src.join("docs/sub/b.json"), b"[]").unwrap();
    std::fs::write(src.join("docs/a.tmp"), b"half").unwrap();
    let store = RedbStore::open(&src.join("store.redb")).unwrap();
    let mut batch = WriteBatch::default();
    for i in 0u32..25_000 {
        batch.put(Table::ProverJobs, i.to_be_bytes().to_vec(), vec![7u8; 40]);
    }
    batch.put(Table::Meta, b"height".to_vec(), b"3".to_vec());
    store.write(batch, true).unwrap();

    let db = src.join("audit.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)",
        [],
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                conn.execute("INSERT INTO events (body) VALUES ('e')", [])
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    while conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap()
        < 100
    {
        std::thread::yield_now();
    }

    let mut staging = Staging::create(dest).unwrap();
    let mut log = std::fs::File::open(src.join("log")).unwrap();
    staging.add_prefix("blocks.log", &mut log, 20).unwrap();
    staging
        .add_dir("docs", &src.join("docs"), &|n| n.ends_with(".tmp"))
        .unwrap();
    staging.add_store("store.redb", &store).unwrap();
    staging.add_sqlite("audit/audit.db", &db).unwrap();
    assert!(
        !dest.exists(),
        "nothing at the destination before the manifest"
    );
    let manifest = staging
        .finish(7777, Some(head()), true, sqlite_audit())
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    manifest
}

#[test]
fn a_backup_restores_byte_for_byte_and_its_copies_are_whole() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dest = out.path().join("b1");
    let manifest = take_backup(src.path(), &dest);
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "audit/audit.db",
            "blocks.log",
            "docs/a.json",
            "docs/sub/b.json",
            "store.redb"
        ]
    );
    assert_eq!(
        std::fs::read(dest.join("blocks.log")).unwrap(),
        b"HEADER|frame1|frame2"
    );
    assert_eq!(verify(&dest).unwrap(), manifest);

    // The database copy is one consistent, self-contained SQLite file.
    let copy = rusqlite::Connection::open(dest.join("audit/audit.db")).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows: i64 = copy
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(rows >= 100);
    drop(copy);
    std::fs::remove_file(dest.join("audit/audit.db-journal")).ok();

    let to = out.path().join("restored");
    assert_eq!(restore(&dest, &to).unwrap(), manifest);
    assert_eq!(std::fs::read(to.join("docs/sub/b.json")).unwrap(), b"[]");
    let store = RedbStore::open(&to.join("store.redb")).unwrap();
    assert_eq!(store.get(Table::Meta, b"height").unwrap().unwrap(), b"3");
    let mut jobs = 0;
    store
        .scan(Table::ProverJobs, &mut |_, _| {
            jobs += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(jobs, 25_000);

    // A second restore into the now-populated directory is refused.
    assert!(matches!(restore(&dest, &to), Err(BackupError::Exists(_))));
    // And a second backup never overwrites the first.
    assert!(matches!(
        Staging::create(&dest),
        Err(BackupError::Exists(_))
    ));
}

#[test]
fn a_damaged_incomplete_or_padded_backup_is_refused_by_name() {
    let (src, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dest = out.path().join("b");
    take_backup(src.path(), &dest);
    let fresh = |name: &str| {
        let copy = out.path().join(name);
        std::fs::create_dir_all(&copy).unwrap();
        for rel in crate::check::files_under(&dest, "").unwrap() {
            let to = copy.join(&rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(dest.join(&rel), &to).unwrap();
        }
        copy
    };
    let refused = |dir: &Path| {
        let target = out.path().join("never");
        let e = restore(dir, &target).unwrap_err().to_string();
        assert!(!target.exists(), "nothing restored from a bad backup");
        e
    };

    let flipped = fresh("flipped");
    let mut bytes = std::fs::read(flipped.join("store.redb")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(flipped.join("store.redb"), bytes).unwrap();
    assert_eq!(
        refused(&flipped),
        "backup is damaged: store.redb does not match its recorded SHA-256"
    );

    let short = fresh("short");
    std::fs::write(short.join("blocks.log"), b"HEADER").unwrap();
    assert!(refused(&short).starts_with("backup is damaged: blocks.log has 6 bytes"));

    let missing = fresh("missing");
    std::fs::remove_file(missing.join("docs/sub/b.json")).unwrap();
    assert_eq!(
        refused(&missing),
        "backup is incomplete: docs/sub/b.json is missing"
    );

    let padded = fresh("padded");
    std::fs::write(padded.join("docs/extra.json"), b"{}").unwrap();
    assert_eq!(
        refused(&padded),
        "backup holds docs/extra.json, which its manifest does not list"
    );

    let unlisted = fresh("no-manifest");
    std::fs::remove_file(unlisted.join("MANIFEST.json")).unwrap();
    assert_eq!(
        refused(&unlisted),
        "backup is incomplete: MANIFEST.json is missing"
    );
}

#[tokio::test]
async fn the_socket_runs_one_backup_at_a_time_and_reports_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(crate::socket::SOCKET_FILE);
    let gate = Arc::new(tokio::sync::Notify::new());
    let handler: crate::socket::Handler = {
        let gate = gate.clone();
        Arc::new(move |to| {
            let gate = gate.clone();
            Box::pin(async move {
                gate.notified().await;
                if to.ends_with("fail") {
                    return Err("disk full".to_string());
                }
                Ok(crate::Manifest {
                    format: crate::FORMAT,
                    created_at: String::new(),
                    chain_id: 1,
                    head: Some(head()),
                    encrypted: false,
                    audit: sqlite_audit(),
                    files: vec![],
                })
            })
        })
    };
    let nobody = crate::socket::request(&path, Path::new("/b/none")).await;
    assert!(matches!(nobody, Err(BackupError::NoNode(_))), "{nobody:?}");
    let server = crate::socket::serve(&path, handler).unwrap();
    let first = {
        let path = path.clone();
        tokio::spawn(async move { crate::socket::request(&path, Path::new("/b/one")).await })
    };
    // Wait until the first holds the node's one backup slot.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = crate::socket::request(&path, Path::new("/b/two")).await;
    assert_eq!(
        second.unwrap_err().to_string(),
        "the node answered: a backup is already running"
    );
    gate.notify_one();
    assert_eq!(first.await.unwrap().unwrap().chain_id, 1);

    let relative = crate::socket::request(&path, Path::new("b/rel")).await;
    assert!(relative.unwrap_err().to_string().contains("absolute path"));
    let failing = {
        let path = path.clone();
        tokio::spawn(async move { crate::socket::request(&path, Path::new("/b/fail")).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    gate.notify_one();
    assert_eq!(
        failing.await.unwrap().unwrap_err().to_string(),
        "the node answered: disk full"
    );
    server.abort();
}
