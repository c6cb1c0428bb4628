//! The derive stage against real stores: grouped commits, and blocks read
//! through the sealed list before their commit.

use super::*;
use crate::test_support::{
    signed_call_from, signed_transfer_from, test_context, test_signer, TEST_CHAIN_ID,
};
use alloy_primitives::{Address, Bytes};
use parking_lot::Mutex;
use state_transition::{revm::primitives::hardfork::SpecId, BlockExecutor, FeeMode};
use storage::{Entry, KeyRange, KvRead, RedbStore};

/// Stores `calldata[32..64]` in slot `calldata[0..32]`.
const SET_SLOT: [u8; 8] = [0x60, 0x20, 0x35, 0x60, 0x00, 0x35, 0x55, 0x00];
const SLOTS_AT: Address = Address::repeat_byte(0xcc);

/// A redb store that remembers whether each write asked for durability.
struct Recording {
    inner: RedbStore,
    writes: Mutex<Vec<bool>>,
}

impl KvRead for Recording {
    fn get(&self, table: Table, key: &[u8]) -> storage::Result<Option<Vec<u8>>> {
        self.inner.get(table, key)
    }
    fn range(&self, table: Table, keys: KeyRange<'_>) -> storage::Result<Vec<Entry>> {
        self.inner.range(table, keys)
    }
}

impl KvStore for Recording {
    fn write(&self, batch: WriteBatch, durable: bool) -> storage::Result<()> {
        self.writes.lock().push(durable);
        self.inner.write(batch, durable)
    }
    fn snapshot(&self) -> storage::Result<Box<dyn KvRead + Send + Sync>> {
        self.inner.snapshot()
    }
}

