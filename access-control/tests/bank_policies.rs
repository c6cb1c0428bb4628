//! The shipped bank policy set (`policies/`), decided by the real engine.

use access_control::{
    policy::{
        AccountFacts, ArgValue, Circumstances, FrameFacts, PolicyEngine, Resource, DEFAULT_DENY,
    },
    Caller, Principal, PrincipalKind,
};
use alloy_primitives::{Address, U256};
use std::{collections::BTreeSet, path::Path, sync::Arc};

fn engine() -> PolicyEngine {
    PolicyEngine::load(
        &Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../policies"),
    )
    .unwrap()
}

fn caller(role: &str, org: &str, wallets: &[Address]) -> Caller {
    Caller::new(
        Arc::new(Principal {
            kind: PrincipalKind::User,
            id: format!("idp:{role}"),
            roles: BTreeSet::from([role.to_owned()]),
            org: org.into(),
            expires_at: None,
        }),
        wallets.iter().copied().collect(),
    )
}

fn rpc(e: &PolicyEngine, c: &Caller, action: &str) -> (bool, String) {
    let d = e.decide(c, action, &Resource::Node, &Circumstances::Rpc);
    (d.allowed, d.rule)
}

const ME: Address = Address::repeat_byte(0xaa);
const OTHER: Address = Address::repeat_byte(0xbb);
const TOKEN: Address = Address::repeat_byte(0x70);

fn token(org: &str) -> Resource {
    Resource::Account(AccountFacts {
        address: TOKEN,
        is_contract: true,
        deployer: Some(Address::repeat_byte(0x01)),
        deployer_org: org.into(),
    })
}

fn frame(
    function: &str,
    args: Vec<(&str, ArgValue)>,
    value_eth: u64,
    spent_gwei: u64,
) -> Circumstances {
    let value = U256::from(value_eth) * U256::from(10u64).pow(U256::from(18u64));
    Circumstances::Frame(FrameFacts {
        kind: "call",
        depth: 0,
        caller: ME,
        signer: ME,
        selector: Some([1, 2, 3, 4]),
        function: Some(function.into()),
        args: args.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        value,
        spent_today_gwei: spent_gwei + access_control::policy::gwei_ceil(&value),
    })
}

#[test]
fn rpc_methods_follow_roles_and_default_deny_has_an_id() {
    let e = engine();
    let trader = caller("trader", "bank-a", &[ME]);
    let auditor = caller("auditor", "bank-a", &[]);
    let counterparty = caller("counterparty", "bank-b", &[]);
    let nobody = caller("intern", "bank-a", &[]);
    assert_eq!(
        rpc(&e, &trader, "eth_sendRawTransaction"),
        (true, "rpc.send.writers".into())
    );
    assert_eq!(
        rpc(&e, &trader, "eth_getStorageAt"),
        (false, DEFAULT_DENY.into())
    );
    assert_eq!(rpc(&e, &trader, "debug_*"), (false, DEFAULT_DENY.into()));
    assert!(rpc(&e, &auditor, "eth_getStorageAt").0);
    assert!(!rpc(&e, &auditor, "eth_sendRawTransaction").0);
    assert!(rpc(&e, &auditor, "eth_call").0 && !rpc(&e, &auditor, "eth_estimateGas").0);
    assert!(rpc(&e, &auditor, "view_all").0 && !rpc(&e, &trader, "view_all").0);
    assert!(!rpc(&e, &counterparty, "eth_getBalance").0);
    assert!(rpc(&e, &counterparty, "eth_blockNumber").0);
    assert!(rpc(&e, &nobody, "eth_chainId").0 && !rpc(&e, &nobody, "eth_getBlockByNumber").0);
    assert!(rpc(&e, &caller("admin", "bank-a", &[]), "admin_*").0);
    // The audit trail is for auditors and compliance, not administrators.
    assert_eq!(
        rpc(&e, &auditor, "audit_read"),
        (true, "audit.read.compliance".into())
    );
    assert!(rpc(&e, &caller("compliance", "bank-a", &[]), "audit_read").0);
    assert!(!rpc(&e, &caller("admin", "bank-a", &[]), "audit_read").0);
    assert!(!rpc(&e, &trader, "audit_read").0);
    // Holds: compliance officers curate, auditors only read.
    assert!(rpc(&e, &caller("compliance", "bank-a", &[]), "audit_hold").0);
    assert!(!rpc(&e, &auditor, "audit_hold").0);
    assert!(!rpc(&e, &caller("admin", "bank-a", &[]), "audit_hold").0);
    // Disclosures carry account data out of the bank: compliance only.
    assert_eq!(
        rpc(&e, &caller("compliance", "bank-a", &[]), "disclose"),
        (true, "disclose.compliance".into())
    );
    for role in ["admin", "auditor", "trader", "operator", "counterparty"] {
        assert_eq!(
            rpc(&e, &caller(role, "bank-a", &[]), "disclose"),
            (false, "default-deny".into()),
            "{role}"
        );
    }
}

