//! `prividium policies check|reload|explain`.

use crate::data_dir::PID_FILE;
use access_control::{
    policy::{
        load_dir, AccountFacts, ArgValue, Circumstances, FrameFacts, PolicyEngine, Resource,
        TxFacts,
    },
    Caller, Principal, PrincipalKind,
};
use alloy_primitives::{Address, B256, U256};
use anyhow::{bail, Context, Result};
use std::{collections::BTreeSet, path::PathBuf, sync::Arc};

/// The `prividium policies` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Validate a policy directory against its schema; exit 1 on problems.
    Check {
        /// Directory with schema.cedarschema, *.cedar and abi/.
        dir: PathBuf,
    },
    /// Validate, then tell the running node to reload (SIGHUP).
    Reload {
        /// Data directory of the running node.
        #[arg(long)]
        data_dir: PathBuf,
        /// Policy directory (default: `<data-dir>/policies`).
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Dry run: print the decision and the deciding rule id.
    Explain(Box<Explain>),
}

/// What `prividium policies explain` asks about.
#[derive(Debug, clap::Args)]
pub struct Explain {
    /// Policy directory.
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
    /// `User:<id>` or `ApiKey:<id>`.
    #[arg(long)]
    principal: String,
    /// Role of the principal (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Organization of the principal.
    #[arg(long, default_value = "")]
    org: String,
    /// Wallet of the principal (repeatable).
    #[arg(long = "wallet")]
    wallets: Vec<Address>,
    /// Action: an RPC method, `call`, `read`, `transfer`, `deploy`,
    /// `view_account`, `view_tx`, `view_all`, …
    #[arg(long)]
    action: String,
    /// `node`, `account:0x…` or `tx:0x…`.
    #[arg(long, default_value = "node")]
    resource: String,
    /// For accounts: the wallet that deployed the contract.
    #[arg(long)]
    deployer: Option<Address>,
    /// For accounts: the deployer's organization.
    #[arg(long, default_value = "")]
    deployer_org: String,
    /// For calls: function name (as a registered ABI names it).
    #[arg(long)]
    function: Option<String>,
    /// For calls: ether moved, in wei.
    #[arg(long, default_value = "0")]
    value_wei: U256,
    /// For calls: an argument as the ABI decodes it, `NAME=0xADDRESS` or
    /// `NAME=AMOUNT` (repeatable; unnamed ABI arguments are `arg0`, `arg1`…).
    #[arg(long = "arg", value_parser = parse_arg)]
    args: Vec<(String, ArgValue)>,
}

fn parse_arg(s: &str) -> Result<(String, ArgValue), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))?;
    let value = if value.starts_with("0x") && value.len() == 42 {
        ArgValue::Address(value.parse().map_err(|e| format!("{value}: {e}"))?)
    } else {
        ArgValue::Uint(
            value
                .parse()
                .map_err(|e| format!("{value}: not an address or an amount ({e})"))?,
        )
    };
    Ok((name.to_owned(), value))
}

/// Runs `prividium policies …`.
pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Check { dir } => match load_dir(&dir) {
            Ok(b) => {
                println!(
                    "ok: {} rules, {} ABI functions, digest {}",
                    b.origins.len(),
                    b.abi.len(),
                    b.digest
                );
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        Cmd::Reload { data_dir, policies } => {
            let dir = policies.unwrap_or_else(|| data_dir.join("policies"));
            let bundle = load_dir(&dir)?;
            let pid_file = data_dir.join(PID_FILE);
            let pid: i32 = std::fs::read_to_string(&pid_file)
                .with_context(|| format!("no running node ({} missing)", pid_file.display()))?
                .trim()
                .parse()
                .context("corrupt pid file")?;
            let status = std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()?;
            if !status.success() {
                bail!("could not signal node process {pid}");
            }
            println!(
                "reload requested: {} rules, digest {}",
                bundle.origins.len(),
                bundle.digest
            );
            Ok(())
        }
        Cmd::Explain(x) => {
            let Explain {
                policies,
                principal,
                roles,
                org,
                wallets,
                action,
                resource,
                deployer,
                deployer_org,
                function,
                value_wei,
                args,
            } = *x;
            let engine = PolicyEngine::load(&policies)?;
            let (kind, id) = match principal.split_once(':') {
                Some(("User", id)) => (PrincipalKind::User, id),
                Some(("ApiKey", id)) => (PrincipalKind::ApiKey, id),
                _ => bail!("--principal must be User:<id> or ApiKey:<id>"),
            };
            let caller = Caller::new(
                Arc::new(Principal {
                    kind,
                    id: id.to_owned(),
                    roles: roles.into_iter().collect(),
                    org,
                    expires_at: None,
                }),
                wallets.iter().copied().collect::<BTreeSet<_>>(),
            );
            let res = match resource.split_once(':') {
                None if resource == "node" => Resource::Node,
                Some(("account", a)) => Resource::Account(AccountFacts {
                    address: a.parse().context("invalid account address")?,
                    is_contract: deployer.is_some(),
                    deployer,
                    deployer_org,
                }),
                Some(("tx", h)) => Resource::Transaction(TxFacts {
                    hash: h.parse::<B256>().context("invalid transaction hash")?,
                    ..TxFacts::default()
                }),
                _ => bail!("--resource must be node, account:0x… or tx:0x…"),
            };
            let circumstances = match action.as_str() {
                "call" | "read" | "transfer" | "deploy" => Circumstances::Frame(FrameFacts {
                    kind: "call",
                    signer: wallets.first().copied().unwrap_or_default(),
                    caller: wallets.first().copied().unwrap_or_default(),
                    function,
                    args,
                    value: value_wei,
                    spent_today_gwei: access_control::policy::gwei_ceil(&value_wei),
                    ..FrameFacts::default()
                }),
                _ => Circumstances::Rpc,
            };
            let d = engine.decide(&caller, &action, &res, &circumstances);
            let origin = engine
                .bundle()
                .origins
                .get(&d.rule)
                .cloned()
                .unwrap_or_else(|| "no matching permit".into());
            println!(
                "{} rule={} ({origin})",
                if d.allowed { "ALLOW" } else { "DENY" },
                d.rule
            );
            for e in d.errors {
                println!("  evaluation error: {e}");
            }
            Ok(())
        }
    }
}
