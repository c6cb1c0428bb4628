//! A partial Merkle-Patricia trie built from proof nodes.
//!
//! The prover's witness carries only the trie nodes on the paths a batch
//! touches. Every node is looked up by its keccak hash, starting from a
//! trusted root, so whatever this trie reveals is authentic; a path that leads
//! into a subtree the witness did not open is an error
//! ([`TrieError::Incomplete`]), never a guess. Updates rehash only the opened
//! part: untouched subtrees stay as their hashes.

use alloc::{boxed::Box, vec::Vec};
use alloy_primitives::{keccak256, map::B256Map, Bytes, B256};
use alloy_rlp::{Encodable, Header, EMPTY_STRING_CODE};
use alloy_trie::{nodes::encode_path_leaf, Nibbles, EMPTY_ROOT_HASH};

/// Why a partial trie could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrieError {
    /// The path runs into a subtree the witness did not include.
    Incomplete(B256),
    /// A node in the witness is not valid RLP of a trie node.
    BadNode(B256),
    /// The trie's shape does not fit fixed-length keys.
    Malformed,
}

/// Proof nodes by their hash: the pool every partial trie resolves from.
///
/// A hash map, not an ordered one: opening a branch looks up each of its
/// sixteen children, and in the zkVM a B-tree's 32-byte comparisons made
/// those lookups most of the cost of reading a witness (keccak hashes are
/// uniformly spread, so hashing them is cheap and collisions rare).
#[derive(Debug, Clone, Default)]
pub struct NodePool(B256Map<Bytes>);

impl NodePool {
    /// Indexes RLP-encoded trie nodes by keccak hash.
    pub fn new(nodes: impl IntoIterator<Item = Bytes>) -> Self {
        let nodes = nodes.into_iter();
        let mut map = B256Map::with_capacity_and_hasher(nodes.size_hint().0, Default::default());
        for node in nodes {
            map.insert(keccak256(&node), node);
        }
        Self(map)
    }

    /// Number of distinct nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no nodes were given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Leaf(Nibbles, Vec<u8>),
    Extension(Nibbles, Box<Node>),
    Branch(Box<[Node; 16]>),
    /// A subtree the witness did not open.
    Hash(B256),
}

/// A trie opened as far as the witness allows.
#[derive(Debug, Clone)]
pub struct PartialTrie {
    root: Node,
}

impl PartialTrie {
    /// Opens the trie with root `root`, resolving every node found in `pool`.
    pub fn open(root: B256, pool: &NodePool) -> Result<Self, TrieError> {
        if root == EMPTY_ROOT_HASH {
            return Ok(Self { root: Node::Empty });
        }
        let mut node = Node::Empty;
        resolve_hash(root, pool, &mut node)?;
        Ok(Self { root: node })
    }

    /// The value stored under `key` (a 32-byte hashed key), or `None`.
    pub fn get(&self, key: &B256) -> Result<Option<&[u8]>, TrieError> {
        let path = Nibbles::unpack(key);
        let mut node = &self.root;
        let mut at = 0;
        loop {
            match node {
                Node::Empty => return Ok(None),
                Node::Hash(h) => return Err(TrieError::Incomplete(*h)),
                Node::Leaf(rest, value) => {
                    return Ok((path.slice(at..) == *rest).then_some(value.as_slice()))
                }
                Node::Extension(prefix, child) => {
                    if !path.slice(at..).starts_with(prefix) {
                        return Ok(None);
                    }
                    at += prefix.len();
                    node = child;
                }
                Node::Branch(children) => {
                    let Some(i) = path.get(at) else {
                        return Err(TrieError::Malformed);
                    };
                    node = &children[i as usize];
                    at += 1;
                }
            }
        }
    }

    /// Stores `value` under `key`; an empty value removes the key.
    pub fn set(&mut self, key: &B256, value: Vec<u8>) -> Result<(), TrieError> {
        let path = Nibbles::unpack(key);
        if !value.is_empty() {
            return insert(&mut self.root, &path, value);
        }
        let root = core::mem::replace(&mut self.root, Node::Empty);
        self.root = remove(root, &path)?;
        Ok(())
    }

