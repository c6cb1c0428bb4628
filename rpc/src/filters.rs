//! Polled filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`,
//! `eth_getFilterLogs`, `eth_uninstallFilter`): what viem's and ethers'
//! watchers poll over HTTP.
//!
//! A filter belongs to the principal that installed it: anyone else asking
//! for it is told it does not exist, so an id is no capability. Each answer
//! is computed at poll time with the poller's rights, exactly as
//! `eth_getLogs` and the block reads would answer it now, so a right
//! revoked after installation is revoked for the filter too. Filters end
//! after `filter_idle` without a poll, and each principal may hold at most
//! `max_filters_per_principal`: a forgotten or hostile client cannot grow
//! the node's memory.

use super::{
    access::RequestCaller,
    chain_reads::{block_at, get_logs, logs_between, resolve, to_json, view},
    jsonrpc::{code, RpcError},
    params::Params,
    RpcLimits, RpcState,
};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{B256, U128};
use alloy_rpc_types_eth::{Filter, FilterBlockOption};
use parking_lot::Mutex;
use sequencer::PendingTx;
use serde_json::Value;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// The methods this module answers.
pub(super) const METHODS: &[&str] = &[
    "eth_newFilter",
    "eth_newBlockFilter",
    "eth_newPendingTransactionFilter",
    "eth_getFilterChanges",
    "eth_getFilterLogs",
    "eth_uninstallFilter",
];

/// What a filter watches, and where its next poll starts.
enum Watch {
    /// Matching logs of blocks from `next` on.
    Logs { filter: Box<Filter>, next: u64 },
    /// Hashes of blocks from `next` on.
    Blocks { next: u64 },
    /// The owner's own transactions as they enter the pool.
    Pending(broadcast::Receiver<PendingTx>),
}

struct Installed {
    owner: String,
    watch: Watch,
    last_poll: Instant,
}

/// The installed filters of all principals.
pub struct Filters {
    inner: Mutex<Inner>,
    idle: Duration,
    per_principal: usize,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<u128, Installed>,
    per_owner: HashMap<String, usize>,
}

impl Inner {
    fn remove(&mut self, id: u128) -> Option<Installed> {
        let gone = self.by_id.remove(&id)?;
        if let Some(n) = self.per_owner.get_mut(&gone.owner) {
            *n -= 1;
            if *n == 0 {
                self.per_owner.remove(&gone.owner);
            }
        }
        Some(gone)
    }

    fn sweep(&mut self, now: Instant, idle: Duration) {
        let expired: Vec<u128> = self
            .by_id
            .iter()
            .filter(|(_, f)| now.duration_since(f.last_poll) > idle)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.remove(id);
        }
    }
}

impl Filters {
    /// An empty registry with the limits' idle time and cap.
    pub fn new(limits: &RpcLimits) -> Self {
        Self {
            inner: Mutex::default(),
            idle: limits.filter_idle,
            per_principal: limits.max_filters_per_principal.max(1),
        }
    }

    /// Installed filters, all principals.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    fn install(&self, owner: String, watch: Watch) -> Result<u128, RpcError> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.sweep(now, self.idle);
        let held = inner.per_owner.get(&owner).copied().unwrap_or(0);
        if held >= self.per_principal {
            return Err(RpcError::new(
                code::LIMIT,
                format!(
                    "too many filters: at most {} per principal; uninstall one first",
                    self.per_principal
                ),
            ));
        }
        let id = loop {
            let id: u128 = rand::random();
            if id != 0 && !inner.by_id.contains_key(&id) {
                break id;
            }
        };
        *inner.per_owner.entry(owner.clone()).or_default() += 1;
        inner.by_id.insert(
            id,
            Installed {
                owner,
                watch,
                last_poll: now,
            },
        );
        Ok(id)
    }

    /// Runs `f` on `owner`'s filter `id` (refreshing its idle clock), or
    /// says it does not exist: unknown, expired and another's all look alike.
    fn with<T>(
        &self,
        owner: &str,
        id: u128,
        f: impl FnOnce(&mut Watch) -> T,
    ) -> Result<T, RpcError> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let expired = match inner.by_id.get(&id) {
            Some(found) if found.owner == owner => now.duration_since(found.last_poll) > self.idle,
            _ => return Err(not_found()),
        };
        if expired {
            inner.remove(id);
            return Err(not_found());
        }
        let found = inner.by_id.get_mut(&id).ok_or_else(not_found)?;
        found.last_poll = now;
        Ok(f(&mut found.watch))
    }

    fn uninstall(&self, owner: &str, id: u128) -> bool {
        let mut inner = self.inner.lock();
        match inner.by_id.get(&id) {
            Some(f) if f.owner == owner => inner.remove(id).is_some(),
            _ => false,
        }
    }
}

