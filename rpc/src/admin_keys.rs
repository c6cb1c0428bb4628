//! API keys managed by an admin over RPC (the console's admin page): the
//! same records `prividium keys create|list|revoke` keep, taking effect at
//! once on this node. The method-level policy check (`rpc:admin`) has
//! already run.

use super::{
    access::RequestCaller,
    jsonrpc::{code, RpcError},
    params::Params,
    RpcState,
};
use crate::request::by;
use access_control::{
    authn::api_keys::{self, ApiKeyRecord, NewKey},
    store::unix_now,
};
use alloy_primitives::Address;
use audit::{action, Outcome};
use serde::Deserialize;
use serde_json::{json, Value};

/// The methods this module answers.
pub(crate) const METHODS: &[&str] = &[
    "prividium_adminCreateApiKey",
    "prividium_adminListApiKeys",
    "prividium_adminRevokeApiKey",
];

/// Most wallets one key may be created with.
const MAX_WALLETS: usize = 64;
/// Longest role, organization and CIDR text accepted.
const MAX_NAME: usize = 128;
/// Lifetime of a key created over RPC when none is asked (90 days), and
/// the longest allowed (a year): an admin's key must not outlive the
/// admin's own account at the IdP by more than a review cycle.
const DEFAULT_TTL_SECS: u64 = 90 * 86_400;
const MAX_TTL_SECS: u64 = 365 * 86_400;
/// What a key's role must not be allowed, for an admin to create it: the
/// audit trail and disclosures of account data stay out of administrators'
/// reach (separation of duties).
const AUDIT_ACTIONS: [&str; 3] = ["audit_read", "audit_hold", "disclose"];

/// `prividium_adminCreateApiKey`'s one parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateArgs {
    role: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    wallets: Vec<Address>,
    /// Lifetime in seconds.
    #[serde(default)]
    expires_in_secs: Option<u64>,
    /// CIDR allow-list.
    #[serde(default)]
    ip_allow: Vec<String>,
}

impl CreateArgs {
    fn check(&self) -> Result<(), RpcError> {
        let role_ok = !self.role.is_empty()
            && self.role.len() <= MAX_NAME
            && self
                .role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !role_ok {
            return Err(RpcError::invalid_params(
                "role must be 1-128 characters of a-z, 0-9, - and _",
            ));
        }
        if self.org.len() > MAX_NAME || self.org.chars().any(char::is_control) {
            return Err(RpcError::invalid_params(
                "org must be at most 128 characters, none of them control characters",
            ));
        }
        if self.wallets.len() > MAX_WALLETS {
            return Err(RpcError::invalid_params(format!(
                "at most {MAX_WALLETS} wallets per key"
            )));
        }
        if self.ip_allow.len() > MAX_WALLETS || self.ip_allow.iter().any(|c| c.len() > MAX_NAME) {
            return Err(RpcError::invalid_params("ipAllow is too long"));
        }
        match self.expires_in_secs {
            Some(0) => return Err(RpcError::invalid_params("expiresInSecs must be positive")),
            Some(t) if t > MAX_TTL_SECS => {
                return Err(RpcError::invalid_params(format!(
                    "expiresInSecs is at most {MAX_TTL_SECS} (a year)"
                )))
            }
            _ => {}
        }
        Ok(())
    }
}

/// Refuses what an admin may not hand out: a role the policies let read or
/// curate the audit trail, another organization's identity, a wallet that
/// is someone else's. Checked before anything is recorded or written.
fn may_issue(state: &RpcState, rc: &RequestCaller, args: &mut CreateArgs) -> Result<(), RpcError> {
    let access = &state.access;
    let probe = access_control::Caller::new(
        std::sync::Arc::new(access_control::Principal {
            kind: access_control::PrincipalKind::ApiKey,
            id: "k_new".into(),
            roles: [args.role.clone()].into(),
            org: args.org.clone(),
            expires_at: None,
        }),
        Default::default(),
    );
    for action in AUDIT_ACTIONS {
        let d = access.engine.dry_run(
            &probe,
            action,
            &access_control::policy::Resource::Node,
            &access_control::policy::Circumstances::Rpc,
        );
        if d.allowed {
            return Err(RpcError::forbidden(
                format!(
                    "a {} key may {action} (rule {}); admins do not create keys that reach the audit trail or disclose account data (separation of duties): the appliance operator uses `prividium keys create`",
                    args.role, d.rule
                ),
                &d.rule,
            ));
        }
    }
    let own = &rc.caller.principal.org;
    if !own.is_empty() {
        if args.org.is_empty() {
            args.org = own.clone();
        } else if &args.org != own {
            return Err(RpcError::invalid_params(format!(
                "org: an admin of {own} creates keys for {own} only"
            )));
        }
    }
    if let Some(w) = args
        .wallets
        .iter()
        .find(|w| access.wallets.owner(w).is_some())
    {
        return Err(RpcError::invalid_params(format!(
            "wallet {w} is bound to another principal; unbind it first"
        )));
    }
    Ok(())
}

