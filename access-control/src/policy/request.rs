//! What a decision is about: the Cedar entities and context built from the
//! caller, the resource and the circumstances.

use super::abi::ArgValue;
use crate::principal::{addr_str, Principal};
use alloy_primitives::{Address, B256, U256};
use cedar_policy::{Context, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use std::{
    borrow::Cow,
    collections::{BTreeSet, HashMap, HashSet},
    str::FromStr,
    sync::LazyLock,
};

/// An address on the chain as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountFacts {
    /// The address.
    pub address: Address,
    /// Deployed contract (known to the contract directory).
    pub is_contract: bool,
    /// Wallet that deployed it.
    pub deployer: Option<Address>,
    /// Organization of the deployer's principal ("" when unknown).
    pub deployer_org: String,
}

/// A mined transaction as policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxFacts {
    /// Hash (the entity id).
    pub hash: B256,
    /// Signer.
    pub from: Address,
    /// Recipient, `None` for deployments.
    pub to: Option<Address>,
    /// `from`, `to` and every address named in an indexed log topic.
    pub participants: Vec<Address>,
}

/// The resource of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The appliance (RPC, admin, audit actions).
    Node,
    /// An address.
    Account(AccountFacts),
    /// A mined transaction.
    Transaction(TxFacts),
}

/// One call frame, for `call` / `read` / `transfer` / `deploy`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameFacts {
    /// `call`, `delegatecall`, …
    pub kind: &'static str,
    /// 0 for the transaction's own frame.
    pub depth: u64,
    /// msg.sender.
    pub caller: Address,
    /// tx.origin.
    pub signer: Address,
    /// First four bytes of the call data.
    pub selector: Option<[u8; 4]>,
    /// Function name from a registered ABI.
    pub function: Option<String>,
    /// Decoded static arguments.
    pub args: Vec<(String, ArgValue)>,
    /// Ether moved by the frame (wei).
    pub value: U256,
    /// The principal's value sent today, this transaction included (gwei).
    pub spent_today_gwei: u64,
}

/// The circumstances of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Circumstances {
    /// An RPC, admin or read-filter decision.
    Rpc,
    /// A call frame.
    Frame(FrameFacts),
    /// Whether a log may be shown.
    Log {
        /// Event signature topic.
        topic0: Option<B256>,
        /// Addresses named in the indexed topics.
        addresses: Vec<Address>,
    },
}

/// Argument names the schema declares (strings for addresses, longs for
/// amounts). Others are not exposed: policies could not name them anyway.
const ADDRESS_ARGS: [&str; 6] = ["from", "to", "owner", "spender", "account", "recipient"];
const AMOUNT_ARGS: [&str; 2] = ["amount", "value"];

fn type_name(name: &str) -> EntityTypeName {
    EntityTypeName::from_str(&format!("Prividium::{name}")).expect("valid type name")
}

static TYPES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
    [
        "User",
        "ApiKey",
        "Role",
        "Node",
        "Account",
        "Transaction",
        "Action",
    ]
    .into_iter()
    .map(|n| (n, type_name(n)))
    .collect()
});

/// `Prividium::<ty>::"<id>"`.
pub(super) fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(TYPES[ty].clone(), EntityId::new(id))
}

fn string(s: String) -> RestrictedExpression {
    RestrictedExpression::new_string(s)
}

fn addr(a: &Address) -> RestrictedExpression {
    string(addr_str(a))
}

fn long(v: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(v).unwrap_or(i64::MAX))
}

fn u256_long(v: &U256) -> RestrictedExpression {
    long(u64::try_from(*v).unwrap_or(u64::MAX))
}

/// Wei → gwei, rounded up so a cap can't be dodged by dust.
pub fn gwei_ceil(wei: &U256) -> u64 {
    let g = wei.div_ceil(U256::from(1_000_000_000u64));
    u64::try_from(g).unwrap_or(u64::MAX)
}

fn addr_set<'a>(it: impl IntoIterator<Item = &'a Address>) -> RestrictedExpression {
    RestrictedExpression::new_set(it.into_iter().map(addr))
}

/// The principal's entity: roles as parents, organization and wallets.
pub(super) fn principal_entity(p: &Principal, wallets: &BTreeSet<Address>) -> Entity {
    let attrs = HashMap::from([
        ("org".to_owned(), string(p.org.clone())),
        ("wallets".to_owned(), addr_set(wallets)),
    ]);
    let parents: HashSet<EntityUid> = p.roles.iter().map(|r| uid("Role", r)).collect();
    Entity::new(uid(p.kind.entity_type(), &p.id), attrs, parents).expect("literal attributes")
}

