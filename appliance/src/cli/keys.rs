//! `prividium keys create|list|revoke`: API keys for machines. Works on the
//! data directory directly; a running node picks changes up within a second.

use access_control::{
    authn::api_keys::{self, NewKey},
    wallets, ACCESS_DIR,
};
use alloy_primitives::Address;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Arguments of `prividium keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Issue a key; prints the key (once, and nothing else) on stdout.
    Create {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
        /// Role granted (admin, operator, trader, auditor, counterparty, service).
        #[arg(long)]
        role: String,
        /// Organization of the key holder.
        #[arg(long, default_value = "")]
        org: String,
        /// Wallet the key may transact as (repeatable).
        #[arg(long = "wallet")]
        wallets: Vec<Address>,
        /// Lifetime, e.g. `90d`, `12h`, `30m`, `3600s`.
        #[arg(long)]
        expires: Option<String>,
        /// Source network allowed to use the key (repeatable CIDR).
        #[arg(long = "ip-allow")]
        ip_allow: Vec<String>,
    },
    /// List keys (never the keys themselves) with their last use.
    List {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Revoke a key by id.
    Revoke {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
        /// Key id as shown by `keys list` (`k_…`).
        id: String,
    },
}

/// Parses `90d`, `12h`, `30m`, `45s` into seconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid duration {s:?}: expected e.g. 90d, 12h, 30m"))?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" | "" => 1,
        _ => bail!("invalid duration unit in {s:?}: use d, h, m or s"),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| anyhow::anyhow!("invalid duration {s:?}"))
}

/// Runs `prividium keys …`.
pub fn run(args: Args) -> Result<()> {
    match args.cmd {
        Cmd::Create {
            data_dir,
            role,
            org,
            wallets: addrs,
            expires,
            ip_allow,
        } => {
            if !data_dir.is_dir() {
                bail!("data directory {} does not exist", data_dir.display());
            }
            let ttl_secs = expires.as_deref().map(parse_duration).transpose()?;
            let (secret, record) = api_keys::issue(&NewKey {
                role,
                org: org.clone(),
                wallets: addrs.clone(),
                ttl_secs,
                ip_allow,
            })
            .map_err(anyhow::Error::msg)?;
            let access = data_dir.join(ACCESS_DIR);
            let principal = format!("ApiKey:{}", record.id);
            for a in &addrs {
                wallets::bind(&access, *a, &principal, &org, "key")?;
            }
            eprintln!("created API key {} (role {})", record.id, record.role);
            api_keys::add_record(&access, record)?;
            println!("{secret}");
        }
        Cmd::List { data_dir } => {
            let keys = api_keys::list(&data_dir.join(ACCESS_DIR))?;
            println!(
                "{:<16} {:<13} {:<10} {:<20} {:<20} WALLETS",
                "ID", "ROLE", "STATUS", "EXPIRES", "LAST USED"
            );
            let now = access_control::store::unix_now();
            let when = |t: Option<u64>| {
                t.map(access_control::siwe::rfc3339)
                    .unwrap_or_else(|| "-".into())
            };
            for (k, used) in keys {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else if k.expires_at.is_some_and(|e| now >= e) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<16} {:<13} {:<10} {:<20} {:<20} {}",
                    k.id,
                    k.role,
                    status,
                    when(k.expires_at),
                    when(used),
                    k.wallets
                        .iter()
                        .map(|w| w.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        Cmd::Revoke { data_dir, id } => {
            if !api_keys::revoke(&data_dir.join(ACCESS_DIR), &id)? {
                bail!("no API key with id {id}");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d").unwrap(), 90 * 86_400);
        assert_eq!(parse_duration("30m").unwrap(), 1_800);
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
    }
}
