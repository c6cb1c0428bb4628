//! API keys for machines: issued once, stored only as SHA-256, scoped to a
//! role, optionally to wallets, an expiry and source networks.

use crate::{
    principal::{Principal, PrincipalKind},
    store::{unix_now, DocDir, JsonDoc, StoreError},
};
use alloy_primitives::Address;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    sync::Arc,
    time::SystemTime,
};

/// File of key records inside the access directory.
pub const KEYS_FILE: &str = "api_keys.json";
/// File of last-use times (written by the node only).
pub const USAGE_FILE: &str = "api_key_usage.json";

/// One issued key, as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public id (`k_` + 12 hex of the hash): what `keys list|revoke` show.
    pub id: String,
    /// SHA-256 of the key, hex.
    pub sha256: String,
    /// Role granted.
    pub role: String,
    /// Organization.
    #[serde(default)]
    pub org: String,
    /// Wallets bound to this key at creation.
    #[serde(default)]
    pub wallets: Vec<Address>,
    /// Unix seconds after which the key is refused.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Source networks allowed (CIDR); empty = anywhere.
    #[serde(default)]
    pub ip_allow: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, once revoked.
    #[serde(default)]
    pub revoked_at: Option<u64>,
}

impl ApiKeyRecord {
    /// What the audit trail records of a new key (never the key or its
    /// hash), whoever created it.
    pub fn audit_details(&self, via: &str) -> serde_json::Value {
        serde_json::json!({
            "role": self.role,
            "org": self.org,
            "wallets": self.wallets,
            "expires_at": self.expires_at,
            "ip_allow": self.ip_allow,
            "via": via,
        })
    }

    /// `revoked`, `expired` or `active` at `now` (unix seconds).
    pub fn status(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| now >= e) {
            "expired"
        } else {
            "active"
        }
    }
}

/// The stored set of keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiKeyFile {
    /// Records in creation order.
    pub keys: Vec<ApiKeyRecord>,
}

/// Why a presented API key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// No such key.
    #[error("unknown API key")]
    Unknown,
    /// Revoked by an operator.
    #[error("API key {0} is revoked")]
    Revoked(String),
    /// Past its expiry.
    #[error("API key {0} has expired")]
    Expired(String),
    /// Used from a network it is not allowed from.
    #[error("API key {0} is not allowed from {1}")]
    SourceNotAllowed(String, IpAddr),
}

/// Parameters of `prividium keys create`.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Role.
    pub role: String,
    /// Organization.
    pub org: String,
    /// Wallets to bind.
    pub wallets: Vec<Address>,
    /// Lifetime in seconds.
    pub ttl_secs: Option<u64>,
    /// CIDR allow-list.
    pub ip_allow: Vec<String>,
}

/// A network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = ip.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length in {s:?}"))?,
            None => max,
        };
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    /// True when `ip` is inside the network.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        let (a, b, bits) = match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

fn hash_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Issues a key: returns the secret (shown once) and its record.
pub fn issue(new: &NewKey) -> Result<(String, ApiKeyRecord), String> {
    for c in &new.ip_allow {
        c.parse::<Cidr>()?;
    }
    if new.role.is_empty() {
        return Err("a key needs a role".into());
    }
    let secret = format!("pvd_{}", hex::encode(rand::random::<[u8; 32]>()));
    let sha256 = hash_hex(&secret);
    let now = unix_now();
    let record = ApiKeyRecord {
        id: format!("k_{}", &sha256[..12]),
        sha256,
        role: new.role.clone(),
        org: new.org.clone(),
        wallets: new.wallets.clone(),
        expires_at: new.ttl_secs.map(|t| now.saturating_add(t)),
        ip_allow: new.ip_allow.clone(),
        created_at: now,
        revoked_at: None,
    };
    Ok((secret, record))
}

#[derive(Debug, Clone)]
struct Entry {
    record: ApiKeyRecord,
    cidrs: Vec<Cidr>,
    principal: Arc<Principal>,
}

/// The node's view of the key file: reloaded when the file changes, with
/// last use kept in memory and flushed to its own file.
#[derive(Debug)]
pub struct ApiKeys {
    doc: JsonDoc,
    usage: JsonDoc,
    by_hash: RwLock<HashMap<String, Entry>>,
    seen: Mutex<Option<SystemTime>>,
    last_used: Mutex<BTreeMap<String, u64>>,
}

