//! `prividium audit …`: compliance queries, exports, proofs, verification,
//! legal holds and pruning, straight against the audit database. Every
//! command that reads the log records that it did.

use crate::audit_trail::CliTrail;
use anyhow::{bail, Context, Result};
use audit::trail::operator;
use audit::{
    action, export, head, prove_consistency, prove_inclusion, read_witness, verify_log, FilterArgs,
};
use serde_json::json;
use std::{io::Write, path::PathBuf};

/// Arguments of `prividium audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory of the appliance.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Audit database, when not the one the node recorded.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
struct Filters {
    /// Actor id (`User:…`, `ApiKey:k_…`, `os:alice`).
    #[arg(long)]
    actor: Option<String>,
    /// Action, or a namespace like `policy.*`.
    #[arg(long)]
    action: Option<String>,
    /// allow, deny or error.
    #[arg(long)]
    outcome: Option<String>,
    /// Resource (`tx:0x…`, `wallet:0x…`).
    #[arg(long)]
    resource: Option<String>,
    /// Id of the policy rule that decided (`rpc.admin.admin`).
    #[arg(long)]
    rule: Option<String>,
    /// From (inclusive): RFC 3339 or a date.
    #[arg(long)]
    from: Option<String>,
    /// To (exclusive): RFC 3339 or a date.
    #[arg(long)]
    to: Option<String>,
}

