//! The checks themselves: what the node needs, read from the configuration
//! (or what the node recorded in its data directory), each asked for real
//! and bounded in time.

use super::{read_config, Args, Finding, Verdict};
use crate::{
    chain_files,
    keys::at_rest::{self, EncryptionConfig, UnsealError},
    settling::SettlementConfig,
};
use access_control::authn::oidc::{OidcIssuer, OidcIssuerConfig};
use alloy_primitives::{Address, B256, U256};
use anyhow::Result;
use audit::trail::{recorded_url, redact};
use gateway_bridge::SettlementClient;
use std::{
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

/// Longest any one check may take (a hung provider or database is a
/// finding, not a hang).
const PATIENCE: Duration = Duration::from_secs(15);

/// The program id this build's guest compiles to (reproducible build).
const PUBLISHED_PROGRAM_ID: &str = include_str!("../../../../prover/guest/PROGRAM_ID");

/// What to check, from the configuration or the data directory.
pub(super) struct Plan {
    data_dir: PathBuf,
    config: Option<(PathBuf, Vec<String>)>,
    encryption: Option<EncryptionConfig>,
    audit_url: Result<String, String>,
    tls: Option<(PathBuf, PathBuf)>,
    oidc: Vec<OidcIssuerConfig>,
    settlement: Option<(SettlementConfig, u64)>,
    program: Option<(Option<B256>, PathBuf)>,
}

impl Plan {
    pub(super) fn read(args: &Args) -> Result<Self> {
        if let Some(path) = &args.config {
            let (c, problems) = read_config(path)?;
            let data_dir = args.data_dir.clone().unwrap_or_else(|| c.data_dir.clone());
            return Ok(Self {
                audit_url: Ok(c.audit.database_url(&data_dir)),
                config: Some((path.clone(), problems)),
                encryption: Some(c.encryption.clone()),
                tls: Some((c.rpc.tls_cert.clone(), c.rpc.tls_key.clone())),
                oidc: c.access.oidc.clone(),
                settlement: c
                    .settlement
                    .enabled
                    .then(|| (c.settlement.clone(), c.chain.chain_id)),
                program: c
                    .prover
                    .proves()
                    .then(|| (c.prover.program_id, c.prover.guest_elf.clone())),
                data_dir,
            });
        }
        let data_dir = args
            .data_dir
            .clone()
            .ok_or_else(|| anyhow::anyhow!("pass --config or --data-dir"))?;
        let tls = data_dir.join("tls");
        Ok(Self {
            config: None,
            encryption: EncryptionConfig::recorded(&data_dir)?,
            audit_url: recorded_url(&data_dir).map_err(|e| e.to_string()),
            tls: tls
                .join("server.pem")
                .exists()
                .then(|| (tls.join("server.pem"), tls.join("server.key"))),
            oidc: Vec::new(),
            settlement: None,
            program: None,
            data_dir,
        })
    }

    pub(super) async fn check(&self, args: &Args) -> Vec<Finding> {
        let mut out = vec![
            self.config(),
            Finding::of("data directory", data_dir(&self.data_dir)),
            Finding::of("disk space", disk(&self.data_dir, args.min_free_gib)),
            self.key_provider().await,
            Finding::of("audit database", audit_db(&self.audit_url).await),
            match &self.tls {
                Some((cert, key)) => {
                    Finding::of("tls certificate", tls(cert, key, args.cert_min_days))
                }
                None => Finding::new(Verdict::Fail, "tls certificate", "none found"),
            },
        ];
        if self.oidc.is_empty() {
            out.push(Finding::new(
                Verdict::Skip,
                "idp",
                "no OIDC issuer configured",
            ));
        }
        for cfg in &self.oidc {
            let name = format!("idp {}", cfg.name);
            out.push(Finding::of(name, idp(cfg, args.max_clock_skew_secs).await));
        }
        out.push(match &self.settlement {
            None => Finding::new(Verdict::Skip, "settlement", "not settling"),
            Some((s, chain_id)) => Finding::of(
                "settlement",
                settlement(&self.data_dir, s, *chain_id, args.min_signer_wei).await,
            ),
        });
        out.push(match &self.program {
            None => Finding::new(Verdict::Skip, "program id", "not proving"),
            Some((pinned, elf)) => Finding::of("program id", program(*pinned, elf)),
        });
        out
    }

    fn config(&self) -> Finding {
        match &self.config {
            None => Finding::new(
                Verdict::Skip,
                "config",
                "no --config: the settings recorded in the data directory",
            ),
            Some((path, problems)) if problems.is_empty() => Finding::new(
                Verdict::Ok,
                "config",
                format!("{} is valid", path.display()),
            ),
            Some((path, problems)) => Finding::new(
                Verdict::Fail,
                "config",
                format!("{}: {}", path.display(), problems.join("; ")),
            ),
        }
    }

    async fn key_provider(&self) -> Finding {
        let name = "key provider";
        let settings = match &self.encryption {
            Some(s) if s.is_on() => s,
            _ => return Finding::new(Verdict::Skip, name, "encryption off: nothing to unseal"),
        };
        let r = match bounded(at_rest::verify_provider(&self.data_dir, settings)).await {
            Err(e) => Err(e),
            Ok(Err(UnsealError::Retry(why))) => Err(format!("unreachable or sealed: {why}")),
            Ok(Err(UnsealError::Fatal(e))) => Err(format!("{e:#}")),
            Ok(Ok((id, live))) => Ok(format!("{id} unwraps the keyring's {live} live data keys")),
        };
        Finding::of(name, r)
    }
}

/// Runs `f` for at most [`PATIENCE`].
async fn bounded<T>(f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(PATIENCE, f)
        .await
        .map_err(|_| format!("no answer within {} s", PATIENCE.as_secs()))
}

fn data_dir(dir: &Path) -> Result<String, String> {
    let chain = chain_files::load_chain(dir).map_err(|e| format!("{e:#}"))?;
    let log = std::fs::metadata(dir.join(sequencer::BLOCK_LOG_FILE)).map_or(0, |m| m.len());
    Ok(format!(
        "{}: chain {}, block log {:.1} MiB",
        dir.display(),
        chain.chain_id,
        log as f64 / (1 << 20) as f64
    ))
}

fn disk(dir: &Path, min_free_gib: u64) -> Result<String, String> {
    let (free, total) =
        crate::disk::free_space(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let line = format!("{:.1} GiB free of {:.1} GiB", gib(free), gib(total));
    if free < min_free_gib << 30 {
        Err(format!(
            "{line}: below {min_free_gib} GiB (the block log and audit grow every block)"
        ))
    } else {
        Ok(line)
    }
}

async fn audit_db(url: &Result<String, String>) -> Result<String, String> {
    let url = url.as_ref().map_err(Clone::clone)?;
    let s = bounded(audit::schema_status(url, PATIENCE))
        .await?
        .map_err(|e| format!("{}: {e}", redact(url)))?;
    let pending = s.pending();
    if !pending.is_empty() {
        return Err(format!(
            "{}: migrations {pending:?} not applied (the node applies them at its next start)",
            redact(url)
        ));
    }
    Ok(format!(
        "{} ({:?}): {} events, schema current ({} migrations)",
        redact(url),
        s.backend,
        s.tree_size.unwrap_or(0),
        s.applied.len()
    ))
}

fn tls(cert: &Path, key: &Path, min_days: u64) -> Result<String, String> {
    let pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
    let key_pem = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?;
    if !key_pem.contains("PRIVATE KEY-----") {
        return Err(format!("{}: no PEM private key", key.display()));
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
    let x509 = pem
        .parse_x509()
        .map_err(|e| format!("{}: unreadable certificate: {e}", cert.display()))?;
    let validity = x509.validity();
    let now = x509_parser::time::ASN1Time::now();
    let subject = x509.subject().to_string();
    if now < validity.not_before {
        return Err(format!(
            "{subject}: not valid before {}",
            validity.not_before
        ));
    }
    let left = validity
        .time_to_expiration()
        .map_or(0, |d| d.whole_days().max(0) as u64);
    if now > validity.not_after || left < min_days {
        return Err(format!(
            "{subject}: expires {} ({left} days left, at least {min_days} wanted)",
            validity.not_after
        ));
    }
    Ok(format!(
        "{subject}: expires {} ({left} days)",
        validity.not_after
    ))
}

async fn idp(cfg: &OidcIssuerConfig, max_skew: u64) -> Result<String, String> {
    let issuer = OidcIssuer::new(cfg.clone()).map_err(|e| e.to_string())?;
    bounded(issuer.refresh())
        .await?
        .map_err(|e| e.to_string())?;
    let skew = bounded(issuer.clock_skew())
        .await?
        .map_err(|e| e.to_string())?;
    if skew.unsigned_abs() > max_skew {
        return Err(format!(
            "{}: discovery and JWKS answer, but its clock is {skew:+} s from ours (at most {max_skew})",
            cfg.issuer
        ));
    }
    Ok(format!(
        "{}: discovery and JWKS answer; clock skew {skew:+} s",
        cfg.issuer
    ))
}

async fn settlement(
    data_dir: &Path,
    s: &SettlementConfig,
    chain_id: u64,
    min_wei: u128,
) -> Result<String, String> {
    let contract = s.contract.ok_or("settlement.contract is not set")?;
    let client = gateway_bridge::EvmSettlement::new(&s.rpc_url, contract, None, s.send_policy())
        .map_err(|e| e.to_string())?;
    let record = bounded(client.chain(chain_id))
        .await?
        .map_err(|e| format!("{}: {e}", s.rpc_url))?
        .ok_or_else(|| {
            format!("chain {chain_id} is not registered at {contract}: run `prividium settlement register`")
        })?;
    let address_file = gateway_bridge::signer::key_path(data_dir)
        .with_file_name(gateway_bridge::signer::ADDRESS_FILE);
    let signer: Address = std::fs::read_to_string(&address_file)
        .map_err(|e| {
            format!(
                "{}: {e} (start the node once to create the signer)",
                address_file.display()
            )
        })?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", address_file.display()))?;
    let balance = bounded(client.balance(signer))
        .await?
        .map_err(|e| format!("{}: {e}", s.rpc_url))?;
    if balance < U256::from(min_wei) {
        return Err(format!(
            "signer {signer} holds {balance} wei, less than {min_wei}: fund it"
        ));
    }
    Ok(format!(
        "{}: chain {chain_id} at batch {}, signer {signer} holds {balance} wei",
        s.rpc_url, record.last_batch
    ))
}

fn program(pinned: Option<B256>, elf: &Path) -> Result<String, String> {
    let published: B256 = PUBLISHED_PROGRAM_ID
        .trim()
        .parse()
        .map_err(|e| format!("this build's PROGRAM_ID is unreadable: {e}"))?;
    if !elf.exists() {
        return Err(format!("prover.guest_elf {}: not found", elf.display()));
    }
    match pinned {
        Some(p) if p == published => Ok(format!("pinned {p} = this build's guest")),
        Some(p) => Err(format!(
            "pinned {p}, but this build's guest is {published}: proofs would be refused"
        )),
        None => Err(format!(
            "prover.program_id is not pinned (this build's guest: {published})"
        )),
    }
}
