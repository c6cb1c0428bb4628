use super::*;
use alloc::collections::BTreeMap;
use alloy_trie::{proof::ProofRetainer, HashBuilder};

fn key(n: u32) -> B256 {
    keccak256(n.to_be_bytes())
}

fn value(n: u32) -> Vec<u8> {
    alloy_rlp::encode(alloy_primitives::U256::from(n) + alloy_primitives::U256::from(1))
}

/// Root of a full trie and the proof nodes for `targets`.
fn full(entries: &BTreeMap<B256, Vec<u8>>, targets: &[B256]) -> (B256, NodePool) {
    let retainer = ProofRetainer::new(targets.iter().map(Nibbles::unpack).collect());
    let mut hb = HashBuilder::default().with_proof_retainer(retainer);
    for (k, v) in entries {
        hb.add_leaf(Nibbles::unpack(k), v);
    }
    let root = hb.root();
    let nodes = hb.take_proof_nodes().into_nodes_sorted();
    (root, NodePool::new(nodes.into_iter().map(|(_, n)| n)))
}

fn entries(range: core::ops::Range<u32>) -> BTreeMap<B256, Vec<u8>> {
    range.map(|n| (key(n), value(n))).collect()
}

#[test]
fn reads_what_the_proof_covers_and_refuses_the_rest() {
    let all = entries(0..200);
    let (root, pool) = full(&all, &[key(7), key(500)]);
    let trie = PartialTrie::open(root, &pool).unwrap();
    assert_eq!(trie.root(), root);
    assert_eq!(trie.get(&key(7)).unwrap(), Some(value(7).as_slice()));
    assert_eq!(trie.get(&key(500)).unwrap(), None, "absence is proven");
    let unproven = (0..200).find(|n| trie.get(&key(*n)).is_err());
    assert!(unproven.is_some(), "other keys are not revealed");
}

#[test]
fn updates_match_a_full_recompute() {
    let mut all = entries(0..300);
    // Change, insert and delete, including deletions that collapse branches.
    let changed: Vec<u32> = (0..300).step_by(37).collect();
    let inserted: Vec<u32> = (1000..1010).collect();
    let deleted: Vec<u32> = (5..300).step_by(11).filter(|n| n % 37 != 0).collect();
    let mut targets: Vec<B256> = changed
        .iter()
        .chain(&inserted)
        .chain(&deleted)
        .map(|n| key(*n))
        .collect();
    // Deleting needs the nearest surviving neighbours opened (see the witness builder).
    let survivors: Vec<B256> = all
        .keys()
        .copied()
        .filter(|k| !deleted.iter().any(|d| key(*d) == *k))
        .collect();
    for d in &deleted {
        let k = key(*d);
        let pos = survivors.partition_point(|s| *s < k);
        targets.extend(survivors.get(pos));
        if pos > 0 {
            targets.push(survivors[pos - 1]);
        }
    }
    let (root, pool) = full(&all, &targets);
    let mut trie = PartialTrie::open(root, &pool).unwrap();
    for n in &changed {
        trie.set(&key(*n), value(n + 5000)).unwrap();
        all.insert(key(*n), value(n + 5000));
    }
    for n in &inserted {
        trie.set(&key(*n), value(*n)).unwrap();
        all.insert(key(*n), value(*n));
    }
    for n in &deleted {
        trie.set(&key(*n), Vec::new()).unwrap();
        all.remove(&key(*n));
    }
    let (expected, _) = full(&all, &[]);
    assert_eq!(trie.root(), expected);
}

#[test]
fn small_tries_update_like_full_ones() {
    for size in 1..12u32 {
        for target in 0..size {
            let mut all = entries(0..size);
            let (root, pool) = full(&all, &[key(target), key(100)]);
            let mut trie = PartialTrie::open(root, &pool).unwrap();
            trie.set(&key(target), value(target + 50)).unwrap();
            trie.set(&key(100), value(100)).unwrap();
            all.insert(key(target), value(target + 50));
            all.insert(key(100), value(100));
            assert_eq!(
                trie.root(),
                full(&all, &[]).0,
                "size {size} target {target}"
            );
        }
    }
}

#[test]
fn empties_and_refills() {
    let all = entries(0..3);
    let targets: Vec<B256> = all.keys().copied().collect();
    let (root, pool) = full(&all, &targets);
    let mut trie = PartialTrie::open(root, &pool).unwrap();
    for k in &targets {
        trie.set(k, Vec::new()).unwrap();
    }
    assert_eq!(trie.root(), EMPTY_ROOT_HASH);
    trie.set(&key(9), value(9)).unwrap();
    assert_eq!(trie.root(), full(&entries(9..10), &[]).0);
}

#[test]
fn nodes_of_other_shapes_are_refused() {
    let list = |items: &[&[u8]]| {
        let payload: Vec<u8> = items.concat();
        let mut rlp = vec![0xc0 + payload.len() as u8];
        rlp.extend(payload);
        rlp
    };
    let empty: &[u8] = &[EMPTY_STRING_CODE];
    let mut branch_with_value = vec![empty; 16];
    branch_with_value.push(&[0x01]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("a branch with a value", list(&branch_with_value)),
        ("three items", list(&[empty, empty, empty])),
        ("a string", vec![0x82, 0x12, 0x34]),
        ("a path flag of 4", list(&[&[0x81, 0x40], &[0x01]])),
        ("an odd path of 65 nibbles", {
            let mut key = vec![0xa1, 0x31];
            key.extend([0u8; 32]);
            let mut rlp = vec![0xf8, (key.len() + 1) as u8];
            rlp.extend(key);
            rlp.push(0x01);
            rlp
        }),
    ];
    for (what, raw) in cases {
        let pool = NodePool::new([Bytes::from(raw.clone())]);
        let root = keccak256(&raw);
        assert_eq!(
            PartialTrie::open(root, &pool).map(|_| ()),
            Err(TrieError::BadNode(root)),
            "{what}"
        );
    }
}

#[test]
fn forged_nodes_are_never_used() {
    let all = entries(0..50);
    let (root, pool) = full(&all, &[key(3)]);
    // A pool whose nodes were edited: the edited node hashes differently,
    // so the walk from the real root cannot reach it.
    let forged = NodePool::new(pool.0.values().map(|n| {
        let mut v = n.to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        Bytes::from(v)
    }));
    let trie = PartialTrie::open(root, &forged).unwrap();
    assert!(matches!(trie.get(&key(3)), Err(TrieError::Incomplete(_))));
}

#[test]
fn deleting_next_to_an_unopened_sibling_is_refused() {
    let all = entries(0..2);
    let (root, pool) = full(&all, &[key(0)]);
    let mut trie = PartialTrie::open(root, &pool).unwrap();
    // Two leaves under one branch: removing one must fold the other in,
    // whose node the witness did not include when it is hashed (> 32 bytes).
    let result = trie.set(&key(0), Vec::new());
    if let Err(e) = result {
        assert!(matches!(e, TrieError::Incomplete(_)));
    } else {
        assert_eq!(trie.root(), full(&entries(1..2), &[]).0);
    }
}
