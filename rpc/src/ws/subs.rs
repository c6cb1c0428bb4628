//! One connection's subscriptions (`eth_subscribe`) and what each is sent.
//!
//! Deliveries are computed with the subscriber's rights at delivery time,
//! through the same block view as `eth_getLogs` and the block reads: a log
//! the subscriber may not see is never sent, and a right revoked since the
//! subscription was made is revoked for it too.

use super::super::{
    access::RequestCaller,
    chain_reads::{block_at, to_json, view},
    jsonrpc::{code, RpcError},
    params::Params,
    private::BlockView,
    RpcState,
};
use alloy_primitives::U128;
use alloy_rpc_types_eth::{Filter, FilterBlockOption, Log};
use axum::extract::ws::Message;
use sequencer::PendingTx;
use serde_json::{json, Value};
use std::{collections::BTreeMap, time::Duration};
use tokio::sync::mpsc;

/// What a subscription is sent.
pub(super) enum Kind {
    /// Each new block's header (`newHeads`).
    Heads,
    /// Matching logs of each new block (`logs`).
    Logs(Box<Filter>),
    /// Hashes of the subscriber's own transactions entering the pool
    /// (`newPendingTransactions`).
    Pending,
}

impl Kind {
    /// Parses `eth_subscribe`'s parameters.
    pub(super) fn parse(p: &Params) -> Result<Self, RpcError> {
        let name: String = p.at_most(2)?.req(0, "subscription type")?;
        match name.as_str() {
            "newHeads" => p.at_most(1).map(|_| Self::Heads),
            "newPendingTransactions" => p.at_most(1).map(|_| Self::Pending),
            "logs" => {
                let filter: Filter = p.opt(1, "filter")?.unwrap_or_default();
                if matches!(filter.block_option, FilterBlockOption::AtBlockHash(_)) {
                    return Err(RpcError::invalid_params(
                        "a logs subscription follows new blocks: blockHash is not allowed",
                    ));
                }
                Ok(Self::Logs(Box::new(filter)))
            }
            other => Err(RpcError::invalid_params(format!(
                "unsupported subscription type {other:?}: newHeads, logs or newPendingTransactions"
            ))),
        }
    }

    /// The method whose permission this subscription needs besides
    /// `eth_subscribe`: the polled filter that would show the same.
    pub(super) fn action(&self) -> &'static str {
        match self {
            Self::Heads => "eth_newBlockFilter",
            Self::Logs(_) => "eth_newFilter",
            Self::Pending => "eth_newPendingTransactionFilter",
        }
    }
}

/// A delivery could not be queued: stop delivering.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The connection is gone.
    Gone,
    /// The queue stayed full for the whole wait: the reader is too slow.
    Slow,
}

/// Where deliveries go: the connection's bounded queue, and how long one
/// delivery may wait for room in it.
pub(super) struct Outbox<'a> {
    pub(super) queue: &'a mpsc::Sender<Message>,
    pub(super) wait: Duration,
}

impl Outbox<'_> {
    async fn emit(&self, v: Value) -> Result<(), Stop> {
        let msg = Message::Text(v.to_string().into());
        match self.queue.send_timeout(msg, self.wait).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(Stop::Slow),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Stop::Gone),
        }
    }
}

/// A connection's subscriptions, in the order they were made.
pub(super) struct Subs {
    by_id: BTreeMap<u128, Kind>,
    cap: usize,
    /// The first block not yet delivered to block subscriptions.
    next_block: u64,
}