/// A sink that cannot record (the audit queue is full).
struct Refusing;

impl access_control::policy::DecisionSink for Refusing {
    fn record(&self, _: &access_control::policy::DecisionEvent<'_>) -> Result<(), String> {
        Err("the audit queue is full".into())
    }
}

#[test]
fn nothing_is_allowed_that_cannot_be_audited() {
    let e = engine();
    let trader = caller("trader", "bank-a", &[ME]);
    assert!(rpc(&e, &trader, "eth_sendRawTransaction").0);
    e.set_sink(Box::new(Refusing));
    assert_eq!(
        rpc(&e, &trader, "eth_sendRawTransaction"),
        (false, access_control::policy::AUDIT_UNAVAILABLE.into())
    );
    // Denials stay denials with their own rule.
    assert_eq!(rpc(&e, &trader, "debug_*"), (false, DEFAULT_DENY.into()));
}

#[test]
fn trader_calls_are_function_scoped_capped_and_bound_to_the_signer() {
    let e = engine();
    let t = caller("trader", "bank-a", &[ME]);
    let d = e.decide(
        &t,
        "call",
        &token("bank-a"),
        &frame("transfer", vec![], 0, 0),
    );
    assert!(d.allowed, "{d:?}");
    let d = e.decide(&t, "call", &token("bank-a"), &frame("mint", vec![], 0, 0));
    assert_eq!((d.allowed, d.rule.as_str()), (false, DEFAULT_DENY));
    let own = vec![
        ("from", ArgValue::Address(ME)),
        ("to", ArgValue::Address(OTHER)),
    ];
    assert!(
        e.decide(
            &t,
            "call",
            &token("bank-a"),
            &frame("transferFrom", own, 0, 0)
        )
        .allowed
    );
    let foreign = vec![
        ("from", ArgValue::Address(OTHER)),
        ("to", ArgValue::Address(ME)),
    ];
    let d = e.decide(
        &t,
        "call",
        &token("bank-a"),
        &frame("transferFrom", foreign, 0, 0),
    );
    assert_eq!(
        (d.allowed, d.rule.as_str()),
        (false, "exec.trader.transferfrom-own")
    );
    // Organization-only contracts.
    let d = e.decide(
        &t,
        "call",
        &token("bank-b"),
        &frame("transfer", vec![], 0, 0),
    );
    assert_eq!(
        (d.allowed, d.rule.as_str()),
        (false, "exec.org-only-contracts")
    );
    // Value caps: 100 ETH per transaction, 1,000 ETH per day.
    let to_eoa = Resource::Account(AccountFacts {
        address: OTHER,
        ..Default::default()
    });
    assert!(
        e.decide(&t, "transfer", &to_eoa, &frame("", vec![], 100, 0))
            .allowed
    );
    let d = e.decide(&t, "transfer", &to_eoa, &frame("", vec![], 101, 0));
    assert_eq!(d.rule, "exec.trader.value-cap-tx");
    let d = e.decide(
        &t,
        "transfer",
        &to_eoa,
        &frame("", vec![], 50, 990_000_000_000),
    );
    assert_eq!(
        (d.allowed, d.rule.as_str()),
        (false, "exec.trader.value-cap-day")
    );
    // No deployments for traders; auditors never write.
    assert!(
        !e.decide(&t, "deploy", &Resource::Node, &frame("", vec![], 0, 0))
            .allowed
    );
    let a = caller("auditor", "bank-a", &[]);
    let d = e.decide(
        &a,
        "call",
        &token("bank-a"),
        &frame("transfer", vec![], 0, 0),
    );
    assert!(!d.allowed);
    assert!(
        e.decide(
            &a,
            "read",
            &token("bank-b"),
            &frame("balanceOf", vec![], 0, 0)
        )
        .allowed
    );
}