/// A key record as an admin sees it (never the key or its hash).
fn record_json(r: &ApiKeyRecord, last_used: Option<u64>, now: u64) -> Value {
    json!({
        "id": r.id,
        "principal": format!("ApiKey:{}", r.id),
        "role": r.role,
        "org": r.org,
        "wallets": r.wallets,
        "expiresAt": r.expires_at,
        "ipAllow": r.ip_allow,
        "createdAt": r.created_at,
        "revokedAt": r.revoked_at,
        "lastUsed": last_used,
        "status": r.status(now),
    })
}

pub(crate) fn dispatch(
    state: &RpcState,
    rc: &RequestCaller,
    method: &str,
    p: &Params,
) -> Result<Value, RpcError> {
    let access = &state.access;
    let keys = access.authn.keys();
    let admin = &rc.caller.principal;
    match method {
        "prividium_adminListApiKeys" => {
            p.at_most(0)?;
            let now = unix_now();
            let list = keys.records().map_err(RpcError::server)?;
            Ok(Value::Array(
                list.iter()
                    .map(|(r, used)| record_json(r, *used, now))
                    .collect(),
            ))
        }
        "prividium_adminCreateApiKey" => {
            let mut args: CreateArgs = p.at_most(1)?.req(0, "key")?;
            args.check()?;
            may_issue(state, rc, &mut args)?;
            let (secret, record) = api_keys::issue(&NewKey {
                role: args.role,
                org: args.org,
                wallets: args.wallets,
                ttl_secs: Some(args.expires_in_secs.unwrap_or(DEFAULT_TTL_SECS)),
                ip_allow: args.ip_allow,
            })
            .map_err(RpcError::invalid_params)?;
            let principal = format!("ApiKey:{}", record.id);
            let details = record.audit_details("rpc");
            // Recorded before the key exists: a key nobody can find in the
            // trail must never work.
            access
                .trail
                .record(
                    by(admin, action::API_KEY_CREATED, Outcome::Allow)
                        .resource(principal.clone())
                        .details(details),
                )
                .map_err(|e| {
                    RpcError::new(
                        code::AUDIT_UNAVAILABLE,
                        format!("audit log unavailable, key not created: {e}"),
                    )
                })?;
            for w in &record.wallets {
                access
                    .wallets
                    .bind(*w, &principal, &record.org, "key")
                    .map_err(RpcError::server)?;
            }
            let shown = record_json(&record, None, unix_now());
            keys.add(record).map_err(RpcError::server)?;
            tracing::info!(admin = %admin.key(), key = %principal, "API key created over RPC");
            Ok(json!({ "key": secret, "record": shown }))
        }
        "prividium_adminRevokeApiKey" => {
            let id: String = p.at_most(1)?.req(0, "id")?;
            if !keys.revoke(&id).map_err(RpcError::server)? {
                return Err(RpcError::invalid_params(format!("no API key with id {id}")));
            }
            tracing::info!(admin = %admin.key(), key = %id, "API key revoked over RPC");
            // The key is already refused; a full audit queue cannot undo
            // that, and the trail logs its own refusal.
            let _ = access.trail.record(
                by(admin, action::API_KEY_REVOKED, Outcome::Allow)
                    .resource(format!("ApiKey:{id}"))
                    .details(json!({ "via": "rpc" })),
            );
            Ok(Value::Bool(true))
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

    fn args(v: Value) -> Result<CreateArgs, String> {
        let a: CreateArgs = serde_json::from_value(v).map_err(|e| e.to_string())?;
        a.check().map_err(|e| e.message)?;
        Ok(a)
    }

    #[test]
    fn key_requests_are_checked_before_anything_is_issued() {
        let ok = args(json!({"role": "trader", "org": "bank-a", "expiresInSecs": 3600})).unwrap();
        assert_eq!(ok.expires_in_secs, Some(3600));
        for (bad, why) in [
            (json!({"role": ""}), "role must be"),
            (json!({"role": "Admin"}), "role must be"),
            (json!({"role": "trader", "org": "a\nb"}), "org must be"),
            (
                json!({"role": "trader", "expiresInSecs": 0}),
                "must be positive",
            ),
            (json!({"role": "trader", "secret": "x"}), "unknown field"),
            (json!({"role": "trader", "wallets": ["0x12"]}), "invalid"),
        ] {
            let e = args(bad.clone()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("0x{i:040x}")).collect();
        let e = args(json!({"role": "trader", "wallets": many})).unwrap_err();
        assert!(e.contains("at most 64 wallets"), "{e}");
    }
}