impl Subs {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            by_id: BTreeMap::new(),
            cap: cap.max(1),
            next_block: 0,
        }
    }

    /// Adds a subscription starting after block `head`.
    pub(super) fn add(&mut self, kind: Kind, head: u64) -> Result<u128, RpcError> {
        if self.by_id.len() >= self.cap {
            return Err(RpcError::new(
                code::LIMIT,
                format!(
                    "too many subscriptions: at most {} per connection; unsubscribe one first",
                    self.cap
                ),
            ));
        }
        if !self.wants_blocks() {
            self.next_block = head + 1;
        }
        let id = loop {
            let id: u128 = rand::random();
            if id != 0 && !self.by_id.contains_key(&id) {
                break id;
            }
        };
        self.by_id.insert(id, kind);
        Ok(id)
    }

    /// Removes a subscription; false when this connection has no such id.
    pub(super) fn remove(&mut self, id: u128) -> bool {
        self.by_id.remove(&id).is_some()
    }

    pub(super) fn wants_blocks(&self) -> bool {
        self.by_id
            .values()
            .any(|k| matches!(k, Kind::Heads | Kind::Logs(_)))
    }

    pub(super) fn wants_pending(&self) -> bool {
        self.by_id.values().any(|k| matches!(k, Kind::Pending))
    }

    /// Sends each block subscription what blocks up to `head` bring it.
    pub(super) async fn blocks(
        &mut self,
        state: &RpcState,
        rc: &RequestCaller,
        head: u64,
        out: &Outbox<'_>,
    ) -> Result<Result<(), Stop>, RpcError> {
        let v = view(state)?;
        while self.next_block <= head {
            let number = self.next_block;
            let Some(block) = block_at(&v, number)? else {
                break;
            };
            let seen = BlockView::new(state, rc, &block);
            let mut header = None;
            let mut logs: Option<Vec<Log>> = None;
            for (id, kind) in &self.by_id {
                match kind {
                    Kind::Heads => {
                        if header.is_none() {
                            let root = v.state_root(number).map_err(RpcError::internal)?;
                            header = Some(to_json(&seen.block(root, false).header)?);
                        }
                        let h = header.clone().unwrap_or_default();
                        if let Err(stop) = out.emit(notification(*id, h)).await {
                            return Ok(Err(stop));
                        }
                    }
                    Kind::Logs(filter) => {
                        if !filter.matches_bloom(block.header.logs_bloom) {
                            continue;
                        }
                        let shown = logs.get_or_insert_with(|| {
                            (0..block.txs.len()).flat_map(|i| seen.logs(i)).collect()
                        });
                        for log in shown.iter().filter(|l| filter.matches(&l.inner)) {
                            if let Err(stop) = out.emit(notification(*id, to_json(log)?)).await {
                                return Ok(Err(stop));
                            }
                        }
                    }
                    Kind::Pending => {}
                }
            }
            self.next_block = number + 1;
        }
        Ok(Ok(()))
    }

    /// Sends a pooled transaction's hash to pending subscriptions, if it is
    /// the subscriber's own.
    pub(super) async fn pending(
        &self,
        rc: &RequestCaller,
        tx: &PendingTx,
        out: &Outbox<'_>,
    ) -> Result<(), Stop> {
        if !rc.caller.owns(&tx.sender) {
            return Ok(());
        }
        for (id, kind) in &self.by_id {
            if matches!(kind, Kind::Pending) {
                out.emit(notification(*id, json!(tx.hash))).await?;
            }
        }
        Ok(())
    }
}

/// The subscription id as clients see it.
pub(super) fn id_json(id: u128) -> Value {
    to_json(U128::from(id)).unwrap_or(Value::Null)
}

fn notification(id: u128, result: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "eth_subscription",
        "params": { "subscription": id_json(id), "result": result },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        Params::new(v).unwrap()
    }

    #[test]
    fn subscription_types_parse_and_bad_ones_are_named() {
        assert!(matches!(
            Kind::parse(&params(json!(["newHeads"]))).unwrap(),
            Kind::Heads
        ));
        let logs = Kind::parse(&params(
            json!(["logs", {"address": "0x0000000000000000000000000000000000000001"}]),
        ));
        assert!(matches!(logs.unwrap(), Kind::Logs(_)));
        let unknown = Kind::parse(&params(json!(["syncing"]))).err().unwrap();
        assert_eq!(unknown.code, code::INVALID_PARAMS);
        assert!(unknown.message.contains("syncing"), "{}", unknown.message);
        let bad_filter = Kind::parse(&params(json!(["logs", {"address": 7}])))
            .err()
            .unwrap();
        assert_eq!(bad_filter.code, code::INVALID_PARAMS);
        let by_hash = Kind::parse(&params(
            json!(["logs", {"blockHash": format!("0x{}", "11".repeat(32))}]),
        ));
        assert_eq!(by_hash.err().unwrap().code, code::INVALID_PARAMS);
        assert!(Kind::parse(&params(json!(["newHeads", {}, 3]))).is_err());
    }

    #[test]
    fn a_connection_holds_at_most_its_cap_and_ids_are_its_own() {
        let mut subs = Subs::new(2);
        let a = subs.add(Kind::Heads, 5).unwrap();
        subs.add(Kind::Pending, 5).unwrap();
        assert_eq!(subs.add(Kind::Heads, 5).unwrap_err().code, code::LIMIT);
        assert!(!subs.remove(a ^ 1), "an unknown id was removed");
        assert!(subs.remove(a));
        assert!(!subs.wants_blocks());
        assert!(subs.wants_pending());
        subs.add(Kind::Heads, 9).unwrap();
        assert_eq!(
            subs.next_block, 10,
            "a new block subscription starts after the head"
        );
    }
}