#[test]
fn holder_views_answer_only_for_the_callers_wallets() {
    let e = engine();
    let t = caller("trader", "bank-a", &[ME]);
    // Token ABIs rarely name balanceOf's argument: it is `arg0`.
    let of = |who: Address| vec![("arg0", ArgValue::Address(who))];
    let read = |c: &Caller, function: &str, args| {
        let d = e.decide(c, "read", &token("bank-a"), &frame(function, args, 0, 0));
        (d.allowed, d.rule)
    };
    assert!(read(&t, "balanceOf", of(ME)).0);
    assert_eq!(
        read(&t, "balanceOf", of(OTHER)),
        (false, "exec.read.holdings-own".to_owned())
    );
    // allowance(owner, spender): the owner or the spender may ask.
    let pair = |a: Address, b: Address| {
        vec![
            ("arg0", ArgValue::Address(a)),
            ("arg1", ArgValue::Address(b)),
        ]
    };
    assert!(read(&t, "allowance", pair(OTHER, ME)).0);
    assert!(read(&t, "allowance", pair(ME, OTHER)).0);
    assert!(!read(&t, "allowance", pair(OTHER, Address::ZERO)).0);
    // Views without a holder stay open to readers.
    assert!(read(&t, "totalSupply", vec![]).0);
    // Auditors and admins read anyone's position.
    for role in ["auditor", "admin"] {
        let c = caller(role, "bank-a", &[]);
        assert!(read(&c, "balanceOf", of(OTHER)).0, "{role}");
    }
}

#[test]
fn reads_are_limited_to_own_wallets_contracts_and_named_logs() {
    let e = engine();
    let t = caller("trader", "bank-a", &[ME]);
    let mine = Resource::Account(AccountFacts {
        address: ME,
        ..Default::default()
    });
    let theirs = Resource::Account(AccountFacts {
        address: OTHER,
        ..Default::default()
    });
    assert!(
        e.decide(&t, "view_account", &mine, &Circumstances::Rpc)
            .allowed
    );
    assert!(
        !e.decide(&t, "view_account", &theirs, &Circumstances::Rpc)
            .allowed
    );
    let log = |addrs: Vec<Address>| Circumstances::Log {
        topic0: None,
        addresses: addrs,
    };
    assert!(
        e.decide(&t, "view_log", &token("bank-a"), &log(vec![OTHER, ME]))
            .allowed
    );
    assert!(
        !e.decide(&t, "view_log", &token("bank-a"), &log(vec![OTHER]))
            .allowed
    );
}

#[test]
fn broken_policies_are_rejected_with_file_and_line_and_the_old_set_stays() {
    let dir = tempfile::tempdir().unwrap();
    let src =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../policies");
    std::fs::copy(
        src.join("schema.cedarschema"),
        dir.path().join("schema.cedarschema"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.cedar"),
        "@id(\"ok\")\npermit(principal, action == Prividium::Action::\"eth_chainId\", resource);\n",
    )
    .unwrap();
    let e = PolicyEngine::load(dir.path()).unwrap();
    std::fs::write(
        dir.path().join("b.cedar"),
        "// typo in an attribute\n\n@id(\"bad\")\npermit(principal, action == Prividium::Action::\"eth_call\", resource)\nwhen { principal.walets.contains(\"x\") };\n",
    )
    .unwrap();
    let err = e.reload().unwrap_err().to_string();
    assert!(err.contains("b.cedar:"), "{err}");
    // The valid set is still in force.
    assert!(rpc(&e, &caller("x", "", &[]), "eth_chainId").0);
    std::fs::write(
        dir.path().join("b.cedar"),
        "permit(principal, action == Prividium::Action::\"eth_call\", resource);\n",
    )
    .unwrap();
    let err = e.reload().unwrap_err().to_string();
    assert!(err.contains("no @id"), "{err}");
    std::fs::write(
        dir.path().join("b.cedar"),
        "@id(\"ok\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    assert!(e
        .reload()
        .unwrap_err()
        .to_string()
        .contains("duplicate @id(\"ok\")"));
    std::fs::remove_file(dir.path().join("b.cedar")).unwrap();
    assert!(!e.reload().unwrap().changed);
}
