//! The running node's stages, started in data-flow order by [`start`] and
//! stopped in reverse by [`Stages::stop`]:
//!
//! ```text
//!  metrics (up before the keys, with the HTTPS listener: see `node`; the
//!    │      pid file's removal is registered here, so it goes last)
//!    │
//!  audit trail ────────── every stage below records into it; stops last
//!    │
//!  sequencer ──────────── mempool → produce → block log (fsync) → derive
//!    │  derived blocks (the cutter wakes on each new head)
//!  prover ─────────────── cutter → job queue → workers → exporter → proofs/
//!    │  proofs/batch-N.{proof,json}
//!  settlement bridge ──── proofs/ → commitBatch on the settlement chain
//!    │
//!  proving lag ────────── how far the two stages above trail the chain
//!    │
//!  access control ─────── authentication, policies, wallets, fair share
//!    │
//!  backup socket ──────── `prividium backup` while the node runs
//!    │
//!  key upkeep ─────────── rotations, usage, re-sealing what `Holdings` lists
//!    │                    (`crate::keys`)
//!    │
//!  pid file ───────────── written now, removed after every stage stopped
//!    │
//!  JSON-RPC router ────── opened last by `node::run`, drained first
//! ```
//!
//! Hand-offs that are restart points stay durable: the block log, the job
//! queue, `proofs/` and the settlement contract. Each stage resumes from
//! them, so a stage stopped early loses nothing.
//!
//! What a scrape says of each stage, working or waiting:
//! - sequencer: `prividium_producer_heartbeat_age_seconds`,
//!   `prividium_mempool_transactions`, `prividium_derive_lag_blocks`;
//! - audit trail: `prividium_audit_queue_events`,
//!   `prividium_audit_commit_waiting_seconds`, and requests held back for
//!   it: `prividium_audit_backpressure_total`;
//! - prover and settlement bridge: `prividium_stage_busy{stage}` (how many
//!   of the stage's loops are processing), `prividium_prover_queue_batches`;
//! - key upkeep: `prividium_key_provider_up`;
//! - and how far each trails the chain: `prividium_block_height{stage}`.

use super::{
    config::NodeConfig,
    gauges::{NodeGauges, Parts},
};
use crate::{
    access_setup, backup_plan,
    chain_files::ChainFile,
    data_dir::DataDir,
    keys::{at_rest::AtRest, probe::ProviderProbe, reseal::Holdings, status, upkeep},
    proving_status::ProvingLag,
};
use anyhow::{Context, Result};
use audit::{action, AuditEvent, Outcome, Trail};
use encryption::EncryptedStore;
use rpc::{access::Access, RpcState};
use sequencer::{Sequencer, SequencerConfig};
use serde_json::json;
use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};
use storage::{KvStore, RedbStore, SharedCipher};

type StopFuture = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A started stage, as shutdown sees it.
struct Stage {
    name: &'static str,
    stop: Box<dyn FnOnce() -> StopFuture + Send>,
}

/// The started stages, in the order they started.
#[derive(Default)]
pub(super) struct Stages(Vec<Stage>);

