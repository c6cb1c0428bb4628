//! The front door's use of access control: the caller of one request, the
//! policy questions it raises, and the per-request answers worth keeping.

use super::jsonrpc::RpcError;
use access_control::{
    directory::ContractDirectory,
    policy::{AccountFacts, Circumstances, Decision, PolicyEngine, Resource, TxFacts},
    siwe::SiweChallenges,
    spend::SpendTracker,
    wallets::Wallets,
    Authenticator, Caller,
};
use alloy_primitives::{Address, B256};
use sequencer::{Sequencer, StoredTx};
use std::sync::{Arc, OnceLock};

/// Everything access control needs at run time.
pub struct Access {
    /// Token and key checks.
    pub authn: Authenticator,
    /// Wallet bindings.
    pub wallets: Arc<Wallets>,
    /// Policies.
    pub engine: Arc<PolicyEngine>,
    /// Deployed contracts.
    pub directory: Arc<ContractDirectory>,
    /// Daily value totals.
    pub spend: SpendTracker,
    /// Outstanding wallet-binding challenges.
    pub siwe: SiweChallenges,
    /// Fair share of requests per principal and organization.
    pub rate: access_control::rate::RateLimiter,
    /// Scans of the chain for deployments run one at a time.
    pub scan: tokio::sync::Mutex<()>,
    /// The audit trail every decision and admin change goes to.
    pub trail: audit::Trail,
    /// Which authentications have been recorded this minute.
    pub auth_seen: super::auth_seen::AuthSeen,
    /// Recent callers, so a principal's next request reuses its policy
    /// entity and node-level answers.
    pub callers: CallerCache,
}

/// Callers most recently seen, by principal key. A request reuses the
/// cached caller only when its principal (roles, organization, expiry) and
/// its wallets right now are exactly the cached ones, so nothing derived
/// from the caller can be stale; anything else replaces the entry.
#[derive(Debug, Default)]
pub struct CallerCache(parking_lot::Mutex<std::collections::HashMap<String, Caller>>);

/// Principals kept; past that the cache starts again (a cold entry costs
/// one policy evaluation per question, nothing more).
const CALLERS_KEPT: usize = 4_096;

impl CallerCache {
    fn get_or_insert(
        &self,
        key: String,
        principal: Arc<access_control::Principal>,
        wallets: std::collections::BTreeSet<Address>,
    ) -> Caller {
        let mut map = self.0.lock();
        if let Some(c) = map.get(&key) {
            if *c.principal == *principal && c.wallets == wallets {
                return c.clone();
            }
        }
        if map.len() >= CALLERS_KEPT {
            map.clear();
        }
        let caller = Caller::new(principal, wallets);
        map.insert(key, caller.clone());
        caller
    }
}

/// One authenticated request's caller, with lazily decided blanket rights.
pub struct RequestCaller {
    /// Identity and wallets.
    pub caller: Caller,
    view_all: OnceLock<bool>,
    act_for_others: OnceLock<bool>,
}

impl RequestCaller {
    /// Wraps `caller`.
    pub fn new(caller: Caller) -> Self {
        Self {
            caller,
            view_all: OnceLock::new(),
            act_for_others: OnceLock::new(),
        }
    }
}

impl Access {
    /// The caller behind a verified principal.
    pub fn caller(&self, principal: Arc<access_control::Principal>) -> Caller {
        let key = principal.key();
        let wallets = self.wallets.of(&key);
        self.callers.get_or_insert(key, principal, wallets)
    }

    fn rpc(&self, c: &Caller, action: &str) -> Decision {
        self.engine
            .decide(c, action, &Resource::Node, &Circumstances::Rpc)
    }

    /// May the caller call this method at all?
    pub(crate) fn check_method(&self, rc: &RequestCaller, action: &str) -> Result<(), RpcError> {
        let d = self.rpc(&rc.caller, action);
        if d.allowed {
            Ok(())
        } else {
            Err(RpcError::forbidden(
                format!("{} may not call {action}", rc.caller.principal),
                &d.rule,
            ))
        }
    }

    /// Sees everything (auditors, admins): no per-item questions needed.
    pub fn view_all(&self, rc: &RequestCaller) -> bool {
        *rc.view_all
            .get_or_init(|| self.rpc(&rc.caller, "view_all").allowed)
    }

    /// May submit or simulate as wallets not bound to them.
    pub fn act_for_others(&self, rc: &RequestCaller) -> bool {
        *rc.act_for_others
            .get_or_init(|| self.rpc(&rc.caller, "act_for_others").allowed)
    }