impl Filters {
    fn args(&self, limit: Option<u32>, after: Option<u64>, desc: bool) -> FilterArgs {
        FilterArgs {
            actor: self.actor.clone(),
            action: self.action.clone(),
            outcome: self.outcome.clone(),
            resource: self.resource.clone(),
            rule: self.rule.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            limit,
            after,
            order: desc.then(|| "desc".into()),
            format: None,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// One page of matching events (the next page's cursor on stderr).
    Query {
        #[command(flatten)]
        filters: Filters,
        /// Page size (1..=1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue after this event id.
        #[arg(long)]
        after: Option<u64>,
        /// Newest first.
        #[arg(long)]
        newest_first: bool,
        /// json (lines) or csv.
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Every matching event under the latest signed head, with that head.
    Export {
        #[command(flatten)]
        filters: Filters,
        /// json (lines; the last line is the head) or csv (head in FILE.head.json).
        #[arg(long, default_value = "json")]
        format: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Inclusion proof of one event (JSON, with the event and signed head).
    Prove {
        /// Event id.
        #[arg(long)]
        event: u64,
        /// Tree size of the head to prove against (default: latest).
        #[arg(long)]
        tree_size: Option<u64>,
    },
    /// Consistency proof between two signed heads.
    Consistency {
        /// Older tree size.
        #[arg(long)]
        from: u64,
        /// Newer tree size (default: latest).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Re-hash the whole log against the signed heads; exits 1 naming the
    /// first bad entry.
    Verify {
        /// Public key (hex) to trust instead of `<data-dir>/audit/signing.pub`.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// The latest signed tree head and the public key.
    Head,
    /// Legal holds: events in a held period are never pruned.
    Hold {
        #[command(subcommand)]
        cmd: HoldCmd,
    },
    /// Delete events older than the retention period (holds respected).
    Prune {
        /// Age, e.g. `2555d`.
        #[arg(long)]
        older_than: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum HoldCmd {
    /// Place a hold on a period.
    Place {
        /// Start: RFC 3339 or a date.
        #[arg(long)]
        from: String,
        /// End (exclusive): RFC 3339 or a date.
        #[arg(long)]
        to: String,
        /// Case reference.
        #[arg(long)]
        reason: String,
    },
    /// Release a hold by id.
    Release {
        /// Hold id.
        id: i64,
    },
    /// List holds.
    List,
}

/// Runs `prividium audit …`.
pub async fn run(args: Args) -> Result<()> {
    let Some(data_dir) = args.data_dir.clone() else {
        bail!("--data-dir is required");
    };
    let trail = CliTrail::open(&data_dir, args.database_url.as_deref()).await?;
    let db = &trail.db;
    let mut out = std::io::stdout().lock();
    match args.cmd {
        Cmd::Query {
            filters,
            limit,
            after,
            newest_first,
            format,
        } => {
            let fargs = filters.args(Some(limit), after, newest_first);
            let filter = fargs.to_filter()?;
            let format: export::Format = format.parse().map_err(anyhow::Error::msg)?;
            trail
                .record(
                    action::AUDIT_QUERIED,
                    Some("audit-log".into()),
                    json!({ "filter": fargs }),
                )
                .await?;
            let page = db.query(&filter).await?;
            if let Some(header) = format.header() {
                writeln!(out, "{header}")?;
            }
            for e in &page.events {
                writeln!(out, "{}", format.line(e))?;
            }
            match page.next {
                Some(n) => eprintln!("more: --after {n}"),
                None => eprintln!("{} events", page.events.len()),
            }
        }
        Cmd::Export {
            filters,
            format,
            out: path,
        } => {
            let format: export::Format = format.parse().map_err(anyhow::Error::msg)?;
            let fargs = filters.args(Some(audit::store::MAX_PAGE), None, false);
            let mut filter = fargs.to_filter()?;
            let head = db.latest_head().await?.context("the audit log is empty")?;
            trail
                .record(
                    action::AUDIT_EXPORTED,
                    Some("audit-log".into()),
                    json!({ "filter": fargs, "tree_size": head.tree_size, "file": path }),
                )
                .await?;
            filter.below = Some(head.tree_size);
            let public = hex::encode(head::load_public_key(&trail.dir)?.as_bytes());
            let head_doc = export::head_json(&head, &public);
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            if let Some(header) = format.header() {
                writeln!(file, "{header}")?;
            }
            let mut count = 0u64;
            loop {
                let page = db.query(&filter).await?;
                for e in &page.events {
                    writeln!(file, "{}", format.line(e))?;
                }
                count += page.events.len() as u64;
                match page.next {
                    Some(n) => filter.after = Some(n),
                    None => break,
                }
            }
            match format {
                export::Format::JsonLines => writeln!(file, "{head_doc}")?,
                export::Format::Csv => {
                    let side = PathBuf::from(format!("{}.head.json", path.display()));
                    std::fs::write(&side, serde_json::to_vec_pretty(&head_doc)?)?;
                }
            }
            file.flush()?;
            eprintln!(
                "exported {count} events consistent with the tree head at size {} to {}",
                head.tree_size,
                path.display()
            );
        }
        Cmd::Prove { event, tree_size } => {
            trail
                .record(
                    action::AUDIT_PROVED,
                    Some("audit-log".into()),
                    json!({ "event": event, "tree_size": tree_size }),
                )
                .await?;
            let proof = prove_inclusion(db, event, tree_size).await?;
            let stored = db.event(event).await?.context("event pruned")?;
            let doc = json!({ "event": export::event_json(&stored), "proof": proof });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Cmd::Consistency { from, to } => {
            trail
                .record(
                    action::AUDIT_PROVED,
                    Some("audit-log".into()),
                    json!({ "from": from, "to": to }),
                )
                .await?;
            let proof = prove_consistency(db, from, to).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&proof)?)?;
        }
        Cmd::Verify { public_key } => {
            let key = match public_key {
                Some(k) => head::parse_public_key(&k)?,
                None => head::load_public_key(&trail.dir)?,
            };
            let witness = read_witness(&trail.dir.join(audit::trail::WITNESS_FILE))?;
            let report = verify_log(db, &key, witness.as_ref()).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            let outcome = if report.ok() {
                audit::Outcome::Allow
            } else {
                audit::Outcome::Deny
            };
            // Recorded after the check, so the check covers the log as found.
            let _ = trail
                .record(
                    action::AUDIT_VERIFIED,
                    Some("audit-log".into()),
                    json!({ "ok": report.ok(), "outcome": outcome, "finding": report.finding }),
                )
                .await;
            if let Some(f) = report.finding {
                match f.event {
                    Some(id) => bail!("audit log verification FAILED at event {id}: {}", f.problem),
                    None => bail!("audit log verification FAILED: {}", f.problem),
                }
            }
            eprintln!(
                "audit log intact: {} events re-hashed, {} signed heads checked",
                report.events_checked, report.heads_checked
            );
        }
        Cmd::Head => {
            trail
                .record(
                    action::AUDIT_QUERIED,
                    Some("audit-log".into()),
                    json!({ "head": true }),
                )
                .await?;
            let head = db.latest_head().await?.context("the audit log is empty")?;
            let public = hex::encode(head::load_public_key(&trail.dir)?.as_bytes());
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&export::head_json(&head, &public))?
            )?;
        }
        Cmd::Hold { cmd } => match cmd {
            HoldCmd::Place { from, to, reason } => {
                let from = audit::time::parse_bound(&from).map_err(anyhow::Error::msg)?;
                let to = audit::time::parse_bound(&to).map_err(anyhow::Error::msg)?;
                let id = db.place_hold(from, to, &reason, &operator()).await?;
                trail
                    .record(
                        action::HOLD_PLACED,
                        Some(format!("hold:{id}")),
                        json!({ "from_us": from, "to_us": to, "reason": reason }),
                    )
                    .await?;
                writeln!(out, "{id}")?;
                eprintln!("legal hold {id} placed");
            }
            HoldCmd::Release { id } => {
                if !db.release_hold(id).await? {
                    bail!("no active hold {id}");
                }
                trail
                    .record(action::HOLD_RELEASED, Some(format!("hold:{id}")), json!({}))
                    .await?;
                eprintln!("legal hold {id} released");
            }
            HoldCmd::List => {
                for h in db.holds().await? {
                    writeln!(out, "{}", serde_json::to_string(&h)?)?;
                }
            }
        },
        Cmd::Prune { older_than } => {
            let secs = crate::cli::keys::parse_duration(&older_than)?;
            let cutoff = audit::time::now_us() - (secs as i64) * 1_000_000;
            let report = db.prune(cutoff).await?;
            trail
                .record(
                    action::AUDIT_PRUNED,
                    Some("audit-log".into()),
                    serde_json::to_value(&report)?,
                )
                .await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
    }
    Ok(())
}
