//! The access-control cost a request and a transaction pay: authenticating
//! a bearer credential and deciding one policy question with the shipped
//! bank policies. Target: ≤ 20 µs for a cached credential and a decision.
//!
//! Measured here (no IdP needed): an API key (SHA-256 of the key, one map
//! lookup, last use noted), which is the same cost as a cached OIDC token
//! (one map lookup keyed by the token) plus the hash; then
//! - per request: the RPC method decision (`eth_getBalance` for a trader),
//! - per transaction: the call-frame decision of an ERC-20 `transfer` with
//!   decoded arguments bound to the signer, value and daily spend.
//!
//! Decisions go to a sink that only counts, so this is the engine's cost;
//! the node's sink adds one bounded-queue push per decision.
//!
//! `cargo bench -p access-control --bench auth_policy`

use access_control::{
    authn::api_keys::{self, ApiKeys, NewKey},
    policy::{
        AccountFacts, ArgValue, Circumstances, DecisionEvent, DecisionSink, FrameFacts,
        PolicyEngine, Resource,
    },
    store::DocDir,
    Authenticator, Caller,
};
use alloy_primitives::{Address, U256};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

const ROUNDS: usize = 200_000;
const ME: Address = Address::repeat_byte(0xaa);
const OTHER: Address = Address::repeat_byte(0xbb);
const TOKEN: Address = Address::repeat_byte(0x70);

#[derive(Default)]
struct Counting(AtomicU64);

impl DecisionSink for Counting {
    fn record(&self, _: &DecisionEvent<'_>) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs `f` ROUNDS times (after a warm-up) and prints p50 / p99 / mean.
fn measure(name: &str, mut f: impl FnMut()) {
    for _ in 0..ROUNDS / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(ROUNDS);
    let all = Instant::now();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let mean = all.elapsed().as_nanos() as f64 / ROUNDS as f64 / 1_000.0;
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{name:<48} p50 {:>6.2} µs   p99 {:>6.2} µs   mean {mean:>6.2} µs",
        at(0.50) as f64 / 1_000.0,
        at(0.99) as f64 / 1_000.0,
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let docs = DocDir::plain(dir.path());
    let (secret, record) = api_keys::issue(&NewKey {
        role: "trader".into(),
        org: "bank-a".into(),
        wallets: vec![ME],
        ..NewKey::default()
    })
    .unwrap();
    api_keys::add_record(&docs, record).unwrap();
    let authn = Authenticator::new(Arc::new(ApiKeys::open(&docs).unwrap()), Vec::new());
    let header = format!("Bearer {secret}");
    let ip = Some(std::net::IpAddr::from([10, 0, 0, 7]));

    let engine = PolicyEngine::load(
        &Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../policies"),
    )
    .unwrap();
    let sink = Arc::new(Counting::default());
    struct Shared(Arc<Counting>);
    impl DecisionSink for Shared {
        fn record(&self, e: &DecisionEvent<'_>) -> Result<(), String> {
            self.0.record(e)
        }
    }
    engine.set_sink(Box::new(Shared(sink.clone())));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let authenticate = || {
        runtime
            .block_on(authn.authenticate(Some(&header), ip))
            .expect("the key authenticates")
    };
    // A request's caller is built once per request (its wallets looked up);
    // its policy entity is built by its first decision and reused after.
    let new_caller = |principal| Caller::new(principal, [ME].into_iter().collect());
    let caller = new_caller(authenticate());
    let token = Resource::Account(AccountFacts {
        address: TOKEN,
        is_contract: true,
        deployer: Some(Address::repeat_byte(0x01)),
        deployer_org: "bank-a".into(),
    });
    let transfer = Circumstances::Frame(FrameFacts {
        kind: "call",
        depth: 0,
        caller: ME,
        signer: ME,
        selector: Some([0xa9, 0x05, 0x9c, 0xbb]),
        function: Some("transfer".into()),
        args: vec![
            ("from".to_owned(), ArgValue::Address(ME)),
            ("to".to_owned(), ArgValue::Address(OTHER)),
            ("amount".to_owned(), ArgValue::Uint(U256::from(700u64))),
        ]
        .into_iter()
        .collect(),
        value: U256::ZERO,
        spent_today_gwei: 0,
    });
    assert!(
        engine
            .decide(
                &caller,
                "eth_getBalance",
                &Resource::Node,
                &Circumstances::Rpc
            )
            .allowed
    );
    assert!(engine.decide(&caller, "call", &token, &transfer).allowed);

    println!("access control, {ROUNDS} rounds each, one thread:");
    measure("authenticate (API key / cached credential)", || {
        std::hint::black_box(authenticate());
    });
    measure("decide: RPC method (first of a request)", || {
        std::hint::black_box(engine.decide(
            &new_caller(caller.principal.clone()),
            "eth_getBalance",
            &Resource::Node,
            &Circumstances::Rpc,
        ));
    });
    measure("decide: ERC-20 transfer call frame (first)", || {
        std::hint::black_box(engine.decide(
            &new_caller(caller.principal.clone()),
            "call",
            &token,
            &transfer,
        ));
    });
    measure("decide: a further frame of the same caller", || {
        std::hint::black_box(engine.decide(&caller, "call", &token, &transfer));
    });
    measure("per request: authenticate + RPC decision", || {
        let c = new_caller(authenticate());
        std::hint::black_box(engine.decide(
            &c,
            "eth_getBalance",
            &Resource::Node,
            &Circumstances::Rpc,
        ));
    });
    measure("per transaction: authenticate + send + frame", || {
        let c = new_caller(authenticate());
        std::hint::black_box(engine.decide(
            &c,
            "eth_sendRawTransaction",
            &Resource::Node,
            &Circumstances::Rpc,
        ));
        std::hint::black_box(engine.decide(&c, "call", &token, &transfer));
    });
    println!("decisions recorded: {}", sink.0.load(Ordering::Relaxed));
}
