//! Plain transfers skip the EVM (`src/transfer.rs`); these tests run every
//! transaction both ways — the shortcut, and revm alone — and require the
//! same answer: the same receipt or the same rejection, the same diff, the
//! same sealed header. Each case also says whether the shortcut must take
//! it, so a shortcut that silently handed everything to revm would fail.

use alloy_consensus::{Signed, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy_primitives::{address, keccak256, Address, Bytes, Signature, TxKind, B256, U256};
use state_transition::{
    revm::{primitives::hardfork::SpecId, state::AccountInfo},
    BlockContext, BlockExecutor, CallGuard, ChainSpec, Denial, FeeMode, Frame, MemoryState,
    SharedGuard, TxRejection,
};
use std::sync::{Arc, Mutex};

const CHAIN_ID: u64 = 7;
const GWEI: u128 = 1_000_000_000;
const ETH: u128 = 1_000_000_000_000_000_000;

const ALICE: Address = address!("a11ce00000000000000000000000000000000001");
const BOB: Address = address!("b0b0000000000000000000000000000000000002");
/// Exists in the state with nothing in it (possible from a genesis file).
const EMPTY: Address = address!("e0e0000000000000000000000000000000000003");
const FRESH: Address = address!("f4e5000000000000000000000000000000000004");
const CONTRACT: Address = address!("c0de000000000000000000000000000000000005");
const DELEGATED: Address = address!("de1e000000000000000000000000000000000006");
const COINBASE: Address = address!("c0b0000000000000000000000000000000000007");
const POOR: Address = address!("9009000000000000000000000000000000000008");
/// Holds more than u128 can count.
const WHALE: Address = address!("3ba1e00000000000000000000000000000000009");

fn funded(balance: u128, nonce: u64) -> AccountInfo {
    AccountInfo {
        balance: U256::from(balance),
        nonce,
        ..Default::default()
    }
}

fn with_code(state: &mut MemoryState, address: Address, balance: u128, code: &[u8]) {
    let hash = keccak256(code);
    state.codes.insert(hash, Bytes::copy_from_slice(code));
    state.accounts.insert(
        address,
        AccountInfo {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: hash,
            // Not `..Default::default()`: that is empty code, which revm
            // would run instead of loading the code by its hash.
            code: None,
            account_id: None,
        },
    );
}

fn genesis(coinbase_exists: bool) -> MemoryState {
    let mut state = MemoryState::default();
    state.accounts.insert(ALICE, funded(100 * ETH, 3));
    state.accounts.insert(BOB, funded(ETH, 0));
    state.accounts.insert(EMPTY, AccountInfo::default());
    state
        .accounts
        .insert(POOR, funded(21_000 * 10 * GWEI + 5, 0));
    state.accounts.insert(
        WHALE,
        AccountInfo {
            balance: U256::from(1u8) << 200,
            ..Default::default()
        },
    );
    if coinbase_exists {
        state.accounts.insert(COINBASE, funded(ETH, 0));
    }
    // PUSH1 1 PUSH1 0 SSTORE STOP: a receive that writes.
    with_code(
        &mut state,
        CONTRACT,
        0,
        &[0x60, 0x01, 0x60, 0x00, 0x55, 0x00],
    );
    let mut delegation = vec![0xef, 0x01, 0x00];
    delegation.extend_from_slice(BOB.as_slice());
    with_code(&mut state, DELEGATED, ETH, &delegation);
    state
}

fn context(base_fee: u64) -> BlockContext {
    BlockContext {
        number: 1,
        timestamp: 1_700_000_000,
        parent_hash: B256::repeat_byte(0x11),
        beneficiary: COINBASE,
        gas_limit: 30_000_000,
        base_fee,
        prevrandao: B256::repeat_byte(0x22),
    }
}

fn chain(spec: SpecId) -> ChainSpec {
    ChainSpec {
        chain_id: CHAIN_ID,
        spec,
        fee_mode: FeeMode::Zero,
        block_gas_limit: 30_000_000,
    }
}

fn sig() -> Signature {
    Signature::new(U256::from(1), U256::from(1), false)
}

fn legacy(nonce: u64, to: Address, value: u128, gas: u64, price: u128) -> TxEnvelope {
    TxEnvelope::Legacy(Signed::new_unhashed(
        TxLegacy {
            chain_id: Some(CHAIN_ID),
            nonce,
            gas_price: price,
            gas_limit: gas,
            to: TxKind::Call(to),
            value: U256::from(value),
            input: Bytes::new(),
        },
        sig(),
    ))
}

fn eip1559(nonce: u64, to: Address, value: u128, max_fee: u128, tip: u128) -> TxEnvelope {
    TxEnvelope::Eip1559(Signed::new_unhashed(
        TxEip1559 {
            chain_id: CHAIN_ID,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(to),
            value: U256::from(value),
            ..Default::default()
        },
        sig(),
    ))
}

fn eip2930(nonce: u64, to: Address, access: bool) -> TxEnvelope {
    let mut tx = TxEip2930 {
        chain_id: CHAIN_ID,
        nonce,
        gas_price: 10 * GWEI,
        gas_limit: 30_000,
        to: TxKind::Call(to),
        value: U256::from(5u64),
        ..Default::default()
    };
    if access {
        tx.access_list = vec![alloy_eips::eip2930::AccessListItem {
            address: BOB,
            storage_keys: vec![B256::ZERO],
        }]
        .into();
    }
    TxEnvelope::Eip2930(Signed::new_unhashed(tx, sig()))
}

fn with_legacy(tx: TxEnvelope, edit: impl FnOnce(&mut TxLegacy)) -> TxEnvelope {
    let TxEnvelope::Legacy(signed) = tx else {
        unreachable!()
    };
    let mut inner = signed.strip_signature();
    edit(&mut inner);
    TxEnvelope::Legacy(Signed::new_unhashed(inner, sig()))
}

/// One transaction. `plain`: ether between two distinct wallets, neither
/// holding code nor being the coinbase, with no data, no access list and
/// the chain's id, so the shortcut must apply it whenever revm accepts it.
struct Case {
    name: &'static str,
    sender: Address,
    tx: TxEnvelope,
    plain: bool,
}

fn case(name: &'static str, sender: Address, tx: TxEnvelope, plain: bool) -> Case {
    Case {
        name,
        sender,
        tx,
        plain,
    }
}

fn cases() -> Vec<Case> {
    let p = 10 * GWEI;
    vec![
        case(
            "legacy to a wallet",
            ALICE,
            legacy(3, BOB, ETH, 21_000, p),
            true,
        ),
        case(
            "gas limit above the cost",
            ALICE,
            legacy(3, BOB, 1, 90_000, p),
            true,
        ),
        case(
            "to a new account",
            ALICE,
            legacy(3, FRESH, 7, 21_000, p),
            true,
        ),
        case(
            "nothing to a new account",
            ALICE,
            legacy(3, FRESH, 0, 21_000, p),
            true,
        ),
        case(
            "nothing to an empty account",
            ALICE,
            legacy(3, EMPTY, 0, 21_000, p),
            true,
        ),
        case(
            "to an empty account",
            ALICE,
            legacy(3, EMPTY, 9, 21_000, p),
            true,
        ),
        case(
            "the whole balance",
            POOR,
            legacy(0, BOB, 5, 21_000, p),
            true,
        ),
        case("one wei short", POOR, legacy(0, BOB, 6, 21_000, p), true),
        case(
            "eip-1559",
            ALICE,
            eip1559(3, BOB, ETH, 100 * GWEI, 2 * GWEI),
            true,
        ),
        case(
            "eip-1559 capped by max fee",
            ALICE,
            eip1559(3, BOB, 1, 11 * GWEI, 9 * GWEI),
            true,
        ),
        case(
            "tip above max fee",
            ALICE,
            eip1559(3, BOB, 1, 20 * GWEI, 21 * GWEI),
            true,
        ),
        case(
            "max fee below base fee",
            ALICE,
            eip1559(3, BOB, 1, 1, 0),
            true,
        ),
        case(
            "eip-2930 without a list",
            ALICE,
            eip2930(3, BOB, false),
            true,
        ),
        case("eip-2930 with a list", ALICE, eip2930(3, BOB, true), false),
        case(
            "to a contract",
            ALICE,
            legacy(3, CONTRACT, 1, 60_000, p),
            false,
        ),
        case(
            "to delegated code",
            ALICE,
            legacy(3, DELEGATED, 1, 60_000, p),
            false,
        ),
        case(
            "from delegated code",
            DELEGATED,
            legacy(1, BOB, 1, 21_000, p),
            false,
        ),
        case(
            "from a contract",
            CONTRACT,
            legacy(1, BOB, 0, 21_000, p),
            false,
        ),
        case(
            "to a precompile",
            ALICE,
            legacy(
                3,
                address!("0000000000000000000000000000000000000001"),
                1,
                60_000,
                p,
            ),
            false,
        ),
        case(
            "to P256VERIFY",
            ALICE,
            legacy(
                3,
                address!("0000000000000000000000000000000000000100"),
                1,
                60_000,
                p,
            ),
            false,
        ),
        case("nonce too low", ALICE, legacy(2, BOB, 1, 21_000, p), true),
        case("nonce too high", ALICE, legacy(4, BOB, 1, 21_000, p), true),
        case(
            "gas below the cost",
            ALICE,
            legacy(3, BOB, 1, 20_999, p),
            true,
        ),
        case(
            "gas above the block",
            ALICE,
            legacy(3, BOB, 1, 30_000_001, p),
            true,
        ),
        case(
            "gas above EIP-7825's cap",
            ALICE,
            legacy(3, BOB, 1, 20_000_000, p),
            true,
        ),
        case(
            "price below base fee",
            ALICE,
            legacy(3, BOB, 1, 21_000, 1),
            true,
        ),
        case(
            "wrong chain",
            ALICE,
            with_legacy(legacy(3, BOB, 1, 21_000, p), |t| t.chain_id = Some(8)),
            false,
        ),
        case(
            "no chain id",
            ALICE,
            with_legacy(legacy(3, BOB, 1, 21_000, p), |t| t.chain_id = None),
            false,
        ),
        case(
            "with call data",
            ALICE,
            with_legacy(legacy(3, BOB, 1, 30_000, p), |t| {
                t.input = Bytes::from_static(&[1])
            }),
            false,
        ),
        case("to itself", ALICE, legacy(3, ALICE, 1, 21_000, p), false),
        case(
            "to the coinbase",
            ALICE,
            legacy(3, COINBASE, 1, 21_000, p),
            false,
        ),
        case(
            "value overflows",
            ALICE,
            with_legacy(legacy(3, BOB, 0, 21_000, p), |t| t.value = U256::MAX),
            true,
        ),
        case(
            "from an unknown account",
            FRESH,
            legacy(0, BOB, 0, 21_000, 0),
            true,
        ),
        case(
            "a rich sender",
            WHALE,
            eip1559(0, BOB, ETH, 100 * GWEI, GWEI),
            true,
        ),
        // 21,000 × 2^114 passes u128: revm refuses it whatever the balance.
        case(
            "max fee × gas past u128",
            WHALE,
            eip1559(0, BOB, 1, 1 << 114, 0),
            true,
        ),
    ]
}

type Outcome = Result<state_transition::ExecutedTx, TxRejection>;

fn run(
    spec: SpecId,
    base_fee: u64,
    state: &MemoryState,
    txs: &[(TxEnvelope, Address)],
    shortcut: bool,
    guard: Option<&SharedGuard>,
) -> (Vec<Outcome>, state_transition::BlockOutcome, usize) {
    let mut exec = BlockExecutor::new(&chain(spec), context(base_fee), state);
    if !shortcut {
        exec = exec.without_transfer_shortcut();
    }
    let outcomes = txs
        .iter()
        .map(|(tx, sender)| exec.execute_guarded(tx.clone(), *sender, guard).cloned())
        .collect();
    let applied = exec.transfers_applied();
    (outcomes, exec.finish(), applied)
}

#[test]
fn every_case_gets_revms_answer() {
    let mut taken = 0;
    for spec in [
        SpecId::LONDON,
        SpecId::CANCUN,
        SpecId::PRAGUE,
        SpecId::OSAKA,
    ] {
        for coinbase_exists in [true, false] {
            // A zero base fee with a zero price leaves the coinbase touched
            // but empty: EIP-161 removes it, in both paths alike.
            for (base_fee, zero_price) in [(7 * GWEI as u64, false), (0, false), (0, true)] {
                let state = genesis(coinbase_exists);
                for case in cases() {
                    let tx = if zero_price {
                        with_legacy_price_zero(case.tx.clone())
                    } else {
                        case.tx.clone()
                    };
                    let txs = [(tx, case.sender)];
                    let (fast, fast_block, applied) = run(spec, base_fee, &state, &txs, true, None);
                    let (slow, slow_block, _) = run(spec, base_fee, &state, &txs, false, None);
                    let at = format!("{} ({spec:?}, base fee {base_fee}, coinbase {coinbase_exists}, zero price {zero_price})", case.name);
                    assert_eq!(fast, slow, "{at}");
                    assert_eq!(fast_block, slow_block, "{at}");
                    // The shortcut takes every plain transfer revm accepts,
                    // and nothing else.
                    let expected = case.plain && slow[0].is_ok();
                    assert_eq!(applied, usize::from(expected), "{at}: shortcut taken?");
                    taken += applied;
                }
            }
        }
    }
    assert!(taken > 100, "the shortcut applied {taken} times");
}

fn with_legacy_price_zero(tx: TxEnvelope) -> TxEnvelope {
    match tx {
        TxEnvelope::Legacy(_) => with_legacy(tx, |t| t.gas_price = 0),
        other => other,
    }
}

/// Many transfers in one block, each reading what the ones before wrote:
/// new accounts funded and then spending, nonces advancing, the coinbase
/// accumulating tips, rejections in between.
#[test]
fn a_busy_block_seals_the_same() {
    let mut state = genesis(false);
    let wallets: Vec<Address> = (0..24u8).map(|i| Address::repeat_byte(0x40 + i)).collect();
    for w in &wallets[..12] {
        state.accounts.insert(*w, funded(3 * ETH, 0));
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let chain = chain(SpecId::PRAGUE);
    let mut fast = BlockExecutor::new(&chain, context(8 * GWEI as u64), &state);
    let mut slow =
        BlockExecutor::new(&chain, context(8 * GWEI as u64), &state).without_transfer_shortcut();
    let mut nonces = std::collections::HashMap::new();
    let mut included = 0;
    for i in 0..400 {
        let from = wallets[(next() % 24) as usize];
        let to = wallets[(next() % 24) as usize];
        let nonce = nonces.entry(from).or_insert(0u64);
        // Every ninth sends a stale nonce: a rejection in the middle.
        let used = if i % 9 == 8 {
            nonce.wrapping_sub(1)
        } else {
            *nonce
        };
        let value = u128::from(next() % 4) * ETH / 3;
        let tx = if i % 2 == 0 {
            legacy(used, to, value, 21_000, 9 * GWEI)
        } else {
            eip1559(used, to, value, 12 * GWEI, u128::from(next()) % (4 * GWEI))
        };
        let a = fast.execute(tx.clone(), from).cloned();
        let b = slow.execute(tx, from).cloned();
        assert_eq!(a, b, "transaction {i}");
        if a.is_ok() {
            *nonce += 1;
            included += 1;
        }
    }
    let applied = fast.transfers_applied();
    let (fast_block, slow_block) = (fast.finish(), slow.finish());
    assert_eq!(fast_block, slow_block);
    assert!(included > 150, "{included} of 400 included");
    assert!(applied > 150, "shortcut applied {applied} times");
    let mut after = state.clone();
    after.apply(&fast_block.diff);
    assert_ne!(after.state_root(), state.state_root());
}

/// Records every frame it is asked about and refuses frames into BOB.
#[derive(Default)]
struct Recorder {
    frames: Mutex<Vec<String>>,
}

impl CallGuard for Recorder {
    fn check(&self, frame: &Frame<'_>) -> Result<(), Denial> {
        self.frames.lock().unwrap().push(format!("{frame:?}"));
        if frame.target == BOB {
            return Err(Denial {
                rule: "no-bob".into(),
                reason: "bob takes no payments".into(),
            });
        }
        Ok(())
    }
}

#[test]
fn the_guard_sees_the_same_frame_and_denies_alike() {
    let state = genesis(true);
    for to in [BOB, FRESH, EMPTY] {
        let txs = [(legacy(3, to, 1, 21_000, 10 * GWEI), ALICE)];
        let fast_guard = Arc::new(Recorder::default());
        let slow_guard = Arc::new(Recorder::default());
        let fast_shared: SharedGuard = fast_guard.clone();
        let slow_shared: SharedGuard = slow_guard.clone();
        let (fast, fast_block, applied) = run(
            SpecId::PRAGUE,
            7 * GWEI as u64,
            &state,
            &txs,
            true,
            Some(&fast_shared),
        );
        let (slow, slow_block, _) = run(
            SpecId::PRAGUE,
            7 * GWEI as u64,
            &state,
            &txs,
            false,
            Some(&slow_shared),
        );
        assert_eq!(fast, slow, "to {to}");
        assert_eq!(fast_block, slow_block, "to {to}");
        assert_eq!(
            *fast_guard.frames.lock().unwrap(),
            *slow_guard.frames.lock().unwrap()
        );
        assert_eq!(fast_guard.frames.lock().unwrap().len(), 1);
        if to == BOB {
            assert!(matches!(&fast[0], Err(TxRejection::Denied(d)) if d.rule == "no-bob"));
            assert_eq!(applied, 0);
        } else {
            assert!(fast[0].is_ok());
            assert_eq!(applied, 1);
        }
    }
}