fn not_found() -> RpcError {
    RpcError::server("filter not found")
}

fn filter_id(p: &Params) -> Result<u128, RpcError> {
    let id: U128 = p.at_most(1)?.req(0, "filter id")?;
    Ok(id.to::<u128>())
}

/// Answers `method` (one of [`METHODS`]).
pub(super) fn handle(
    state: &RpcState,
    rc: &RequestCaller,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    let filters = &state.filters;
    let owner = rc.caller.principal.key();
    let head = || -> Result<u64, RpcError> { view(state)?.head().map_err(RpcError::internal) };
    match method {
        "eth_newFilter" => {
            let filter: Filter = p.at_most(1)?.req(0, "filter")?;
            let next = match filter.block_option {
                FilterBlockOption::AtBlockHash(_) => {
                    return Err(RpcError::invalid_params(
                        "a filter watches new blocks: use eth_getLogs for one block hash",
                    ))
                }
                // Changes start with the next block, or the filter's own
                // fromBlock when that is later.
                FilterBlockOption::Range { from_block, .. } => {
                    let next = head()? + 1;
                    match from_block {
                        Some(BlockNumberOrTag::Number(n)) => n.max(next),
                        _ => next,
                    }
                }
            };
            let watch = Watch::Logs {
                filter: Box::new(filter),
                next,
            };
            to_json(U128::from(filters.install(owner, watch)?))
        }
        "eth_newBlockFilter" => {
            p.at_most(0)?;
            let next = head()? + 1;
            to_json(U128::from(filters.install(owner, Watch::Blocks { next })?))
        }
        "eth_newPendingTransactionFilter" => {
            p.at_most(0)?;
            let feed = state.sequencer.pending_feed();
            to_json(U128::from(filters.install(owner, Watch::Pending(feed))?))
        }
        "eth_uninstallFilter" => Ok(Value::Bool(filters.uninstall(&owner, filter_id(p)?))),
        "eth_getFilterLogs" => {
            let id = filter_id(p)?;
            let filter = filters.with(&owner, id, |w| match w {
                Watch::Logs { filter, .. } => Some(filter.clone()),
                _ => None,
            })?;
            let filter =
                filter.ok_or_else(|| RpcError::invalid_params("filter is not a log filter"))?;
            get_logs(state, rc, &filter).and_then(to_json)
        }
        "eth_getFilterChanges" => changes(state, rc, &owner, filter_id(p)?),
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("the method {method} does not exist/is not available"),
        )),
    }
}

