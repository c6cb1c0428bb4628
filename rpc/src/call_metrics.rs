//! `prividium_rpc_requests_total` and `prividium_rpc_request_duration_seconds`
//! with their handles kept. A labelled `counter!` or `histogram!` builds its
//! key and searches the registry on every use; a batch of 50 submissions did
//! that a hundred times. Here each (method, outcome) pair is registered once
//! and a call costs a map lookup and the atomic updates. The set is bounded:
//! methods are the catalog's actions (or `other`), outcomes a fixed list.

use metrics::{Counter, Histogram};
use parking_lot::RwLock;
use std::collections::HashMap;

/// A method action and an outcome.
type Pair = (&'static str, &'static str);

/// The request metrics' handles, by method action and outcome.
#[derive(Default)]
pub struct CallMetrics {
    handles: RwLock<HashMap<Pair, (Counter, Histogram)>>,
}

impl std::fmt::Debug for CallMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetrics")
            .field("pairs", &self.handles.read().len())
            .finish()
    }
}

impl CallMetrics {
    /// Counts one call of `method` that ended as `outcome` after `seconds`.
    pub(crate) fn record(&self, method: &'static str, outcome: &'static str, seconds: f64) {
        let hit = self.handles.read().get(&(method, outcome)).cloned();
        let (count, duration) = hit.unwrap_or_else(|| {
            self.handles
                .write()
                .entry((method, outcome))
                .or_insert_with(|| {
                    (
                        metrics::counter!(
                            "prividium_rpc_requests_total",
                            "method" => method,
                            "outcome" => outcome
                        ),
                        metrics::histogram!(
                            "prividium_rpc_request_duration_seconds",
                            "method" => method
                        ),
                    )
                })
                .clone()
        });
        duration.record(seconds);
        count.increment(1);
    }
}
