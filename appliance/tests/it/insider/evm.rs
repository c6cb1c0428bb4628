//! The EVM's side doors: opcode reads, nested contracts, fallbacks, gas
//! searches and precompiles (findings 2 to 6).

use super::*;

/// Finding 2: `eth_getBalance` of a foreign wallet was refused, but init
/// code executing BALANCE (or EXTCODEHASH of a foreign contract) in
/// `eth_call` or in a transaction returned it. Before the fix the probes
/// answered with the balance and the hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opcodes_that_read_another_account_are_decided_like_rpc_reads() {
    let t = Insider::start(&[]).await;
    let victim = t.key("service", "bank-a", 7).await;
    let spy = t.key("service", "bank-b", 1).await;
    let a_contract = t.deploy(&victim, deploy_code(&RETURNS_42)).await;
    let target = victim.wallet.address();

    let by_rpc = t
        .call(&spy.token, "eth_getBalance", json!([target, "latest"]))
        .await;
    denied(&by_rpc, "default-deny");
    for (op, what) in [(0x31, target), (0x3b, a_contract), (0x3f, a_contract)] {
        let r = t.eth_call(&spy, None, &probe(op, what)).await;
        denied(&r, "default-deny");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("{what:#x}")), "{message}");
    }
    // The same probe as a transaction is refused at submission.
    let r = t
        .send(
            &spy.token,
            &spy.wallet,
            TxKind::Create,
            U256::ZERO,
            probe(0x31, target).into(),
        )
        .await;
    denied(&r, "default-deny");

    // What the spy may see, it may still read by opcode.
    let own = t
        .eth_call(&spy, None, &probe(0x31, spy.wallet.address()))
        .await;
    assert_eq!(word(&own), eth(1), "{own}");
    let mine = t.eth_call(&victim, None, &probe(0x3b, a_contract)).await;
    assert_eq!(word(&mine), U256::from(RETURNS_42.len()), "{mine}");
    // An auditor sees everything, by RPC and by opcode alike (through a
    // contract: auditors deploy nothing, not even in eth_call).
    let reader = t.deploy(&victim, deploy_code(&BALANCE_OF_ARGUMENT)).await;
    let auditor = t.key("auditor", "bank-c", 0).await;
    let r = t
        .eth_call(&auditor, Some(reader), target.into_word().as_slice())
        .await;
    assert_eq!(word(&r), eth(7), "{r}");
}

/// Finding 3: a contract created by a factory had no owner, so every
/// organization could call it; and a top-level deployment was unowned
/// until an RPC handler next scanned the chain. Before the fix both the
/// other organization's call and its transaction went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_created_at_any_depth_are_owned_before_the_next_transaction() {
    let t = Insider::start(&[]).await;
    let owner = t.key("service", "bank-a", 10).await;
    let other = t.key("service", "bank-b", 10).await;
    let factory_address = owner
        .wallet
        .address()
        .create(t.nonce(owner.wallet.address()).await);
    let child = factory_address.create(1);

    // The other organization's call of the child is sent right behind the
    // factory's deployment: at submission the child does not exist yet,
    // so only the block builder can refuse it.
    let deploy = t
        .tx(&owner.wallet, TxKind::Create, U256::ZERO, factory().into())
        .await;
    let intrude = t
        .tx(
            &other.wallet,
            TxKind::Call(child),
            U256::ZERO,
            Bytes::from_static(&[1]),
        )
        .await;
    let deployed = t
        .call(&owner.token, "eth_sendRawTransaction", json!([deploy]))
        .await;
    let intruded = t
        .call(&other.token, "eth_sendRawTransaction", json!([intrude]))
        .await;
    let sent = [deployed, intruded];
    let receipt = t.receipt(&sent[0]).await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let code = t.node.rpc("eth_getCode", json!([child, "latest"])).await;
    assert_eq!(
        code["result"],
        json!(Bytes::from(RETURNS_42.to_vec())),
        "{code}"
    );
    // Admitted to the pool (the child did not exist), then dropped when
    // the block was built: it never gets a receipt.
    if let Some(hash) = sent[1]["result"].as_str() {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let r = t.node.rpc("eth_getTransactionReceipt", json!([hash])).await;
        assert!(
            r["result"].is_null(),
            "the intruding call was included: {r}"
        );
    } else {
        denied(&sent[1], "exec.org-only-contracts");
    }

    // Reads and calls of the nested contract follow its owner's rules.
    denied(
        &t.eth_call(&other, Some(child), &[1]).await,
        "exec.org-only-contracts",
    );
    let r = t
        .send(
            &other.token,
            &other.wallet,
            TxKind::Call(child),
            U256::ZERO,
            Bytes::from_static(&[1]),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    assert_eq!(
        word(&t.eth_call(&owner, Some(child), &[1]).await),
        U256::from(42)
    );
}

