//! Audit log throughput and query latency.
//!
//! Appends `AUDIT_BENCH_EVENTS` (default 1,000,000) events through the
//! asynchronous writer, then runs filtered queries and reports p50/p99.
//! SQLite always; Postgres too when `AUDIT_BENCH_PG` (server URL, e.g.
//! `postgres://postgres@127.0.0.1:5432`) is set. Each database is run plain
//! and then with identifying fields sealed (as on an encrypted appliance),
//! so the cost of sealing shows side by side; `AUDIT_BENCH_MODES=plain` or
//! `sealed` runs one.
//!
//! `cargo bench -p audit --bench audit_log`

use audit::{
    ActorKind, AuditDb, AuditError, AuditEvent, AuditLog, Filter, HeadSigner, Outcome, WriterConfig,
};
use sqlx::{Connection, Executor};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// Builds the k-th query of a case.
type MakeFilter = Box<dyn Fn(u64) -> Filter>;

const ACTIONS: [&str; 8] = [
    "auth.login.succeeded",
    "policy.allowed",
    "policy.allowed",
    "policy.denied",
    "tx.submitted",
    "auth.login.failed",
    "admin.wallet.bound",
    "audit.queried",
];

fn event(i: u64) -> AuditEvent {
    let action = ACTIONS[(i % 8) as usize];
    let outcome = if action.ends_with("denied") || action.ends_with("failed") {
        Outcome::Deny
    } else {
        Outcome::Allow
    };
    AuditEvent::new(
        ActorKind::User,
        &format!("User:idp:user{}", i % 1000),
        action,
        outcome,
    )
    .organization("bank")
    .resource(format!("Account:0x{:040x}", i % 5000))
    .rule("rpc.read.staff")
    .details(serde_json::json!({ "action": "eth_getBalance" }))
}

/// The appliance's record cipher over fixed test keys.
fn cipher() -> storage::SharedCipher {
    encryption::testing::cipher(&[1], 1)
}

async fn run(label: &str, url: &str, n: u64, sealed: bool) {
    let mut db = AuditDb::connect(url).await.unwrap();
    let label = if sealed {
        db = db.sealed_with(cipher());
        format!("{label} sealed")
    } else {
        label.to_owned()
    };
    let signer = Arc::new(HeadSigner::ephemeral());
    let key = signer.public_key();
    let (log, _task) = AuditLog::start(db.clone(), signer, WriterConfig::default());
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        match log.record(event(i)) {
            Ok(()) => i += 1,
            Err(AuditError::Unavailable(_)) => tokio::time::sleep(Duration::from_micros(200)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let head = log.flush().await.unwrap().unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(head.tree_size, n);
    println!(
        "{label}: appended {n} events in {secs:.1} s = {:.0} events/s (signed head every batch)",
        n as f64 / secs
    );
    // The node refreshes planner statistics hourly; a bulk load has none yet.
    db.analyze().await.unwrap();
    let span_us = db
        .query(&Filter {
            newest_first: true,
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .events[0]
        .time_us;
    let first_us = db
        .query(&Filter {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .events[0]
        .time_us;
    let cases: Vec<(&str, MakeFilter)> = vec![
        (
            "actor",
            Box::new(|k| Filter {
                actor: Some(format!("User:idp:user{}", k % 1000)),
                limit: Some(100),
                ..Default::default()
            }),
        ),
        (
            "action ns + outcome",
            Box::new(|_| Filter {
                action: Some("policy.*".into()),
                outcome: Some(Outcome::Deny),
                limit: Some(100),
                ..Default::default()
            }),
        ),
        (
            "time window",
            Box::new(move |k| {
                let from = first_us + ((span_us - first_us) / 200) * (k % 200) as i64;
                Filter {
                    from_us: Some(from),
                    to_us: Some(from + 1_000_000),
                    limit: Some(100),
                    ..Default::default()
                }
            }),
        ),
        (
            "actor + deny, newest first",
            Box::new(|k| Filter {
                actor: Some(format!("User:idp:user{}", (k % 125) * 8 + 3)),
                outcome: Some(Outcome::Deny),
                newest_first: true,
                limit: Some(100),
                ..Default::default()
            }),
        ),
        (
            "resource",
            Box::new(|k| Filter {
                resource: Some(format!("Account:0x{:040x}", (k * 7) % 5000)),
                limit: Some(50),
                ..Default::default()
            }),
        ),
    ];
    for (name, make) in cases {
        let mut times = Vec::new();
        for k in 0..300u64 {
            let f = make(k * 37 + 11);
            let t = Instant::now();
            let page = db.query(&f).await.unwrap();
            times.push(t.elapsed());
            assert!(
                !page.events.is_empty() || name == "time window",
                "{name}: no rows"
            );
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "{label}: query {name:<28} p50 {:>7.2} ms  p99 {:>7.2} ms",
            p(0.5).as_secs_f64() * 1e3,
            p(0.99).as_secs_f64() * 1e3
        );
    }
    let t = Instant::now();
    let report = audit::verify_log(&db, &key, None).await.unwrap();
    assert!(report.ok(), "{:?}", report.finding);
    println!(
        "{label}: verify re-hashed {} events and {} heads in {:.1} s",
        report.events_checked,
        report.heads_checked,
        t.elapsed().as_secs_f64()
    );
    db.close().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("AUDIT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let modes = std::env::var("AUDIT_BENCH_MODES").unwrap_or_else(|_| "plain,sealed".into());
    for sealed in [false, true] {
        if !modes.contains(if sealed { "sealed" } else { "plain" }) {
            continue;
        }
        run_both(n, sealed).await;
    }
}

async fn run_both(n: u64, sealed: bool) {
    let dir = tempfile::tempdir().unwrap();
    run(
        "sqlite",
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
        n,
        sealed,
    )
    .await;
    if let Ok(server) = std::env::var("AUDIT_BENCH_PG") {
        let name = format!("prividium_audit_bench_{}_{sealed}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        run("postgres", &format!("{server}/{name}"), n, sealed).await;
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .await;
    }
}
