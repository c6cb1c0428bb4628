//! What an admin reads about the node's configuration (the console's admin
//! page): the loaded policy set, a dry run of a decision, and the data
//! keys. The method-level policy check (`rpc:admin`) has already run; a dry
//! run records no decision of its own (the admin's request is what the
//! trail records).

use super::{
    jsonrpc::{code, RpcError},
    params::Params,
    RpcState,
};
use access_control::{
    policy::{AccountFacts, Circumstances, Resource, TxFacts},
    Caller, Principal, PrincipalKind,
};
use alloy_primitives::{Address, B256};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{collections::BTreeSet, sync::Arc};

/// The methods this module answers.
pub(crate) const METHODS: &[&str] = &[
    "prividium_adminPolicyStatus",
    "prividium_adminExplainPolicy",
    "prividium_adminKeyStatus",
];

/// `prividium_adminExplainPolicy`'s one parameter: who, doing what, to what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Question {
    /// `User:<issuer>:<sub>` or `ApiKey:<id>`.
    principal: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    org: String,
    #[serde(default)]
    wallets: Vec<Address>,
    /// An RPC method, `audit_read`, `view_all`, `view_account`, `view_tx`…
    action: String,
    /// `node` (default), `account:0x…` or `tx:0x…`.
    #[serde(default)]
    resource: Option<String>,
}

/// Most roles or wallets in one question.
const MAX_LIST: usize = 32;

impl Question {
    fn caller(&self) -> Result<Caller, RpcError> {
        let (kind, id) = match self.principal.split_once(':') {
            Some(("User", id)) => (PrincipalKind::User, id),
            Some(("ApiKey", id)) => (PrincipalKind::ApiKey, id),
            _ => {
                return Err(RpcError::invalid_params(
                    "principal must be `User:<issuer>:<sub>` or `ApiKey:<id>`",
                ))
            }
        };
        if self.roles.len() > MAX_LIST || self.wallets.len() > MAX_LIST {
            return Err(RpcError::invalid_params(format!(
                "at most {MAX_LIST} roles and {MAX_LIST} wallets"
            )));
        }
        Ok(Caller::new(
            Arc::new(Principal {
                kind,
                id: id.to_owned(),
                roles: self.roles.iter().cloned().collect(),
                org: self.org.clone(),
                expires_at: None,
            }),
            self.wallets.iter().copied().collect::<BTreeSet<_>>(),
        ))
    }

    fn resource(&self) -> Result<Resource, RpcError> {
        let bad = |what: &str| RpcError::invalid_params(format!("resource: {what}"));
        match self.resource.as_deref().map(|r| (r, r.split_once(':'))) {
            None | Some(("node", _)) => Ok(Resource::Node),
            Some((_, Some(("account", a)))) => Ok(Resource::Account(AccountFacts {
                address: a.parse().map_err(|_| bad("invalid account address"))?,
                ..AccountFacts::default()
            })),
            Some((_, Some(("tx", h)))) => Ok(Resource::Transaction(TxFacts {
                hash: h
                    .parse::<B256>()
                    .map_err(|_| bad("invalid transaction hash"))?,
                ..TxFacts::default()
            })),
            Some(_) => Err(bad("use node, account:0x… or tx:0x…")),
        }
    }
}

pub(crate) async fn dispatch(
    state: &RpcState,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    let engine = &state.access.engine;
    match method {
        "prividium_adminPolicyStatus" => {
            p.at_most(0)?;
            let bundle = engine.bundle();
            Ok(json!({
                "dir": engine.dir(),
                "digest": bundle.digest,
                "rules": bundle.origins,
            }))
        }
        "prividium_adminExplainPolicy" => {
            let q: Question = p.at_most(1)?.req(0, "question")?;
            let caller = q.caller()?;
            let resource = q.resource()?;
            let d = engine.dry_run(&caller, &q.action, &resource, &Circumstances::Rpc);
            let origin = engine.bundle().origins.get(&d.rule).cloned();
            Ok(json!({
                "allowed": d.allowed,
                "rule": d.rule,
                "definedAt": origin,
                "errors": d.errors,
            }))
        }
        "prividium_adminKeyStatus" => {
            p.at_most(0)?;
            match super::health::read(state.key_status.clone(), "keys").await {
                Value::Null => Ok(json!({ "encrypted": false })),
                v if v.get("unreadable").is_some() => Err(RpcError::server(
                    "the key status is unreadable (see the node's log)",
                )),
                v => Ok(v),
            }
        }
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("the method {method} does not exist/is not available"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: Value) -> Question {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn questions_name_a_principal_and_a_resource_the_policies_know() {
        let ok = q(
            json!({"principal": "User:idp:alice", "roles": ["trader"], "action": "eth_getBalance",
                          "resource": "account:0x00000000000000000000000000000000000000aa"}),
        );
        assert_eq!(ok.caller().unwrap().principal.key(), "User:idp:alice");
        assert!(matches!(ok.resource().unwrap(), Resource::Account(_)));
        assert!(matches!(
            q(json!({"principal": "ApiKey:k_1", "action": "x"}))
                .resource()
                .unwrap(),
            Resource::Node
        ));
        let e = q(json!({"principal": "alice", "action": "x"}))
            .caller()
            .unwrap_err();
        assert!(e.message.contains("principal must be"), "{}", e.message);
        let e = q(json!({"principal": "User:a", "action": "x", "resource": "account:0x12"}))
            .resource()
            .unwrap_err();
        assert!(
            e.message.contains("invalid account address"),
            "{}",
            e.message
        );
        let e = q(json!({"principal": "User:a", "action": "x", "resource": "block:1"}))
            .resource()
            .unwrap_err();
        assert!(e.message.contains("use node"), "{}", e.message);
    }
}