impl ApiKeys {
    /// Opens the keys kept in `docs`.
    pub fn open(docs: &DocDir) -> Result<Self, StoreError> {
        let keys = Self {
            doc: docs.doc(KEYS_FILE),
            usage: docs.doc(USAGE_FILE),
            by_hash: RwLock::new(HashMap::new()),
            seen: Mutex::new(None),
            last_used: Mutex::new(BTreeMap::new()),
        };
        keys.reload()?;
        Ok(keys)
    }

    /// The backing document (for the CLI).
    pub fn doc(&self) -> &JsonDoc {
        &self.doc
    }

    /// Re-reads the key file.
    pub fn reload(&self) -> Result<usize, StoreError> {
        let mtime = self.doc.modified();
        let file: ApiKeyFile = self.doc.read()?;
        let map: HashMap<String, Entry> = file
            .keys
            .into_iter()
            .map(|r| {
                let cidrs = r.ip_allow.iter().filter_map(|c| c.parse().ok()).collect();
                let principal = Arc::new(Principal {
                    kind: PrincipalKind::ApiKey,
                    id: r.id.clone(),
                    roles: BTreeSet::from([r.role.clone()]),
                    org: r.org.clone(),
                    expires_at: r.expires_at,
                });
                (
                    r.sha256.clone(),
                    Entry {
                        record: r,
                        cidrs,
                        principal,
                    },
                )
            })
            .collect();
        let n = map.len();
        *self.by_hash.write() = map;
        *self.seen.lock() = mtime;
        Ok(n)
    }

    /// Reloads when another process changed the file.
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        if *self.seen.lock() == self.doc.modified() {
            return Ok(false);
        }
        self.reload().map(|_| true)
    }

    /// Checks a presented key; records its use.
    pub fn authenticate(
        &self,
        key: &str,
        source: Option<IpAddr>,
    ) -> Result<Arc<Principal>, ApiKeyError> {
        let hash = hash_hex(key);
        let map = self.by_hash.read();
        let entry = map.get(&hash).ok_or(ApiKeyError::Unknown)?;
        let r = &entry.record;
        if r.revoked_at.is_some() {
            return Err(ApiKeyError::Revoked(r.id.clone()));
        }
        let now = unix_now();
        if r.expires_at.is_some_and(|t| now >= t) {
            return Err(ApiKeyError::Expired(r.id.clone()));
        }
        if !entry.cidrs.is_empty() {
            let allowed = source.is_some_and(|ip| entry.cidrs.iter().any(|c| c.contains(&ip)));
            if !allowed {
                let ip = source.unwrap_or(IpAddr::from([0, 0, 0, 0]));
                return Err(ApiKeyError::SourceNotAllowed(r.id.clone(), ip));
            }
        }
        self.last_used.lock().insert(r.id.clone(), now);
        Ok(entry.principal.clone())
    }

    /// Adds `record` to the key file and starts accepting it at once (the
    /// node's own admin methods; the CLI writes the file and the node
    /// notices the change).
    pub fn add(&self, record: ApiKeyRecord) -> Result<(), StoreError> {
        push(&self.doc, record)?;
        self.reload().map(|_| ())
    }

    /// Revokes `id` and stops accepting it at once; false when no such key.
    pub fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let found = mark_revoked(&self.doc, id)?;
        self.reload()?;
        Ok(found)
    }

    /// Every record with its last use, including uses not yet flushed.
    pub fn records(&self) -> Result<Vec<(ApiKeyRecord, Option<u64>)>, StoreError> {
        let mut usage: BTreeMap<String, u64> = self.usage.read()?;
        usage.extend(self.last_used.lock().iter().map(|(k, v)| (k.clone(), *v)));
        with_usage(&self.doc, &usage)
    }

    /// Writes last-use times gathered since the previous flush.
    pub fn flush_usage(&self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *self.last_used.lock());
        if pending.is_empty() {
            return Ok(());
        }
        self.usage
            .update(|m: &mut BTreeMap<String, u64>| m.extend(pending))
    }
}

fn push(doc: &JsonDoc, record: ApiKeyRecord) -> Result<(), StoreError> {
    doc.update(|f: &mut ApiKeyFile| f.keys.push(record))
}

fn mark_revoked(doc: &JsonDoc, id: &str) -> Result<bool, StoreError> {
    doc.update(
        |f: &mut ApiKeyFile| match f.keys.iter_mut().find(|k| k.id == id) {
            Some(k) => {
                k.revoked_at.get_or_insert_with(unix_now);
                true
            }
            None => false,
        },
    )
}

fn with_usage(
    doc: &JsonDoc,
    usage: &BTreeMap<String, u64>,
) -> Result<Vec<(ApiKeyRecord, Option<u64>)>, StoreError> {
    let file: ApiKeyFile = doc.read()?;
    Ok(file
        .keys
        .into_iter()
        .map(|k| {
            let used = usage.get(&k.id).copied();
            (k, used)
        })
        .collect())
}