    /// A call guard for `rc`'s transaction (or simulation) signed by
    /// `signer`; `memoized` when the same frames run again (a simulation
    /// searching for gas, a transaction from admission to its block).
    pub fn guard(
        &self,
        rc: &RequestCaller,
        mode: access_control::policy::ExecMode,
        signer: Address,
        spent_today_gwei: u64,
        memoized: bool,
    ) -> state_transition::SharedGuard {
        let guard = access_control::policy::PolicyGuard::new(
            self.engine.clone(),
            rc.caller.clone(),
            self.directory.clone(),
            mode,
            signer,
            spent_today_gwei,
        );
        Arc::new(if memoized { guard.memoized() } else { guard })
    }

    /// Facts about an address for policies.
    pub fn account(&self, address: &Address) -> AccountFacts {
        use access_control::policy::AccountDirectory;
        self.directory.account(address)
    }

    /// Balance / nonce / code of `address` may be shown?
    pub(crate) fn check_account(
        &self,
        rc: &RequestCaller,
        address: &Address,
    ) -> Result<(), RpcError> {
        if self.view_all(rc) || rc.caller.owns(address) {
            return Ok(());
        }
        let d = self.engine.decide(
            &rc.caller,
            "view_account",
            &Resource::Account(self.account(address)),
            &Circumstances::Rpc,
        );
        if d.allowed {
            Ok(())
        } else {
            Err(RpcError::forbidden(
                format!("{} may not view account {address:#x}", rc.caller.principal),
                &d.rule,
            ))
        }
    }

    /// How much of a mined transaction the caller may see.
    pub fn tx_visibility(&self, rc: &RequestCaller, tx: &StoredTx) -> Visibility {
        let to = alloy_consensus::Transaction::to(&tx.envelope);
        if self.view_all(rc) || rc.caller.owns(&tx.sender) || to.is_some_and(|t| rc.caller.owns(&t))
        {
            return Visibility::Full;
        }
        let mut participants = vec![tx.sender];
        participants.extend(to);
        for log in tx.receipt.logs() {
            participants.extend(topic_addresses(log.topics()));
        }
        let facts = TxFacts {
            hash: *tx.envelope.tx_hash(),
            from: tx.sender,
            to,
            participants,
        };
        let d = self.engine.decide(
            &rc.caller,
            "view_tx",
            &Resource::Transaction(facts),
            &Circumstances::Rpc,
        );
        if d.allowed {
            Visibility::Partial
        } else {
            Visibility::Hidden
        }
    }

    /// May the caller see this log?
    pub fn log_visible(&self, rc: &RequestCaller, log: &alloy_primitives::Log) -> bool {
        if self.view_all(rc) {
            return true;
        }
        let topics = log.topics();
        let d = self.engine.decide(
            &rc.caller,
            "view_log",
            &Resource::Account(self.account(&log.address)),
            &Circumstances::Log {
                topic0: topics.first().copied(),
                addresses: topic_addresses(topics).collect(),
            },
        );
        d.allowed
    }

    /// Brings the contract directory up to the derived head. The in-memory
    /// head answers the common case (nothing new) without opening a view.
    pub(crate) async fn sync_directory(&self, seq: &Sequencer) -> Result<(), RpcError> {
        let derived = seq.head();
        let next = self.directory.next_block();
        if next > derived.number {
            return Ok(());
        }
        if derived.last_deploy < next {
            // No block since the last scan deployed anything: move past them
            // without decoding them (a full block decode, under the scan
            // lock every submission then queues on, once per block).
            // `record` never moves backwards, so a scan running beside this
            // still records what it found.
            return self
                .directory
                .record(Vec::new(), derived.number)
                .map_err(RpcError::internal);
        }
        let _one_at_a_time = self.scan.lock().await;
        let view = seq.view().map_err(RpcError::internal)?;
        let head = view.head().map_err(RpcError::internal)?;
        let from = self.directory.next_block();
        if from > head {
            return Ok(());
        }
        let mut found = Vec::new();
        for n in from..=head {
            if let Some(block) = view.block(n).map_err(RpcError::internal)? {
                found.extend(
                    block
                        .txs
                        .iter()
                        .filter_map(|t| t.contract_address.map(|c| (c, t.sender))),
                );
            }
        }
        self.directory
            .record(found, head)
            .map_err(RpcError::internal)
    }
}

/// How much of a transaction a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everything.
    Full,
    /// Its existence and the logs they may see; input blanked.
    Partial,
    /// Nothing: it is reported as not found.
    Hidden,
}

/// Addresses in indexed topics (a topic whose first 12 bytes are zero).
pub fn topic_addresses(topics: &[B256]) -> impl Iterator<Item = Address> + '_ {
    topics
        .iter()
        .skip(1)
        .filter(|t| t[..12].iter().all(|b| *b == 0) && t[12..].iter().any(|b| *b != 0))
        .map(|t| Address::from_slice(&t[12..]))
}
