//! What keeping the state history costs per block: trie nodes written, their
//! bytes, and the derive stage's time with and without them, on an ERC-20
//! among many holders, written to an encrypted redb store as the appliance
//! writes it.
//!
//! `cargo run --release -p sequencer --features test-utils --example history_cost [holders] [blocks] [transfers]`

use std::sync::Arc;

fn main() {
    // `PLAIN=1`: an unencrypted store, to tell sealing from the B-tree.
    let plain = std::env::var_os("PLAIN").is_some();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: holders blocks transfers"))
        .collect();
    let holders = args.first().copied().unwrap_or(50_000);
    let blocks = args.get(1).copied().unwrap_or(20) as u64;
    let transfers = args.get(2).copied().unwrap_or(1_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let raw = Arc::new(storage::RedbStore::open(&dir.path().join("state.redb")).expect("redb"));
    let keys = encryption::ActiveKeys {
        deks: [(1, encryption::KeyBytes::new([1; 32]))]
            .into_iter()
            .collect(),
        current: 1,
        epoch: 1,
        sealed_before: 0,
        limit: u64::MAX,
        mac: encryption::KeyBytes::new([0x5a; 32]),
    };
    let store: Arc<dyn storage::KvStore> = if plain {
        raw
    } else {
        Arc::new(encryption::EncryptedStore::new(
            raw,
            Arc::new(encryption::Cipher::new(&keys)),
        ))
    };
    let c = sequencer::test_support::history_cost(store, holders, blocks, transfers);
    println!(
        "{} holders, {} blocks of {} transfers",
        holders, c.blocks, c.transfers_per_block
    );
    println!(
        "per block: {:.0} trie nodes, {:.0} KiB of nodes + {:.0} KiB of node log ({:.0} bytes a transfer)",
        c.nodes_per_block,
        c.node_bytes_per_block / 1024.0,
        c.log_bytes_per_block / 1024.0,
        (c.node_bytes_per_block + c.log_bytes_per_block) / c.transfers_per_block as f64
    );
    println!(
        "derive time per block: {:.0} µs tries only, {:.0} µs keeping the history (+{:.0} µs, {:.1} µs a transfer)",
        c.root_us_per_block,
        c.root_and_history_us_per_block,
        c.root_and_history_us_per_block - c.root_us_per_block,
        (c.root_and_history_us_per_block - c.root_us_per_block) / c.transfers_per_block as f64
    );
    println!(
        "  of which rooting while collecting and batching {:.0} µs, the store's write {:.0} µs",
        c.collect_us_per_block,
        c.root_and_history_us_per_block - c.collect_us_per_block
    );
}
