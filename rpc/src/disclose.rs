//! `prividium_disclose`: one fact about the chain at the end of a settled
//! batch ("account A held V of token T"), as a `disclosure` file with
//! EIP-1186 proofs against the batch's new state root and the opening of
//! the state commitment the settlement contract holds for it. The
//! recipient checks it with `prividium verify-disclosure` and public data.
//!
//! Issuing is the policy action `disclose` (compliance officers in the
//! shipped policies), decided before this module runs; every issued
//! disclosure is recorded in the audit log before it is handed out.

use super::{
    access::RequestCaller,
    chain_reads::to_json,
    jsonrpc::{code, RpcError},
    params::Params,
    proof::{eip1186, state_proof_at},
    RpcState,
};
use crate::request::by_caller;
use alloy_primitives::{Address, B256, U256};
use alloy_serde::storage::JsonStorageKey;
use audit::{action, Outcome};
use disclosure::{Anchor, Disclosure, Statement, FORMAT};
use serde::Deserialize;
use serde_json::{json, Value};

/// The methods this module answers.
pub(crate) const METHODS: &[&str] = &["prividium_disclose"];

/// What is asked for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    kind: Kind,
    account: Address,
    batch: u64,
    token: Option<Address>,
    balances_slot: Option<U256>,
    slot: Option<B256>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Balance,
    TokenBalance,
    Storage,
}

/// The fields of `proofs/batch-N.json` a disclosure is anchored with.
#[derive(Debug, Deserialize)]
struct Proven {
    chain_id: u64,
    batch_number: u64,
    last_block: u64,
    new_state_root: B256,
    last_block_hash: B256,
}

impl Request {
    /// The account to prove and the storage slot to read, if any.
    fn target(&self) -> Result<(Address, Option<B256>), RpcError> {
        let unexpected = |what: &str| {
            Err(RpcError::invalid_params(format!(
                "{what} does not apply to a {:?} disclosure",
                self.kind
            )))
        };
        match self.kind {
            Kind::Balance => {
                if self.token.is_some() || self.balances_slot.is_some() || self.slot.is_some() {
                    return unexpected("token, balancesSlot or slot");
                }
                Ok((self.account, None))
            }
            Kind::TokenBalance => {
                if self.slot.is_some() {
                    return unexpected("slot");
                }
                let (Some(token), Some(slot)) = (self.token, self.balances_slot) else {
                    return Err(RpcError::invalid_params(
                        "a token balance needs token and balancesSlot (the slot of the token's balances mapping in its declared storage layout)",
                    ));
                };
                Ok((token, Some(disclosure::mapping_key(self.account, slot))))
            }
            Kind::Storage => {
                if self.token.is_some() || self.balances_slot.is_some() {
                    return unexpected("token or balancesSlot");
                }
                let slot = self
                    .slot
                    .ok_or_else(|| RpcError::invalid_params("a storage disclosure needs slot"))?;
                Ok((self.account, Some(slot)))
            }
        }
    }

    fn statement(&self, value: U256) -> Statement {
        match self.kind {
            Kind::Balance => Statement::Balance {
                account: self.account,
                value,
            },
            Kind::TokenBalance => Statement::TokenBalance {
                account: self.account,
                token: self.token.unwrap_or_default(),
                balances_slot: self.balances_slot.unwrap_or_default(),
                value,
            },
            Kind::Storage => Statement::Storage {
                account: self.account,
                slot: self.slot.unwrap_or_default(),
                value,
            },
        }
    }
}

pub(crate) async fn dispatch(
    state: &RpcState,
    rc: &RequestCaller,
    p: &Params,
) -> Result<Value, RpcError> {
    let req: Request = p.at_most(1)?.req(0, "disclosure request")?;
    let (subject, slot) = req.target()?;
    let proven = settled_batch(state, req.batch).await?;
    let slots: Vec<B256> = slot.into_iter().collect();
    let proof = state_proof_at(state, &subject, &slots, Some(proven.last_block))?;
    if proof.state_root != proven.new_state_root {
        return Err(RpcError::internal(format!(
            "the state at block {} has root {}, batch {} ends at {}",
            proven.last_block, proof.state_root, req.batch, proven.new_state_root
        )));
    }
    let proof = eip1186(
        subject,
        proof,
        slots.into_iter().map(JsonStorageKey::Hash).collect(),
    );
    let value = match proof.storage_proof.first() {
        Some(s) => s.value,
        None => proof.balance,
    };
    let d = Disclosure {
        format: FORMAT.into(),
        statement: req.statement(value),
        anchor: Anchor {
            chain_id: proven.chain_id,
            batch: proven.batch_number,
            state_root: proven.new_state_root,
            block_hash: proven.last_block_hash,
        },
        proof,
    };
    // Never hand out a disclosure that would not verify.
    let fact = disclosure::check(&d).map_err(RpcError::internal)?;
    state
        .access
        .trail
        .record(
            by_caller(&rc.caller, action::DISCLOSURE_ISSUED, Outcome::Allow)
                .resource(format!("Account:{}", req.account))
                .details(json!({
                    "kind": serde_json::to_value(&d.statement).ok().and_then(|s| s.get("kind").cloned()),
                    "token": req.token,
                    "slot": slot,
                    "batch": req.batch,
                    "commitment": fact.commitment,
                    "value": value.to_string(),
                })),
        )
        .map_err(|e| {
            RpcError::new(
                code::AUDIT_UNAVAILABLE,
                format!("audit log unavailable, nothing disclosed: {e}"),
            )
        })?;
    tracing::info!(principal = %rc.caller.principal.key(), account = %req.account, batch = req.batch, "disclosure issued");
    to_json(d)
}

/// Batch `n`'s outputs, if it is proven here and settled.
async fn settled_batch(state: &RpcState, n: u64) -> Result<Proven, RpcError> {
    let Some(dir) = state.proofs_dir.clone() else {
        return Err(RpcError::server(
            "this node proves no batches: there is no settled state to disclose against",
        ));
    };
    let report = super::health::read(state.settlement.clone(), "settlement").await;
    match report["settled_batch"].as_u64() {
        Some(settled) if n >= 1 && n <= settled => {}
        settled => {
            return Err(RpcError::invalid_params(format!(
                "batch {n} is not settled (last settled: {}); a disclosure is only made against a settled batch",
                settled.map_or("none".to_string(), |s| s.to_string())
            )))
        }
    }
    let path = dir.join(format!("batch-{n}.json"));
    let raw = tokio::fs::read(&path)
        .await
        .map_err(|e| RpcError::server(format!("batch {n}'s outputs are not readable: {e}")))?;
    let proven: Proven = serde_json::from_slice(&raw)
        .map_err(|e| RpcError::internal(format!("{}: {e}", path.display())))?;
    if proven.batch_number != n {
        return Err(RpcError::internal(format!(
            "{} holds batch {}",
            path.display(),
            proven.batch_number
        )));
    }
    Ok(proven)
}