/// Adds a record to the key file in `docs`.
pub fn add_record(docs: &DocDir, record: ApiKeyRecord) -> Result<(), StoreError> {
    push(&docs.doc(KEYS_FILE), record)
}

/// Marks a key revoked; returns false when no such id exists.
pub fn revoke(docs: &DocDir, id: &str) -> Result<bool, StoreError> {
    mark_revoked(&docs.doc(KEYS_FILE), id)
}

/// All records with their last use.
pub fn list(docs: &DocDir) -> Result<Vec<(ApiKeyRecord, Option<u64>)>, StoreError> {
    let usage: BTreeMap<String, u64> = docs.doc(USAGE_FILE).read()?;
    with_usage(&docs.doc(KEYS_FILE), &usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_key_authenticates_until_revoked_and_only_from_allowed_networks() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, rec) = issue(&NewKey {
            role: "service".into(),
            ip_allow: vec!["10.0.0.0/8".into()],
            ..NewKey::default()
        })
        .unwrap();
        let id = rec.id.clone();
        add_record(&crate::store::DocDir::plain(dir.path()), rec).unwrap();
        let keys = ApiKeys::open(&crate::store::DocDir::plain(dir.path())).unwrap();
        let inside = Some("10.1.2.3".parse().unwrap());
        let p = keys.authenticate(&secret, inside).unwrap();
        assert_eq!(p.id, id);
        assert!(p.has_role("service"));
        assert_eq!(
            keys.authenticate(&secret, Some("192.168.1.1".parse().unwrap())),
            Err(ApiKeyError::SourceNotAllowed(
                id.clone(),
                "192.168.1.1".parse().unwrap()
            ))
        );
        assert_eq!(
            keys.authenticate("pvd_nope", inside),
            Err(ApiKeyError::Unknown)
        );
        assert!(revoke(&crate::store::DocDir::plain(dir.path()), &id).unwrap());
        assert!(!revoke(&crate::store::DocDir::plain(dir.path()), "k_missing").unwrap());
        keys.reload().unwrap();
        assert_eq!(
            keys.authenticate(&secret, inside),
            Err(ApiKeyError::Revoked(id.clone()))
        );
        keys.flush_usage().unwrap();
        let listed = list(&crate::store::DocDir::plain(dir.path())).unwrap();
        assert!(listed[0].1.is_some(), "last use recorded");
        // The file never holds the secret.
        let raw = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!raw.contains(&secret));
    }

    #[test]
    fn keys_added_and_revoked_by_the_node_take_effect_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ApiKeys::open(&crate::store::DocDir::plain(dir.path())).unwrap();
        let (secret, rec) = issue(&NewKey {
            role: "trader".into(),
            org: "bank-a".into(),
            ..NewKey::default()
        })
        .unwrap();
        let id = rec.id.clone();
        keys.add(rec).unwrap();
        assert_eq!(keys.authenticate(&secret, None).unwrap().id, id);
        // Listed with its use, before any flush to the usage file.
        let listed = keys.records().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].1.is_some(), "use not shown");
        assert!(keys.revoke(&id).unwrap());
        assert!(!keys.revoke("k_missing").unwrap());
        assert_eq!(
            keys.authenticate(&secret, None),
            Err(ApiKeyError::Revoked(id.clone()))
        );
        // Another process (the CLI) reads what the node wrote.
        let on_disk = list(&crate::store::DocDir::plain(dir.path())).unwrap();
        assert!(on_disk[0].0.revoked_at.is_some());
    }

    #[test]
    fn expired_keys_and_bad_cidrs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, mut rec) = issue(&NewKey {
            role: "trader".into(),
            ..NewKey::default()
        })
        .unwrap();
        rec.expires_at = Some(unix_now() - 1);
        add_record(&crate::store::DocDir::plain(dir.path()), rec.clone()).unwrap();
        let keys = ApiKeys::open(&crate::store::DocDir::plain(dir.path())).unwrap();
        assert_eq!(
            keys.authenticate(&secret, None),
            Err(ApiKeyError::Expired(rec.id))
        );
        assert!(issue(&NewKey {
            role: "x".into(),
            ip_allow: vec!["10.0.0.0/33".into()],
            ..NewKey::default()
        })
        .is_err());
        let c: Cidr = "::1".parse().unwrap();
        assert!(c.contains(&"::1".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(&"8.8.8.8".parse().unwrap()));
    }
}
