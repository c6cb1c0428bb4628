//! Deterministic keys, transactions and contexts for tests and benches.
#![allow(missing_docs, unreachable_pub)]

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use state_transition::BlockContext;

pub const TEST_CHAIN_ID: u64 = 7777;

/// The `i`-th deterministic test key.
pub fn test_signer(i: u64) -> PrivateKeySigner {
    let mut key = [0u8; 32];
    key[24..].copy_from_slice(&(i + 1).to_be_bytes());
    key[0] = 0x11;
    PrivateKeySigner::from_bytes(&B256::from(key)).expect("valid key")
}

/// A signed EIP-1559 transfer of `value` wei from key 0 with `nonce`.
pub fn signed_transfer(nonce: u64, value: u64) -> TxEnvelope {
    signed_transfer_from(
        &test_signer(0),
        nonce,
        Address::with_last_byte(0x42),
        value,
        0,
    )
}

pub fn signed_transfer_from(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: u64,
    max_fee: u128,
) -> TxEnvelope {
    let call = TxEip1559 {
        to: TxKind::Call(to),
        value: U256::from(value),
        max_fee_per_gas: max_fee,
        gas_limit: 21_000,
        ..Default::default()
    };
    signed(signer, nonce, call)
}

/// A signed, fee-free call of `to` with `input`.
pub fn signed_call_from(
    signer: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    input: alloy_primitives::Bytes,
    gas_limit: u64,
) -> TxEnvelope {
    let call = TxEip1559 {
        to: TxKind::Call(to),
        input,
        gas_limit,
        ..Default::default()
    };
    signed(signer, nonce, call)
}

/// A signed, fee-free deployment of `init_code`.
pub fn signed_create_from(
    signer: &PrivateKeySigner,
    nonce: u64,
    init_code: alloy_primitives::Bytes,
) -> TxEnvelope {
    let create = TxEip1559 {
        to: TxKind::Create,
        input: init_code,
        gas_limit: 200_000,
        ..Default::default()
    };
    signed(signer, nonce, create)
}

/// `tx` on the test chain with `nonce`, signed by `signer`.
fn signed(signer: &PrivateKeySigner, nonce: u64, tx: TxEip1559) -> TxEnvelope {
    let tx = TxEip1559 {
        chain_id: TEST_CHAIN_ID,
        nonce,
        max_priority_fee_per_gas: 0,
        ..tx
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
    TxEnvelope::Eip1559(tx.into_signed(sig))
}

pub fn test_context(number: u64) -> BlockContext {
    BlockContext {
        number,
        timestamp: 1_700_000_000 + number,
        parent_hash: B256::with_last_byte(number as u8),
        beneficiary: Address::ZERO,
        gas_limit: 30_000_000,
        base_fee: 0,
        prevrandao: B256::repeat_byte(0x5a),
    }
}

/// What keeping the state history costs the derive stage, measured on a
/// token with `holders` balances and `blocks` blocks of `transfers`
/// transfers each (two balance slots and the sender's account apiece).
#[derive(Debug, Clone, Copy)]
pub struct HistoryCost {
    pub blocks: u64,
    pub transfers_per_block: usize,
    /// Trie nodes and their bytes (RLP + 8-byte block) written per block.
    pub nodes_per_block: f64,
    pub node_bytes_per_block: f64,
    /// The node log (32 bytes a node) per block.
    pub log_bytes_per_block: f64,
    /// Tries updated and rooted, without keeping nodes (µs per block).
    pub root_us_per_block: f64,
    /// The same keeping them: collected, batched and written to `store`.
    pub root_and_history_us_per_block: f64,
    /// Of that, rooting while collecting and batching (the rest is the
    /// store's write: sealing, blinding, the B-tree).
    pub collect_us_per_block: f64,
}

pub fn history_cost(
    store: std::sync::Arc<dyn storage::KvStore>,
    holders: usize,
    blocks: u64,
    transfers: usize,
) -> HistoryCost {
    use crate::derive::{put_nodes, state::DerivedState, trie::NewNodes};
    use state_transition::{revm::state::AccountInfo, AccountChange, MemoryState, StateDiff};
    use std::time::{Duration, Instant};
    let token = Address::repeat_byte(0xee);
    let holder = |i: usize| Address::from_word(alloy_primitives::keccak256(i.to_be_bytes()));
    let slot = |a: Address| U256::from_be_bytes(alloy_primitives::keccak256(a.into_word()).0);
    let mut genesis = MemoryState::default();
    genesis.accounts.insert(
        token,
        AccountInfo {
            nonce: 1,
            ..Default::default()
        },
    );
    let balances = genesis.storage.entry(token).or_default();
    for i in 0..holders {
        balances.insert(slot(holder(i)), U256::from(1_000_000u64));
        genesis.accounts.insert(
            holder(i),
            AccountInfo {
                balance: U256::from(10u64).pow(U256::from(18u64)),
                ..Default::default()
            },
        );
    }
    let mut plain = DerivedState::new(genesis.clone(), 0, &mut NewNodes::new());
    let mut kept = DerivedState::new(genesis.clone(), 0, &mut NewNodes::new());
    let mut state = genesis;
    let mut seed = 1u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let (mut plain_time, mut kept_time) = (Duration::ZERO, Duration::ZERO);
    let mut collect_time = Duration::ZERO;
    let (mut nodes, mut node_bytes) = (0usize, 0usize);
    for number in 1..=blocks {
        let mut diff = StateDiff::default();
        for _ in 0..transfers {
            let (from, to) = (holder(next() % holders), holder(next() % holders));
            let storage = &state.storage[&token];
            let (fb, tb) = (storage[&slot(from)], storage[&slot(to)]);
            let change = diff.accounts.entry(token).or_insert_with(|| AccountChange {
                info: state.accounts.get(&token).cloned(),
                storage_cleared: false,
                storage: Default::default(),
            });
            change
                .storage
                .insert(slot(from), fb.saturating_sub(U256::from(1)));
            change.storage.insert(slot(to), tb + U256::from(1));
            let mut sender = state.accounts[&from].clone();
            sender.nonce += 1;
            diff.accounts.insert(
                from,
                AccountChange {
                    info: Some(sender),
                    storage_cleared: false,
                    storage: Default::default(),
                },
            );
            state.apply(&StateDiff {
                accounts: diff.accounts.clone(),
                codes: Default::default(),
            });
        }
        let t = Instant::now();
        plain.apply(&diff, number, B256::ZERO, &mut NewNodes::new());
        plain_time += t.elapsed();
        let t = Instant::now();
        let mut new = NewNodes::new();
        kept.apply(&diff, number, B256::ZERO, &mut new);
        nodes += new.len();
        node_bytes += new.iter().map(|(_, rlp)| rlp.len() + 8).sum::<usize>();
        let mut batch = storage::WriteBatch::new();
        put_nodes(&mut batch, number, &new);
        collect_time += t.elapsed();
        store.write(batch, false).expect("store write");
        kept_time += t.elapsed();
    }
    let per = |x: f64| x / blocks as f64;
    HistoryCost {
        blocks,
        transfers_per_block: transfers,
        nodes_per_block: per(nodes as f64),
        node_bytes_per_block: per(node_bytes as f64),
        log_bytes_per_block: per(nodes as f64 * 32.0),
        root_us_per_block: per(plain_time.as_secs_f64() * 1e6),
        root_and_history_us_per_block: per(kept_time.as_secs_f64() * 1e6),
        collect_us_per_block: per(collect_time.as_secs_f64() * 1e6),
    }
}
