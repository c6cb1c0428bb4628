//! Is the key provider still there? Once unsealed the node holds its data
//! keys in memory and keeps serving without the provider, but it cannot
//! rotate, restart or take a CLI command that needs the keys: operators
//! must hear about it before then. Every few seconds the current data key
//! is unwrapped again (a real round trip to OpenBao/Vault, or to the
//! sealed key file); the answer feeds `/readyz` and the metrics.

use super::at_rest::AtRest;
use parking_lot::Mutex;
use std::{sync::Arc, time::Duration};
use storage::RecordCipher;

/// How often the provider is asked.
const EVERY: Duration = Duration::from_secs(5);
/// A provider slower than this counts as down.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The last answer of the key provider (None: it answered).
#[derive(Default)]
pub struct ProviderProbe {
    problem: Mutex<Option<String>>,
}

impl ProviderProbe {
    /// Starts asking `at`'s provider; the task ends when the probe is
    /// dropped by everyone else.
    pub fn spawn(at: AtRest) -> Arc<Self> {
        let probe = Arc::new(Self::default());
        let weak = Arc::downgrade(&probe);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(probe) = weak.upgrade() else {
                    return;
                };
                let problem = ask(&at).await.err();
                metrics::gauge!("prividium_key_provider_up").set(if problem.is_none() {
                    1.0
                } else {
                    0.0
                });
                let mut last = probe.problem.lock();
                match (&*last, &problem) {
                    (None, Some(p)) => {
                        tracing::error!(problem = %p, "key provider unreachable; serving on the keys in memory")
                    }
                    (Some(_), None) => tracing::info!("key provider reachable again"),
                    _ => {}
                }
                *last = problem;
            }
        });
        probe
    }
}

async fn ask(at: &AtRest) -> Result<(), String> {
    let doc = at
        .keyring
        .read()
        .map_err(|_| "the keyring file is unreadable".to_owned())?;
    let current = at.cipher.current_version();
    let record = doc
        .deks
        .iter()
        .find(|d| d.version == current)
        .ok_or_else(|| format!("data key {current} missing from the keyring"))?;
    // The reasons go to the public /readyz: no provider address in them
    // (the log has it).
    match tokio::time::timeout(TIMEOUT, at.provider.unwrap_key(&record.wrapped)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(provider = %at.provider.id(), error = %e, "key provider refused the current data key");
            Err("key provider refused to unwrap the current data key".into())
        }
        Err(_) => {
            tracing::warn!(provider = %at.provider.id(), "key provider did not answer");
            Err(format!(
                "key provider did not answer within {} s",
                TIMEOUT.as_secs()
            ))
        }
    }
}

impl rpc::ReadinessCheck for ProviderProbe {
    fn component(&self) -> &'static str {
        "key-provider"
    }

    fn check(&self) -> Result<(), String> {
        match &*self.problem.lock() {
            None => Ok(()),
            Some(p) => Err(p.clone()),
        }
    }
}