/// The resource's uid alone (how decision records name it).
pub(super) fn resource_uid(resource: &Resource) -> EntityUid {
    match resource {
        Resource::Node => uid("Node", "appliance"),
        Resource::Account(a) => uid("Account", &addr_str(&a.address)),
        Resource::Transaction(t) => uid("Transaction", &format!("{:#x}", t.hash)),
    }
}

/// The resource's name as decisions record it: exactly what
/// `resource_uid(resource)` prints, written directly (addresses and hashes
/// are hex, which Cedar's printing leaves as is).
pub(super) fn resource_name(resource: &Resource) -> Cow<'static, str> {
    match resource {
        Resource::Node => Cow::Borrowed(r#"Prividium::Node::"appliance""#),
        Resource::Account(a) => format!(r#"Prividium::Account::"{:#x}""#, a.address).into(),
        Resource::Transaction(t) => format!(r#"Prividium::Transaction::"{:#x}""#, t.hash).into(),
    }
}

/// The resource's entity and uid.
pub(super) fn resource_entity(resource: &Resource) -> (EntityUid, Option<Entity>) {
    let id = resource_uid(resource);
    match resource {
        Resource::Node => (id, None),
        Resource::Account(a) => {
            let attrs = HashMap::from([
                ("address".to_owned(), addr(&a.address)),
                (
                    "is_contract".to_owned(),
                    RestrictedExpression::new_bool(a.is_contract),
                ),
                (
                    "deployer".to_owned(),
                    string(a.deployer.map(|d| addr_str(&d)).unwrap_or_default()),
                ),
                ("deployer_org".to_owned(), string(a.deployer_org.clone())),
            ]);
            let e = Entity::new(id.clone(), attrs, HashSet::new()).expect("literal attributes");
            (id, Some(e))
        }
        Resource::Transaction(t) => {
            let attrs = HashMap::from([
                ("from".to_owned(), addr(&t.from)),
                (
                    "to".to_owned(),
                    string(t.to.map(|a| addr_str(&a)).unwrap_or_default()),
                ),
                ("participants".to_owned(), addr_set(&t.participants)),
            ]);
            let e = Entity::new(id.clone(), attrs, HashSet::new()).expect("literal attributes");
            (id, Some(e))
        }
    }
}

pub(super) fn hour_utc() -> u64 {
    (crate::store::unix_now() % 86_400) / 3_600
}

/// The Cedar context for `circumstances` at `hour` (UTC).
pub(super) fn context(circumstances: &Circumstances, hour: u64) -> Context {
    let pairs: Vec<(String, RestrictedExpression)> = match circumstances {
        Circumstances::Rpc => vec![("hour_utc".into(), long(hour))],
        Circumstances::Log { topic0, addresses } => vec![
            (
                "topic0".into(),
                string(topic0.map(|t| format!("{t:#x}")).unwrap_or_default()),
            ),
            ("addresses".into(), addr_set(addresses)),
        ],
        Circumstances::Frame(f) => {
            let args = f.args.iter().filter_map(|(name, v)| {
                let n = name.as_str();
                match v {
                    ArgValue::Address(a) if ADDRESS_ARGS.contains(&n) => {
                        Some((name.clone(), addr(a)))
                    }
                    ArgValue::Uint(u) if AMOUNT_ARGS.contains(&n) => {
                        Some((name.clone(), u256_long(u)))
                    }
                    _ => None,
                }
            });
            // A map first: an ABI with two arguments of one name must not abort.
            let args: HashMap<String, RestrictedExpression> = args.collect();
            let args = RestrictedExpression::new_record(args).expect("distinct argument names");
            // Every address argument, named or not (`balanceOf(address)` in
            // most token ABIs has no argument name): what holder views are
            // checked against.
            let address_args: Vec<Address> = f
                .args
                .iter()
                .filter_map(|(_, v)| match v {
                    ArgValue::Address(a) => Some(*a),
                    _ => None,
                })
                .collect();
            vec![
                ("kind".into(), string(f.kind.to_owned())),
                ("depth".into(), long(f.depth)),
                ("caller".into(), addr(&f.caller)),
                ("signer".into(), addr(&f.signer)),
                (
                    "selector".into(),
                    string(
                        f.selector
                            .map(|s| format!("0x{}", hex::encode(s)))
                            .unwrap_or_default(),
                    ),
                ),
                (
                    "function".into(),
                    string(f.function.clone().unwrap_or_default()),
                ),
                ("args".into(), args),
                ("address_args".into(), addr_set(&address_args)),
                ("value_gwei".into(), long(gwei_ceil(&f.value))),
                ("spent_today_gwei".into(), long(f.spent_today_gwei)),
                ("hour_utc".into(), long(hour)),
            ]
        }
    };
    Context::from_pairs(pairs).expect("distinct context keys")
}

/// Appends `bytes` with its length, so that adjacent fields cannot run
/// into each other.
pub(super) fn push_bytes(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    key.extend_from_slice(bytes);
}

/// Appends everything `resource_entity` builds from `resource`: its uid
/// and every attribute.
pub(super) fn resource_key(key: &mut Vec<u8>, resource: &Resource) {
    match resource {
        Resource::Node => key.push(0),
        Resource::Account(a) => {
            key.push(1);
            key.extend_from_slice(a.address.as_slice());
            key.push(u8::from(a.is_contract));
            push_bytes(key, a.deployer.as_ref().map_or(&[][..], |d| d.as_slice()));
            push_bytes(key, a.deployer_org.as_bytes());
        }
        Resource::Transaction(t) => {
            key.push(2);
            key.extend_from_slice(t.hash.as_slice());
            key.extend_from_slice(t.from.as_slice());
            push_bytes(key, t.to.as_ref().map_or(&[][..], |d| d.as_slice()));
            key.extend_from_slice(&(t.participants.len() as u32).to_be_bytes());
            for p in &t.participants {
                key.extend_from_slice(p.as_slice());
            }
        }
    }
}

/// Appends the values of the context attributes named in `reads`, as
/// `context` builds them from `circumstances` at `hour` (an attribute the
/// circumstances do not have adds nothing: it is absent for all of them).
/// Two questions with equal keys see equal values of every attribute in
/// `reads`; derived attributes (`address_args`) are keyed by what they are
/// derived from.
pub(super) fn context_key(
    key: &mut Vec<u8>,
    circumstances: &Circumstances,
    hour: u64,
    reads: &[String],
) {
    key.push(match circumstances {
        Circumstances::Rpc => 0,
        Circumstances::Frame(_) => 1,
        Circumstances::Log { .. } => 2,
    });
    for attr in reads {
        push_bytes(key, attr.as_bytes());
        match (circumstances, attr.as_str()) {
            (Circumstances::Rpc | Circumstances::Frame(_), "hour_utc") => {
                key.extend_from_slice(&hour.to_be_bytes())
            }
            (Circumstances::Log { topic0, .. }, "topic0") => {
                push_bytes(key, topic0.as_ref().map_or(&[][..], |t| t.as_slice()))
            }
            (Circumstances::Log { addresses, .. }, "addresses") => {
                key.extend_from_slice(&(addresses.len() as u32).to_be_bytes());
                for a in addresses {
                    key.extend_from_slice(a.as_slice());
                }
            }
            (Circumstances::Frame(f), name) => frame_attribute(key, f, name),
            _ => {}
        }
    }
}

fn frame_attribute(key: &mut Vec<u8>, f: &FrameFacts, name: &str) {
    match name {
        "kind" => push_bytes(key, f.kind.as_bytes()),
        "depth" => key.extend_from_slice(&f.depth.to_be_bytes()),
        "caller" => key.extend_from_slice(f.caller.as_slice()),
        "signer" => key.extend_from_slice(f.signer.as_slice()),
        "selector" => push_bytes(key, f.selector.as_ref().map_or(&[][..], |s| &s[..])),
        "function" => match &f.function {
            // Absent and empty both reach Cedar as "".
            Some(name) => push_bytes(key, name.as_bytes()),
            None => push_bytes(key, b""),
        },
        "args" | "address_args" => {
            key.extend_from_slice(&(f.args.len() as u32).to_be_bytes());
            for (name, value) in &f.args {
                push_bytes(key, name.as_bytes());
                match value {
                    ArgValue::Address(a) => {
                        key.push(0);
                        key.extend_from_slice(a.as_slice());
                    }
                    ArgValue::Uint(u) => {
                        key.push(1);
                        key.extend_from_slice(&u.to_be_bytes::<32>());
                    }
                    ArgValue::Bool(b) => key.extend_from_slice(&[2, u8::from(*b)]),
                }
            }
        }
        "value_gwei" => key.extend_from_slice(&gwei_ceil(&f.value).to_be_bytes()),
        "spent_today_gwei" => key.extend_from_slice(&f.spent_today_gwei.to_be_bytes()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trail names a decision's resource by this string; it must stay
    /// what Cedar prints for the uid the policies were asked about.
    #[test]
    fn resource_names_are_what_cedar_prints() {
        let resources = [
            Resource::Node,
            Resource::Account(AccountFacts {
                address: Address::repeat_byte(0xab),
                ..Default::default()
            }),
            Resource::Transaction(TxFacts {
                hash: B256::repeat_byte(0x5c),
                ..Default::default()
            }),
        ];
        for r in &resources {
            assert_eq!(resource_name(r), resource_uid(r).to_string(), "{r:?}");
        }
        assert_eq!(
            resource_name(&resources[1]),
            format!("Prividium::Account::\"0x{}\"", "ab".repeat(20))
        );
    }
}