    /// The root hash of the trie as it stands.
    pub fn root(&self) -> B256 {
        match &self.root {
            Node::Hash(h) => *h,
            Node::Empty => EMPTY_ROOT_HASH,
            node => {
                let mut buf = Vec::with_capacity(600);
                let start = encode_node(node, &mut buf, &mut Vec::new(), 0);
                keccak256(&buf[start..])
            }
        }
    }
}

// The node is written into `out` rather than returned: a node is tens of
// bytes, and in the zkVM every move of one is a memcpy call; returned
// through the recursion, each was copied at every level.
fn resolve_hash(hash: B256, pool: &NodePool, out: &mut Node) -> Result<(), TrieError> {
    match pool.0.get(&hash) {
        Some(raw) => decode(raw, hash, pool, out),
        None => {
            *out = Node::Hash(hash);
            Ok(())
        }
    }
}

/// Decodes one node straight from its RLP into [`Node`], resolving its
/// children from `pool`. Hand-written rather than through alloy-trie's
/// `TrieNode`, whose branch keeps a `Vec` of 33-byte child references that
/// were copied again into this tree: in the zkVM those copies made reading
/// a witness node cost several times its hashing. The accepted shapes are
/// `TrieNode`'s: an empty string (the empty trie), a 17-item branch without
/// a value, or a 2-item leaf or extension with a hex-prefix path.
fn decode(raw: &[u8], hash: B256, pool: &NodePool, out: &mut Node) -> Result<(), TrieError> {
    let bad = |_| TrieError::BadNode(hash);
    let mut buf = raw;
    let header = Header::decode(&mut buf).map_err(bad)?;
    let Some(mut payload) = buf.get(..header.payload_length) else {
        return Err(TrieError::BadNode(hash));
    };
    if !header.list {
        *out = Node::Empty;
        return match payload.is_empty() {
            true => Ok(()),
            false => Err(TrieError::BadNode(hash)),
        };
    }
    let mut items = [&[][..]; 17];
    let mut count = 0;
    while !payload.is_empty() {
        let item = payload;
        let Header { payload_length, .. } = Header::decode(&mut payload).map_err(bad)?;
        payload = payload
            .get(payload_length..)
            .ok_or(TrieError::BadNode(hash))?;
        let slot = items.get_mut(count).ok_or(TrieError::BadNode(hash))?;
        *slot = &item[..item.len() - payload.len()];
        count += 1;
    }
    match count {
        17 => {
            if items[16] != [EMPTY_STRING_CODE] {
                return Err(TrieError::BadNode(hash));
            }
            // Built in place on the heap: a [Node; 16] made on the stack
            // would be copied into its box.
            let mut children = Vec::with_capacity(16);
            children.resize_with(16, || Node::Empty);
            for (slot, item) in children.iter_mut().zip(&items[..16]) {
                child(item, hash, pool, slot)?;
            }
            let children: Box<[Node; 16]> = children
                .into_boxed_slice()
                .try_into()
                .map_err(|_| TrieError::BadNode(hash))?;
            *out = Node::Branch(children);
            Ok(())
        }
        2 => {
            let mut key = items[0];
            let encoded = Header::decode_bytes(&mut key, false).map_err(bad)?;
            let (&flags, rest) = encoded.split_first().ok_or(TrieError::BadNode(hash))?;
            if rest.len() > 32 {
                return Err(TrieError::BadNode(hash));
            }
            // Hex prefix: 0/1 extension, 2/3 leaf; odd lengths carry their
            // first nibble in the low half of the flag byte.
            let mut path = Nibbles::unpack(rest);
            if flags & 0x10 != 0 {
                if rest.len() == 32 {
                    return Err(TrieError::BadNode(hash));
                }
                path = Nibbles::from_nibbles_unchecked([flags & 0x0f]).join(&path);
            }
            match flags >> 4 {
                0 | 1 => {
                    let mut next = Box::new(Node::Empty);
                    child(items[1], hash, pool, &mut next)?;
                    *out = Node::Extension(path, next);
                }
                2 | 3 => {
                    let mut value = items[1];
                    let value = Header::decode_bytes(&mut value, false).map_err(bad)?;
                    *out = Node::Leaf(path, value.to_vec());
                }
                _ => return Err(TrieError::BadNode(hash)),
            }
            Ok(())
        }
        _ => Err(TrieError::BadNode(hash)),
    }
}

