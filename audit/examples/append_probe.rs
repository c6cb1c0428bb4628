//! Cost of one `AuditDb::append` by batch size, without the writer's queue:
//! `cargo run --release -p audit --example append_probe [DATABASE_URL]`
//! (default: a temporary SQLite file).

use audit::{ActorKind, AuditDb, AuditEvent, HeadSigner, Outcome, StoredEvent};
use std::time::Instant;
#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::args()
        .nth(1)
        .unwrap_or(format!("sqlite://{}", dir.path().join("p.db").display()));
    let db = AuditDb::connect(&url).await.unwrap();
    let s = HeadSigner::ephemeral();
    for size in [1usize, 100, 1000, 4096] {
        let mut batch: Vec<_> = (0..size)
            .map(|i| {
                StoredEvent::pending(
                    AuditEvent::new(
                        ActorKind::User,
                        &format!("User:u{i}"),
                        "policy.allowed",
                        Outcome::Allow,
                    )
                    .resource("Node")
                    .rule("r")
                    .details(serde_json::json!({"action":"x"})),
                    1i64,
                )
            })
            .collect();
        let t = Instant::now();
        for _ in 0..5 {
            db.append(&mut batch, &s).await.unwrap();
        }
        let el = t.elapsed().as_secs_f64() / 5.0;
        println!(
            "batch {size}: {:.2} ms per append = {:.0} events/s",
            el * 1e3,
            size as f64 / el
        );
    }
}