fn everything(store: &dyn KvStore) -> Vec<(Table, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for table in Table::ALL {
        store
            .scan(table, &mut |k, v| {
                out.push((table, k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
    }
    out
}

fn setup() -> (
    ChainSpec,
    Genesis,
    Vec<alloy_signer_local::PrivateKeySigner>,
) {
    let chain = ChainSpec {
        chain_id: TEST_CHAIN_ID,
        spec: SpecId::PRAGUE,
        fee_mode: FeeMode::Zero,
        block_gas_limit: 30_000_000,
    };
    let signers: Vec<_> = (0..4).map(test_signer).collect();
    let funded = crate::genesis::GenesisAccount {
        balance: Some(U256::from(10u64).pow(U256::from(18u64))),
        ..Default::default()
    };
    let mut alloc: std::collections::BTreeMap<_, _> = signers
        .iter()
        .map(|s| (s.address(), funded.clone()))
        .collect();
    let slots_at = crate::genesis::GenesisAccount {
        code: Some(Bytes::from_static(&SET_SLOT)),
        ..Default::default()
    };
    alloc.insert(SLOTS_AT, slots_at);
    let genesis = Genesis {
        config: crate::genesis::GenesisConfig {
            chain_id: Some(TEST_CHAIN_ID),
        },
        timestamp: None,
        gas_limit: None,
        alloc,
    };
    (chain, genesis, signers)
}

/// (slot, value) the last signer sets in each block: slot 1 is written,
/// cleared and written again.
const SETS: [(u8, u8); 5] = [(1, 5), (1, 0), (2, 7), (1, 9), (2, 0)];

/// A new recipient of signer `i` in block `number`.
fn recipient(number: u64, i: usize) -> Address {
    Address::with_last_byte(0x20 + (number * 4 + i as u64) as u8)
}

/// Executes blocks 1..=5 (transfers to new accounts, and the slot
/// writes of [`SETS`]) on `deriver`, applying each; returns them with
/// their roots.
fn five_blocks(
    chain: &ChainSpec,
    signers: &[alloy_signer_local::PrivateKeySigner],
    deriver: &mut Deriver,
) -> (Vec<BlockOutcome>, Vec<B256>) {
    let mut outcomes = Vec::new();
    let mut roots = Vec::new();
    for (number, (slot, value)) in (1..=5u64).zip(SETS) {
        let outcome = {
            let state = deriver.state();
            let mut exec = BlockExecutor::new(chain, test_context(number), &*state);
            for (i, s) in signers.iter().take(3).enumerate() {
                // New recipients each block: accounts created, tries grown.
                let tx =
                    signed_transfer_from(s, number - 1, recipient(number, i), 1_000 + i as u64, 0);
                exec.execute(tx, s.address()).unwrap();
            }
            let mut input = [0u8; 64];
            (input[31], input[63]) = (slot, value);
            let setter = &signers[3];
            let input = Bytes::copy_from_slice(&input);
            let tx = signed_call_from(setter, number - 1, SLOTS_AT, input, 100_000);
            let executed = exec.execute(tx, setter.address()).unwrap();
            assert!(executed.receipt.status(), "block {number}: slot set");
            exec.finish()
        };
        roots.push(deriver.apply(&outcome).unwrap());
        outcomes.push(outcome);
    }
    (outcomes, roots)
}

/// Blocks derived together in one commit leave the store exactly as
/// deriving them one at a time does: the same roots, blocks, receipts,
/// indexes, state and history, byte for byte, including a slot written,
/// cleared and written again within the group.
#[test]
fn blocks_derived_together_store_what_one_at_a_time_stores() {
    let (chain, genesis, signers) = setup();
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        Arc::new(Recording {
            inner: RedbStore::open(&dir.path().join(name)).unwrap(),
            writes: Mutex::new(Vec::new()),
        })
    };
    let (one_store, grouped_store) = (open("one.redb"), open("grouped.redb"));
    let mut one = Deriver::open(one_store.clone(), &genesis, &chain, 3).unwrap();
    let mut grouped = Deriver::open(grouped_store.clone(), &genesis, &chain, 3).unwrap();
    grouped_store.writes.lock().clear();
    let (outcomes, one_roots) = five_blocks(&chain, &signers, &mut one);
    let grouped_roots = grouped.apply_all(&outcomes).unwrap();
    assert_eq!(grouped_roots, one_roots);
    assert_eq!(grouped.height(), 5);
    assert_eq!(grouped.root(), one.root());
    // One commit, durable because block 3 is a multiple of 3.
    assert_eq!(*grouped_store.writes.lock(), vec![true]);
    let (a, b) = (everything(&*one_store), everything(&*grouped_store));
    assert!(a.iter().any(|(t, ..)| *t == Table::TrieNodes));
    assert_eq!(a, b);
    // Slot 1 holds 9 and slot 2 was cleared.
    let slot = |n: u8| storage_key(&SLOTS_AT, &U256::from(n));
    let stored = |n: u8| grouped_store.get(Table::Storage, &slot(n)).unwrap();
    assert_eq!(stored(1), Some(U256::from(9).to_be_bytes::<32>().to_vec()));
    assert_eq!(stored(2), None);
    // The history of every block in the group is readable.
    let view = ChainView::new(grouped_store.snapshot().unwrap());
    for number in 0..=5u64 {
        assert!(view.state_at(number).unwrap().is_some(), "block {number}");
    }
}

/// Compares answers line by line, naming the first that differs.
fn assert_same(got: &[String], want: &[String]) {
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w);
    }
    assert_eq!(got.len(), want.len());
}

/// Everything a reader asks of blocks 0..=5, as `view` answers it.
fn answers(view: &ChainView, signers: &[alloy_signer_local::PrivateKeySigner]) -> Vec<String> {
    let mut out = vec![format!("head {:?}", view.head().unwrap())];
    let mut addresses: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    addresses.push(SLOTS_AT);
    addresses.push(Address::repeat_byte(0xee)); // never touched
    for number in 0..=5u64 {
        addresses.extend((0..3).map(|i| recipient(number, i)));
        let block = view.block(number).unwrap();
        // As stored (Debug would show which hashes were cached).
        let encoded = block
            .as_ref()
            .map(|b| alloy_primitives::hex::encode(encode_block(b)));
        out.push(format!("block {number} {encoded:?}"));
        out.push(format!(
            "root {number} {:?}",
            view.state_root(number).unwrap()
        ));
        let block = block.expect("every block is readable");
        out.push(format!(
            "by hash {:?}",
            view.block_number(&block.hash).unwrap()
        ));
        for tx in &block.txs {
            let hash = tx.envelope.tx_hash();
            out.push(format!("tx {hash} {:?}", view.tx_location(hash).unwrap()));
        }
        let mut log = view.trie_node_log(number).unwrap().unwrap_or_default();
        log.sort();
        log.dedup();
        for hash in &log {
            out.push(format!(
                "node {hash} {:?}",
                view.trie_node_written(hash).unwrap()
            ));
        }
        // The state as of this block, walked from its root.
        let state = view.state_at(number).unwrap().expect("history kept");
        for address in &addresses {
            let info = state.account_info(address).unwrap();
            out.push(format!("{number} {address} {info:?}"));
        }
        for slot in 0..4u64 {
            let value = state.storage_slot(&SLOTS_AT, &U256::from(slot)).unwrap();
            out.push(format!("{number} slot {slot} {value}"));
        }
    }
    for address in &addresses {
        let info = view.account_info(address).unwrap();
        out.push(format!("latest {address} {info:?}"));
        if let Some(code) = info.map(|i| i.code_hash) {
            out.push(format!(
                "code {code} {:?}",
                view.code_by_hash(&code).unwrap()
            ));
        }
    }
    for slot in 0..4u64 {
        let value = view.storage_slot(&SLOTS_AT, &U256::from(slot)).unwrap();
        out.push(format!("slot {slot} {value}"));
    }
    out
}

/// Blocks rooted but not committed read, through the sealed list, as
/// they do once committed: every block, root, receipt location, trie
/// node, account, slot and historical state, whether the store holds none
/// of the listed blocks, some of them, or all of them while the list is
/// older than the store (blocks 3 and 4 listed, 5 committed since); and
/// committing them leaves the store as deriving them one at a time does.
#[test]
fn rooted_blocks_read_through_the_sealed_list_as_from_the_store() {
    let (chain, genesis, signers) = setup();
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| Arc::new(RedbStore::open(&dir.path().join(name)).unwrap());
    let (whole_store, split_store) = (open("whole.redb"), open("split.redb"));
    let mut whole = Deriver::open(whole_store.clone(), &genesis, &chain, 64).unwrap();
    let (outcomes, whole_roots) = five_blocks(&chain, &signers, &mut whole);
    let reference = answers(&ChainView::new(whole_store.snapshot().unwrap()), &signers);

    let split = Deriver::open(split_store.clone(), &genesis, &chain, 64).unwrap();
    let (mut stager, mut committer) = split.into_parts();
    let (first, _) = stager.stage(&outcomes[..2], None);
    committer.commit(first.unwrap()).unwrap();
    let mut rooted = Vec::new();
    let (three_four, mut roots) = stager.stage(&outcomes[2..4], Some(&mut rooted));
    let (five, last_root) = stager.stage(&outcomes[4..], Some(&mut rooted));
    roots.extend(last_root);
    assert_eq!(roots, whole_roots[2..]);
    let list = crate::sealed::SealedBlocks::default();
    list.push(rooted.iter().cloned());
    assert_eq!(list.len(), 3);
    // A list taken before block 5 was published.
    let older = crate::sealed::SealedBlocks::default();
    older.push(rooted[..2].iter().cloned());
    let older = older.current();

    // None of the listed blocks stored.
    let store_only = ChainView::new(split_store.snapshot().unwrap());
    assert_eq!(store_only.head().unwrap(), 2);
    assert!(store_only.block(3).unwrap().is_none());
    let through = ChainView::over(split_store.snapshot().unwrap(), list.current()).unwrap();
    assert_same(&answers(&through, &signers), &reference);

    // Blocks 3 and 4 stored, 3..=5 listed.
    committer.commit(three_four.unwrap()).unwrap();
    let overlap = ChainView::over(split_store.snapshot().unwrap(), list.current()).unwrap();
    assert_same(&answers(&overlap, &signers), &reference);

    // All stored, the list older than the store: blocks 3 and 4 must not
    // shadow block 5 (every signer's nonce moved in each).
    committer.commit(five.unwrap()).unwrap();
    let behind = ChainView::over(split_store.snapshot().unwrap(), older).unwrap();
    assert_same(&answers(&behind, &signers), &reference);
    list.committed(committer.height());
    assert_eq!(list.len(), 0);
    let after = ChainView::over(split_store.snapshot().unwrap(), list.current()).unwrap();
    assert_same(&answers(&after, &signers), &reference);
    assert_eq!(everything(&*split_store), everything(&*whole_store));
}