/// A child reference: empty, a 32-byte hash, or (under 32 bytes) the node
/// inline.
fn child(item: &[u8], parent: B256, pool: &NodePool, out: &mut Node) -> Result<(), TrieError> {
    match item {
        [EMPTY_STRING_CODE] => Ok(()),
        [0xa0, hash @ ..] if hash.len() == 32 => resolve_hash(B256::from_slice(hash), pool, out),
        [first, ..] if *first >= 0xc0 && item.len() < 32 => decode(item, parent, pool, out),
        _ => Err(TrieError::BadNode(parent)),
    }
}

// In place: the walk down to the changed leaf moves no node (in the zkVM a
// node moved is a memcpy call, and the by-value version moved every node on
// the path twice).
fn insert(node: &mut Node, path: &Nibbles, value: Vec<u8>) -> Result<(), TrieError> {
    match node {
        Node::Empty => *node = Node::Leaf(*path, value),
        Node::Hash(h) => return Err(TrieError::Incomplete(*h)),
        Node::Leaf(key, old) => {
            if *key == *path {
                *old = value;
                return Ok(());
            }
            let common = key.common_prefix_length(path);
            let (Some(old_at), Some(new_at)) = (key.get(common), path.get(common)) else {
                return Err(TrieError::Malformed);
            };
            let mut children = empty_children();
            children[old_at as usize] = Node::Leaf(key.slice(common + 1..), core::mem::take(old));
            children[new_at as usize] = Node::Leaf(path.slice(common + 1..), value);
            *node = with_prefix(path.slice(..common), Node::Branch(children));
        }
        Node::Extension(prefix, child) => {
            let common = prefix.common_prefix_length(path);
            if common == prefix.len() {
                return insert(child, &path.slice(common..), value);
            }
            let (Some(old_at), Some(new_at)) = (prefix.get(common), path.get(common)) else {
                return Err(TrieError::Malformed);
            };
            let below = core::mem::replace(&mut **child, Node::Empty);
            let mut children = empty_children();
            children[old_at as usize] = with_prefix(prefix.slice(common + 1..), below);
            children[new_at as usize] = Node::Leaf(path.slice(common + 1..), value);
            *node = with_prefix(path.slice(..common), Node::Branch(children));
        }
        Node::Branch(children) => {
            let i = path.first().ok_or(TrieError::Malformed)? as usize;
            return insert(&mut children[i], &path.slice(1..), value);
        }
    }
    Ok(())
}

fn remove(node: Node, path: &Nibbles) -> Result<Node, TrieError> {
    Ok(match node {
        Node::Empty => Node::Empty,
        Node::Hash(h) => return Err(TrieError::Incomplete(h)),
        Node::Leaf(key, value) => {
            if key == *path {
                Node::Empty
            } else {
                Node::Leaf(key, value)
            }
        }
        Node::Extension(prefix, child) => {
            if !path.starts_with(&prefix) {
                return Ok(Node::Extension(prefix, child));
            }
            let child = remove(*child, &path.slice(prefix.len()..))?;
            with_prefix(prefix, child)
        }
        Node::Branch(mut children) => {
            let i = path.first().ok_or(TrieError::Malformed)? as usize;
            let child = core::mem::replace(&mut children[i], Node::Empty);
            children[i] = remove(child, &path.slice(1..))?;
            let mut left = children
                .iter()
                .enumerate()
                .filter(|(_, c)| !matches!(c, Node::Empty));
            match (left.next(), left.next()) {
                (None, _) => Node::Empty,
                (Some(_), Some(_)) => Node::Branch(children),
                // A branch with one child is not canonical: fold it into the
                // child, which must therefore be open.
                (Some((j, _)), None) => {
                    let only = core::mem::replace(&mut children[j], Node::Empty);
                    if let Node::Hash(h) = only {
                        return Err(TrieError::Incomplete(h));
                    }
                    let mut nibble = Nibbles::new();
                    nibble.push(j as u8);
                    with_prefix(nibble, only)
                }
            }
        }
    })
}