impl Stages {
    /// Records a started stage and how to stop it.
    pub(super) fn started<F>(
        &mut self,
        name: &'static str,
        stop: impl FnOnce() -> F + Send + 'static,
    ) where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        tracing::debug!(stage = name, "started");
        self.0.push(Stage {
            name,
            stop: Box::new(move || Box::pin(stop())),
        });
    }

    /// A stage that is one task, safe to cancel at any await point.
    pub(super) fn task(&mut self, name: &'static str, task: tokio::task::JoinHandle<()>) {
        self.started(name, move || async move {
            task.abort();
            Ok(())
        });
    }

    /// Stops every stage, the last started first. A stage that fails to
    /// stop is logged and the others still stop; the first failure is
    /// returned.
    pub(super) async fn stop(self) -> Result<()> {
        let mut first = None;
        for stage in self.0.into_iter().rev() {
            let began = Instant::now();
            match (stage.stop)().await {
                Ok(()) => tracing::debug!(
                    stage = stage.name,
                    ms = began.elapsed().as_millis() as u64,
                    "stopped"
                ),
                Err(e) => {
                    tracing::error!(stage = stage.name, error = %format!("{e:#}"), "stopping failed");
                    first.get_or_insert(e.context(format!("stopping {}", stage.name)));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Starts every stage after the keys are unsealed; returns what the
/// JSON-RPC router serves from.
pub(super) async fn start(
    params: &NodeConfig,
    dir: &DataDir,
    chain_file: ChainFile,
    at_rest: Option<&AtRest>,
    gauges: &NodeGauges,
    stages: &mut Stages,
) -> Result<Arc<RpcState>> {
    let cipher: Option<SharedCipher> = at_rest.map(|a| a.cipher.clone() as SharedCipher);
    let trail = start_audit(params, dir, at_rest, cipher.clone(), stages).await?;
    let genesis = crate::chain_files::load_genesis(dir.root(), cipher.as_ref())?;
    let chain_spec = chain_file.spec()?;
    let genesis_state = genesis.state();
    let mut config = SequencerConfig::new(chain_spec.clone());
    (params.tune)(&mut config);
    config.log_cipher = cipher.clone();
    let (sequencer, chain_store) =
        start_sequencer(dir, genesis, config, cipher.clone(), stages).await?;
    // What key rotation must re-seal, gathered as the stages holding it
    // start.
    let mut sealed: Vec<(&'static str, Arc<dyn KvStore>)> = vec![("chain", chain_store)];

    let prover = if params.prover.enabled {
        let (settings, seq, cipher, trail, dir) = (
            params.prover.clone(),
            sequencer.clone(),
            cipher.clone(),
            trail.clone(),
            dir.clone(),
        );
        let started = tokio::task::spawn_blocking(move || {
            crate::proving::start(
                &dir,
                &settings,
                seq,
                chain_spec,
                genesis_state,
                cipher,
                trail,
            )
        })
        .await??;
        sealed.push(("prover", started.raw));
        let service = started.service;
        stages.started("prover", move || async move {
            tokio::task::spawn_blocking(move || service.stop(Duration::from_secs(5))).await?;
            Ok(())
        });
        Some((started.jobs, started.queue))
    } else {
        None
    };

    let settlement = if params.settlement.enabled {
        let bridge = crate::settling::start(
            dir,
            &params.settlement,
            sequencer.chain().chain_id,
            cipher.clone(),
            trail.clone(),
        )?;
        let status = bridge.status_handle();
        stages.started("settlement", move || async move {
            bridge.stop().await;
            Ok(())
        });
        Some(status)
    } else {
        None
    };

    let (proving, prover_queue) = match prover {
        Some((jobs, queue)) => {
            let lag = ProvingLag::new(jobs, sequencer.clone(), settlement.clone());
            stages.task(
                "proving-lag",
                lag.clone().spawn_log(Duration::from_secs(60)),
            );
            (Some(lag), queue)
        }
        None => (None, None),
    };
    gauges.open(Parts {
        sequencer: sequencer.clone(),
        trail: trail.clone(),
        proving: proving.clone(),
        cipher: at_rest.map(|a| a.cipher.clone()),
        settlement: settlement.clone(),
        data_dir: dir.root().to_path_buf(),
    });

    let access = start_access(params, dir, &sequencer, cipher.clone(), &trail, stages).await?;

    let backup_lock = Arc::new(tokio::sync::Mutex::new(()));
    let socket = backup_plan::serve(
        backup_plan::Sources {
            data_dir: dir.root().to_path_buf(),
            stores: sealed.clone(),
            audit_url: Some(params.audit.database_url(dir.root())),
            provider: at_rest.map(|a| a.provider.clone()),
        },
        backup_lock.clone(),
        trail.clone(),
    );
    if let Some(task) = socket {
        let path = dir.backup_socket();
        stages.started("backup-socket", move || async move {
            task.abort();
            let _ = std::fs::remove_file(path);
            Ok(())
        });
    }

    if let Some(a) = at_rest {
        let holdings = Holdings {
            data_dir: dir.root().to_path_buf(),
            stores: sealed,
            sequencer: sequencer.clone(),
            audit: trail.db().clone(),
            prover_queue,
            backup_lock,
        };
        let upkeep = upkeep::spawn(a.clone(), holdings, trail.clone());
        stages.started("key-upkeep", move || async move {
            upkeep.stop().await;
            Ok(())
        });
    }

    // Written once SIGHUP is handled (access upkeep): `policies reload`
    // signals the pid it names. `node::run` removes it after every stage
    // has stopped.
    let pid_file = dir.pid_file();
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;

    Ok(Arc::new(RpcState {
        proofs_dir: proving.is_some().then(|| dir.proofs()),
        key_status: at_rest.is_some().then(|| {
            Arc::new(status::KeyStatusReport(dir.root().to_path_buf())) as Arc<dyn rpc::StageReport>
        }),
        sequencer,
        access,
        filters: rpc::filters::Filters::new(&params.limits),
        sockets: Default::default(),
        call_metrics: Default::default(),
        limits: params.limits.clone(),
        settlement: settlement
            .map(|s| Arc::new(crate::settling::SettlementReport(s)) as Arc<dyn rpc::StageReport>),
        proving: proving.map(|p| Arc::new(p) as Arc<dyn rpc::StageReport>),
        checks: at_rest
            .cloned()
            .map(ProviderProbe::spawn)
            .into_iter()
            .map(|p| p as Arc<dyn rpc::ReadinessCheck>)
            .collect(),
    }))
}

/// The audit trail, first: every later stage records into it, and its
/// queue is flushed after they stop.
async fn start_audit(
    params: &NodeConfig,
    dir: &DataDir,
    at_rest: Option<&AtRest>,
    cipher: Option<SharedCipher>,
    stages: &mut Stages,
) -> Result<Trail> {
    let trail = audit::trail::open(
        dir.root(),
        &params.audit,
        cipher,
        rpc::request::RequestContext::stamp_current,
    )
    .await?;
    if let Some(a) = at_rest {
        trail
            .record(
                AuditEvent::system(action::KEYS_UNSEALED, Outcome::Allow)
                    .resource("data-keys")
                    .details(json!({ "provider": a.provider.id() })),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    audit::trail::spawn_upkeep(trail.clone(), params.audit.retention_days);
    let flushed = trail.clone();
    stages.started("audit", move || async move {
        if let Err(e) = flushed.log().flush().await {
            tracing::error!(error = %e, "audit events still queued at shutdown");
        }
        Ok(())
    });
    Ok(trail)
}

/// Opens the block log and the derived store, replays what derive had not
/// written, and starts producing. Returns the raw derived store (for
/// re-sealing) beside the sequencer.
async fn start_sequencer(
    dir: &DataDir,
    genesis: sequencer::Genesis,
    config: SequencerConfig,
    cipher: Option<SharedCipher>,
    stages: &mut Stages,
) -> Result<(Arc<Sequencer>, Arc<dyn KvStore>)> {
    let dir = dir.clone();
    let (sequencer, raw) =
        tokio::task::spawn_blocking(move || -> Result<(Sequencer, Arc<dyn KvStore>)> {
            let (raw, store) = open_store(&dir, cipher)?;
            Ok((Sequencer::start(dir.root(), store, &genesis, config)?, raw))
        })
        .await??;
    let sequencer = Arc::new(sequencer);
    tracing::info!(head = sequencer.head().number, "chain open");
    let stopping = sequencer.clone();
    stages.started("sequencer", move || async move {
        tokio::task::spawn_blocking(move || stopping.shutdown()).await??;
        Ok(())
    });
    Ok((sequencer, raw))
}

/// Authentication, policies and wallets; their usage and spend totals are
/// flushed when it stops.
async fn start_access(
    params: &NodeConfig,
    dir: &DataDir,
    sequencer: &Sequencer,
    cipher: Option<SharedCipher>,
    trail: &Trail,
    stages: &mut Stages,
) -> Result<Arc<Access>> {
    let access = access_setup::open(
        dir.root(),
        sequencer.chain().chain_id,
        &params.access,
        cipher,
        trail.clone(),
    )
    .await?;
    access_setup::spawn_upkeep(access.clone());
    let flushed = access.clone();
    stages.started("access", move || async move {
        let _ = flushed.authn.keys().flush_usage();
        let _ = flushed.spend.flush();
        Ok(())
    });
    Ok(access)
}

/// Opens the derived store: the raw redb file, wrapped by the cipher when
/// encryption is on. Returns (raw, what the chain uses).
fn open_store(
    dir: &DataDir,
    cipher: Option<SharedCipher>,
) -> Result<(Arc<dyn KvStore>, Arc<dyn KvStore>)> {
    let raw: Arc<dyn KvStore> = Arc::new(RedbStore::open(&dir.state_store())?);
    Ok((raw.clone(), EncryptedStore::wrap_if(raw, cipher)))
}
