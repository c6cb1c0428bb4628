//! `prividium_*` methods: who am I, wallet binding (SIWE or by an admin),
//! policy reload. The method-level policy check has already run.

use super::{access::RequestCaller, jsonrpc::RpcError, params::Params, RpcState};
use crate::request::by;
use alloy_primitives::{Address, Bytes};
use audit::{action, AuditEvent, Outcome};
use serde_json::{json, Value};
use std::sync::Arc;

/// Records a binding change that already happened; a refusal (queue full)
/// is logged by the trail, since the change cannot be undone here.
fn record(state: &RpcState, event: AuditEvent) {
    let _ = state.access.trail.record(event);
}

pub(crate) async fn dispatch(
    state: &Arc<RpcState>,
    rc: &RequestCaller,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    let access = &state.access;
    let principal = &rc.caller.principal;
    match method {
        "prividium_whoami" => Ok(json!({
            "principal": principal.key(),
            "roles": principal.roles,
            "org": principal.org,
            "wallets": rc.caller.wallets,
        })),
        "prividium_wallets" => Ok(json!(rc.caller.wallets)),
        "prividium_siweChallenge" => {
            let address: Address = p.at_most(1)?.req(0, "address")?;
            let message = access
                .siwe
                .challenge(&principal.key(), address)
                .map_err(|e| RpcError::new(super::jsonrpc::code::LIMIT, e.to_string()))?;
            Ok(json!({ "message": message }))
        }
        "prividium_bindWallet" => {
            let message: String = p.at_most(2)?.req(0, "message")?;
            let signature: Bytes = p.req(1, "signature")?;
            let address = access
                .siwe
                .verify(&principal.key(), &message, &signature)
                .map_err(RpcError::invalid_params)?;
            access
                .wallets
                .bind(address, &principal.key(), &principal.org, "siwe")
                .map_err(RpcError::server)?;
            tracing::info!(principal = %principal.key(), wallet = %address, "wallet bound (SIWE)");
            record(
                state,
                by(principal, action::WALLET_BOUND, Outcome::Allow)
                    .resource(format!("wallet:{address}"))
                    .details(json!({ "principal": principal.key(), "via": "siwe" })),
            );
            Ok(json!({ "address": address }))
        }
        "prividium_adminBindWallet" => {
            let who: String = p.at_most(3)?.req(0, "principal")?;
            let address: Address = p.req(1, "address")?;
            let org: Option<String> = p.opt(2, "org")?;
            if !(who.starts_with("User:") || who.starts_with("ApiKey:")) {
                return Err(RpcError::invalid_params(
                    "principal must be `User:<issuer>:<sub>` or `ApiKey:<id>`",
                ));
            }
            access
                .wallets
                .bind(address, &who, &org.unwrap_or_default(), "admin")
                .map_err(RpcError::server)?;
            tracing::info!(admin = %principal.key(), principal = %who, wallet = %address, "wallet bound by admin");
            record(
                state,
                by(principal, action::WALLET_BOUND, Outcome::Allow)
                    .resource(format!("wallet:{address}"))
                    .details(json!({ "principal": who, "via": "admin" })),
            );
            Ok(Value::Bool(true))
        }
        "prividium_adminListWallets" => {
            p.at_most(0)?;
            let all = access.wallets.all().map_err(RpcError::server)?;
            Ok(json!(all))
        }
        "prividium_adminUnbindWallet" => {
            let address: Address = p.at_most(1)?.req(0, "address")?;
            let removed = access.wallets.unbind(address).map_err(RpcError::server)?;
            tracing::info!(admin = %principal.key(), wallet = %address, removed, "wallet unbound by admin");
            record(
                state,
                by(principal, action::WALLET_UNBOUND, Outcome::Allow)
                    .resource(format!("wallet:{address}"))
                    .details(json!({ "removed": removed })),
            );
            Ok(Value::Bool(removed))
        }
        "prividium_reloadPolicies" => {
            let result = access.engine.reload();
            crate::access_events::record_reload(&access.trail, Some(principal), "rpc", &result);
            match result {
                Ok(r) => Ok(json!({ "rules": r.rules, "digest": r.digest, "changed": r.changed })),
                Err(e) => Err(RpcError::server(e.to_string())),
            }
        }
        _ => Err(RpcError::new(
            super::jsonrpc::code::METHOD_NOT_FOUND,
            format!("the method {method} does not exist/is not available"),
        )),
    }
}