/// Puts `prefix` in front of `node`, merging paths so the result is canonical.
fn with_prefix(prefix: Nibbles, node: Node) -> Node {
    if prefix.is_empty() {
        return node;
    }
    match node {
        Node::Empty => Node::Empty,
        Node::Leaf(key, value) => Node::Leaf(prefix.join(&key), value),
        Node::Extension(key, child) => Node::Extension(prefix.join(&key), child),
        branch_or_hash => Node::Extension(prefix, Box::new(branch_or_hash)),
    }
}

fn empty_children() -> Box<[Node; 16]> {
    Box::new(core::array::from_fn(|_| Node::Empty))
}

/// Room left before a node's payload for its list header (three bytes
/// cover any payload under 64 KiB; a branch is at most 532 bytes).
const HEADER_ROOM: usize = 3;

/// Writes `node`'s RLP into `buf` (cleared first) and returns where in
/// `buf` it starts. Children are written straight into their parent's
/// payload, with one reused buffer per depth in `scratch`, instead of
/// through alloy-trie's node types, whose 33-byte child references were
/// copied several times per node (each copy a memcpy call in the zkVM).
fn encode_node(node: &Node, buf: &mut Vec<u8>, scratch: &mut Vec<Vec<u8>>, depth: usize) -> usize {
    buf.clear();
    buf.extend_from_slice(&[0; HEADER_ROOM]);
    match node {
        // Not reached (callers take these by reference); written as a
        // parent would hold them.
        Node::Empty | Node::Hash(_) => {
            encode_ref(node, buf, scratch, depth + 1);
            return HEADER_ROOM;
        }
        Node::Leaf(key, value) => {
            encode_path_leaf(key, true).as_slice().encode(buf);
            value.as_slice().encode(buf);
        }
        Node::Extension(key, child) => {
            encode_path_leaf(key, false).as_slice().encode(buf);
            encode_ref(child, buf, scratch, depth + 1);
        }
        Node::Branch(children) => {
            for child in children.iter() {
                encode_ref(child, buf, scratch, depth + 1);
            }
            // A branch's value: always empty for fixed-length keys.
            buf.push(EMPTY_STRING_CODE);
        }
    }
    let header = Header {
        list: true,
        payload_length: buf.len() - HEADER_ROOM,
    };
    let start = HEADER_ROOM - header.length();
    let mut slot: &mut [u8] = &mut buf[start..HEADER_ROOM];
    header.encode(&mut slot);
    start
}

/// Appends what a parent holds for `node`: nothing-string for an empty
/// child, the node itself when its RLP is under 32 bytes, else the RLP
/// string of its keccak hash.
fn encode_ref(node: &Node, out: &mut Vec<u8>, scratch: &mut Vec<Vec<u8>>, depth: usize) {
    match node {
        Node::Empty => out.push(EMPTY_STRING_CODE),
        Node::Hash(h) => {
            out.push(EMPTY_STRING_CODE + 32);
            out.extend_from_slice(h.as_slice());
        }
        _ => {
            if scratch.len() <= depth {
                scratch.resize_with(depth + 1, Vec::new);
            }
            let mut buf = core::mem::take(&mut scratch[depth]);
            let start = encode_node(node, &mut buf, scratch, depth);
            let rlp = &buf[start..];
            if rlp.len() < 32 {
                out.extend_from_slice(rlp);
            } else {
                out.push(EMPTY_STRING_CODE + 32);
                out.extend_from_slice(keccak256(rlp).as_slice());
            }
            scratch[depth] = buf;
        }
    }
}

#[cfg(test)]
mod tests {
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
}
