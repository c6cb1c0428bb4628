//! `prividium keys …`: API keys for machines (`create`, `list`, `revoke`) and
//! the data keys that encrypt the appliance at rest (`rotate-dek`,
//! `rotate-kek`, `status`, `reencrypt`). Works on the data directory
//! directly; a running node picks changes up within a second.

use crate::{audit_trail, keys::at_rest};
use access_control::{
    authn::api_keys::{self, NewKey},
    store::DocDir,
    wallets, ACCESS_DIR,
};
use alloy_primitives::Address;
use anyhow::{bail, Result};
use audit::action;
use serde_json::json;
use std::path::PathBuf;

/// The `prividium keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Issue a key; prints the key (once, and nothing else) on stdout.
    Create {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
        /// Role granted (admin, operator, trader, auditor, compliance, counterparty, service).
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
    /// Add a data-key version for new writes; old records stay readable and
    /// a running node moves them onto the new key in the background.
    RotateDek {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Rotate the key-encryption key at the provider and re-wrap the stored
    /// data keys under it; no record is touched.
    RotateKek {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Show the data-key versions, their use, and re-encryption progress.
    Status {
        /// Data directory of the appliance.
        #[arg(long)]
        data_dir: PathBuf,
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

/// The access documents of a data directory, unsealed when it is encrypted.
async fn docs(data_dir: &std::path::Path) -> Result<DocDir> {
    if !data_dir.is_dir() {
        bail!("data directory {} does not exist", data_dir.display());
    }
    let cipher = at_rest::recorded_cipher(data_dir).await?;
    Ok(DocDir::new(data_dir.join(ACCESS_DIR), cipher))
}

/// Runs `prividium keys …`.
pub async fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Create {
            data_dir,
            role,
            org,
            wallets: addrs,
            expires,
            ip_allow,
        } => {
            let access = docs(&data_dir).await?;
            let ttl_secs = expires.as_deref().map(parse_duration).transpose()?;
            let (secret, record) = api_keys::issue(&NewKey {
                role,
                org: org.clone(),
                wallets: addrs.clone(),
                ttl_secs,
                ip_allow,
            })
            .map_err(anyhow::Error::msg)?;
            let principal = format!("ApiKey:{}", record.id);
            for a in &addrs {
                wallets::bind(&access, *a, &principal, &org, "key")?;
            }
            eprintln!("created API key {} (role {})", record.id, record.role);
            let details = record.audit_details("cli");
            let id = record.id.clone();
            api_keys::add_record(&access, record)?;
            audit_trail::record_key_op(
                &data_dir,
                action::API_KEY_CREATED,
                Some(format!("ApiKey:{id}")),
                details,
            )
            .await?;
            println!("{secret}");
        }
        Cmd::List { data_dir } => {
            let keys = api_keys::list(&docs(&data_dir).await?)?;
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
                let status = k.status(now);
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
            if !api_keys::revoke(&docs(&data_dir).await?, &id)? {
                bail!("no API key with id {id}");
            }
            audit_trail::record_key_op(
                &data_dir,
                action::API_KEY_REVOKED,
                Some(format!("ApiKey:{id}")),
                json!({}),
            )
            .await?;
            eprintln!("revoked {id}");
        }
        Cmd::RotateDek { data_dir } => {
            let (provider, ring) = at_rest::provider_for(&data_dir)?;
            let v = ring.rotate_dek(provider.as_ref()).await?;
            audit_trail::record_key_op(
                &data_dir,
                action::DEK_ROTATED,
                Some("data-keys".into()),
                json!({ "version": v }),
            )
            .await?;
            println!("data key v{v} is now current");
        }
        Cmd::RotateKek { data_dir } => {
            let (provider, ring) = at_rest::provider_for(&data_dir)?;
            ring.rotate_kek(provider.as_ref()).await?;
            audit_trail::record_key_op(
                &data_dir,
                action::KEK_ROTATED,
                Some("data-keys".into()),
                json!({ "provider": provider.id() }),
            )
            .await?;
            println!("key-encryption key rotated; every data key re-wrapped");
        }
        Cmd::Status { data_dir } => crate::keys::status::print_status(&data_dir)?,
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