/// Finding 4: empty call data was a plain transfer whatever the target, so
/// a trader of another organization ran that organization's contract's
/// fallback. Before the fix the transaction was included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_calldata_to_a_contract_is_a_call_of_its_code() {
    let t = Insider::start(&[]).await;
    let owner = t.key("service", "bank-a", 1).await;
    let trader = t.key("trader", "bank-b", 10).await;
    let contract = t.deploy(&owner, deploy_code(&FALLBACK_STORES_CALLER)).await;
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(contract),
            U256::ZERO,
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(contract),
            U256::from(1),
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    // A plain transfer to a wallet is still a transfer.
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(Address::repeat_byte(0x42)),
            eth(1),
            Bytes::new(),
        )
        .await;
    assert_eq!(t.receipt(&r).await["status"], "0x1");
}

/// Finding 5: eth_estimateGas checked only its first run; the search ran
/// unguarded, so code that calls a forbidden contract only when short of
/// gas was never checked. Before the fix the estimate was returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_of_an_estimate_is_guarded() {
    let t = Insider::start(&[]).await;
    let a = t.key("service", "bank-a", 1).await;
    let b = t.key("service", "bank-b", 1).await;
    let forbidden = t.deploy(&a, deploy_code(&RETURNS_42)).await;
    let tricky = t
        .deploy(&b, deploy_code(&calls_when_short_of_gas(forbidden)))
        .await;
    // With all the gas it asks for, the call is harmless.
    let ok = t.eth_call(&b, Some(tricky), &[]).await;
    assert_eq!(ok["result"], "0x", "{ok}");
    let r = t
        .call(
            &b.token,
            "eth_estimateGas",
            json!([{"from": b.wallet.address(), "to": tricky}]),
        )
        .await;
    denied(&r, "exec.org-only-contracts");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{forbidden:#x}")),
        "{r}"
    );
    // An estimate whose every run is allowed still works.
    let r = t
        .call(
            &b.token,
            "eth_estimateGas",
            json!([{"from": b.wallet.address(), "to": Address::repeat_byte(9), "value": "0x1"}]),
        )
        .await;
    assert_eq!(r["result"], "0x5208", "{r}");
}

/// Finding 6: precompiles were exempt from every rule, value caps
/// included. Before the fix 150 ETH went to 0x…01 from a trader capped at
/// 100 per transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_sent_to_a_precompile_is_capped_like_any_transfer() {
    let t = Insider::start(&[]).await;
    let trader = t.key("trader", "bank-b", 300).await;
    let ecrecover = Address::with_last_byte(1);
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(ecrecover),
            eth(150),
            Bytes::new(),
        )
        .await;
    denied(&r, "exec.trader.value-cap-tx");
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(ecrecover),
            eth(150),
            Bytes::from_static(&[0; 128]),
        )
        .await;
    denied(&r, "exec.trader.value-cap-tx");
    // Within the cap it is a transfer like any other; without value, the
    // precompile is plumbing.
    let r = t
        .send(
            &trader.token,
            &trader.wallet,
            TxKind::Call(ecrecover),
            eth(50),
            Bytes::new(),
        )
        .await;
    assert_eq!(t.receipt(&r).await["status"], "0x1");
    let r = t.eth_call(&trader, Some(ecrecover), &[0; 128]).await;
    assert!(r["result"].is_string(), "{r}");
}