/// What happened since the last poll. A long-unpolled log or block filter
/// is answered `max_log_range` blocks at a time: the rest comes with the
/// next polls, nothing is skipped.
fn changes(state: &RpcState, rc: &RequestCaller, owner: &str, id: u128) -> Result<Value, RpcError> {
    enum Due {
        Logs(Box<Filter>, u64),
        Blocks(u64),
        Pending(Vec<PendingTx>),
    }
    let due = state.filters.with(owner, id, |w| match w {
        Watch::Logs { filter, next } => Due::Logs(filter.clone(), *next),
        Watch::Blocks { next } => Due::Blocks(*next),
        Watch::Pending(feed) => {
            let mut seen = Vec::new();
            loop {
                match feed.try_recv() {
                    Ok(tx) => seen.push(tx),
                    // Older entries were overwritten while nobody polled.
                    Err(TryRecvError::Lagged(_)) => continue,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            Due::Pending(seen)
        }
    })?;
    let v = view(state)?;
    let head = v.head().map_err(RpcError::internal)?;
    let span = state.limits.max_log_range.max(1);
    match due {
        Due::Pending(seen) => {
            let own: Vec<B256> = seen
                .into_iter()
                .filter(|tx| rc.caller.owns(&tx.sender))
                .map(|tx| tx.hash)
                .collect();
            to_json(own)
        }
        Due::Blocks(next) => {
            let to = head.min(next.saturating_add(span - 1));
            let mut hashes = Vec::new();
            for n in next..=to {
                match block_at(&v, n)? {
                    Some(b) => hashes.push(b.hash),
                    None => break,
                }
            }
            advance(state, owner, id, next + hashes.len() as u64);
            to_json(hashes)
        }
        Due::Logs(filter, next) => {
            let last = match filter.block_option {
                FilterBlockOption::Range {
                    to_block: Some(tag @ BlockNumberOrTag::Number(_)),
                    ..
                } => resolve(&v, tag)?,
                _ => u64::MAX,
            };
            let to = head.min(last).min(next.saturating_add(span - 1));
            if to < next {
                return to_json(Vec::<Value>::new());
            }
            let logs = logs_between(state, rc, &filter, next, to)?;
            advance(state, owner, id, to + 1);
            to_json(logs)
        }
    }
}

/// Moves the filter's next block on (if it is still installed).
fn advance(state: &RpcState, owner: &str, id: u128, to: u64) {
    let _ = state.filters.with(owner, id, |w| match w {
        Watch::Logs { next, .. } | Watch::Blocks { next } => *next = (*next).max(to),
        Watch::Pending(_) => {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(idle_ms: u64, cap: usize) -> Filters {
        Filters::new(&RpcLimits {
            filter_idle: Duration::from_millis(idle_ms),
            max_filters_per_principal: cap,
            ..RpcLimits::default()
        })
    }

    #[test]
    fn a_filter_is_found_only_by_its_owner() {
        let f = registry(60_000, 4);
        let id = f
            .install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        assert!(f.with("alice", id, |_| ()).is_ok());
        let other = f.with("mallory", id, |_| ()).unwrap_err();
        assert_eq!(other.message, "filter not found");
        assert!(
            !f.uninstall("mallory", id),
            "another's uninstall removed it"
        );
        assert!(f.uninstall("alice", id));
        assert_eq!(
            f.with("alice", id, |_| ()).unwrap_err().message,
            "filter not found"
        );
    }

    #[test]
    fn each_principal_has_its_own_cap_and_uninstalling_frees_a_place() {
        let f = registry(60_000, 2);
        let a = f
            .install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        f.install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        let refused = f
            .install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap_err();
        assert_eq!(refused.code, code::LIMIT, "{refused:?}");
        // Another principal is not held back by alice's filters.
        f.install("bob".into(), Watch::Blocks { next: 1 }).unwrap();
        assert!(f.uninstall("alice", a));
        f.install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn an_unpolled_filter_expires_and_a_polled_one_does_not() {
        let f = registry(80, 8);
        let polled = f
            .install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        let idle = f
            .install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(40));
            f.with("alice", polled, |_| ()).unwrap();
        }
        assert!(
            f.with("alice", idle, |_| ()).is_err(),
            "idle filter survived"
        );
        assert!(f.with("alice", polled, |_| ()).is_ok());
        // The expired one no longer counts against the cap.
        f.install("alice".into(), Watch::Blocks { next: 1 })
            .unwrap();
        assert_eq!(f.len(), 2);
    }
}
