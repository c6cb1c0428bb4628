//! An incremental Merkle-Patricia trie: the derive stage's state root in time
//! proportional to what a block changed, not to the size of the state.
//!
//! Recomputing a root from all leaves (alloy-trie's `HashBuilder`) hashes
//! every node of the trie. With 50,000 token holders that is over 100,000
//! keccaks for the token's storage and as many for the accounts, per block,
//! whatever the block touched. Here each node keeps what its parent holds
//! for it (its RLP when shorter than 32 bytes, else the RLP string of its
//! hash) until something below it changes, so a block rehashes only the
//! paths to the leaves it changed.
//!
//! Host only. The prover's trie (`state_transition::mpt`) is the zkVM's and
//! opens only what a witness holds; this one holds every leaf.

use alloy_primitives::{keccak256, B256};
use alloy_rlp::{Encodable, Header, EMPTY_STRING_CODE};
use alloy_trie::{nodes::encode_path_leaf, Nibbles, EMPTY_ROOT_HASH};

/// What a parent holds for a child: at most 33 bytes (a 32-byte hash's RLP
/// string), or the child's own RLP when that is shorter than 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Reference {
    len: u8,
    bytes: [u8; 33],
}

impl Reference {
    fn of_rlp(rlp: &[u8]) -> Self {
        let mut bytes = [0u8; 33];
        if rlp.len() < 32 {
            bytes[..rlp.len()].copy_from_slice(rlp);
            Self {
                len: rlp.len() as u8,
                bytes,
            }
        } else {
            bytes[0] = EMPTY_STRING_CODE + 32;
            bytes[1..].copy_from_slice(keccak256(rlp).as_slice());
            Self { len: 33, bytes }
        }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A node and, once computed and until something below it changes, its
/// reference.
#[derive(Debug, Clone, Default)]
enum Node {
    #[default]
    Empty,
    Leaf(Nibbles, Vec<u8>, Option<Reference>),
    Extension(Nibbles, Box<Node>, Option<Reference>),
    Branch(Box<[Node; 16]>, Option<Reference>),
}

/// Nodes by hash, as [`HashedTrie::root_into`] hands them out.
pub(crate) type NewNodes = Vec<(B256, Vec<u8>)>;

/// Reusable encoding buffers (one per depth) and where new nodes go.
struct Scratch<'a> {
    bufs: Vec<Vec<u8>>,
    sink: Option<&'a mut NewNodes>,
}

/// A trie over 32-byte (hashed) keys holding every leaf.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashedTrie {
    root: Node,
    leaves: usize,
}

impl HashedTrie {
    /// Number of leaves.
    pub(crate) fn len(&self) -> usize {
        self.leaves
    }

    /// Stores `value` under `key`; an empty value removes the key.
    pub(crate) fn set(&mut self, key: &B256, value: Vec<u8>) {
        let path = Nibbles::unpack(key);
        if value.is_empty() {
            let root = core::mem::take(&mut self.root);
            let (root, removed) = remove(root, &path);
            self.root = root;
            self.leaves -= usize::from(removed);
        } else if insert(&mut self.root, &path, value) {
            self.leaves += 1;
        }
    }

    /// The root hash. Rehashes only nodes changed since the last call.
    pub(crate) fn root(&mut self) -> B256 {
        self.root_with(None)
    }

    /// [`Self::root`], adding to `sink` every node it (re)hashed, by hash:
    /// the nodes a store needs to walk this version of the trie, given the
    /// nodes of the versions before it. The first call gives every node.
    pub(crate) fn root_into(&mut self, sink: &mut NewNodes) -> B256 {
        self.root_with(Some(sink))
    }

    fn root_with(&mut self, sink: Option<&mut NewNodes>) -> B256 {
        let mut scratch = Scratch {
            bufs: Vec::new(),
            sink,
        };
        match &mut self.root {
            Node::Empty => EMPTY_ROOT_HASH,
            node => {
                // The root is hashed even when its RLP is short.
                let mut buf = Vec::with_capacity(600);
                let start = encode_node(node, &mut buf, &mut scratch, 0);
                let hash = keccak256(&buf[start..]);
                if let Some(sink) = scratch.sink {
                    sink.push((hash, buf[start..].to_vec()));
                }
                hash
            }
        }
    }
}

impl HashedTrie {
    /// The root hash as of the last [`Self::root`], read without rehashing.
    pub(crate) fn cached_root(&self) -> B256 {
        match &self.root {
            Node::Empty => EMPTY_ROOT_HASH,
            node => keccak256(node_rlp(node)),
        }
    }

    /// The EIP-1186 proof of `key`: the RLP of every node on its path from
    /// the root, down to its leaf or to where the path leaves the trie (a
    /// proof of absence). Nodes embedded in their parent (RLP under 32
    /// bytes) are not listed, as geth does. Call after [`Self::root`]: the
    /// references it keeps are what the parents hold.
    pub(crate) fn proof(&self, key: &B256) -> Vec<Vec<u8>> {
        let path = Nibbles::unpack(key);
        let mut out = Vec::new();
        let mut node = &self.root;
        let mut at = 0;
        // The root is listed even when short: its hash is the state root.
        let mut listed = true;
        loop {
            if matches!(node, Node::Empty) {
                break;
            }
            if listed {
                out.push(node_rlp(node));
            }
            let next = match node {
                Node::Empty | Node::Leaf(..) => None,
                Node::Extension(prefix, child, _) => {
                    let rest = path.slice(at..);
                    rest.starts_with(prefix).then(|| {
                        at += prefix.len();
                        &**child
                    })
                }
                Node::Branch(children, _) => (at < path.len()).then(|| {
                    let child = &children[path.get_unchecked(at) as usize];
                    at += 1;
                    child
                }),
            };
            let Some(child) = next else { break };
            listed = reference_of(child).len as usize == 33;
            node = child;
        }
        out
    }
}

/// A node's RLP without touching its cache (children's kept references are
/// used where present).
fn node_rlp(node: &Node) -> Vec<u8> {
    let mut payload = Vec::with_capacity(600);
    match node {
        Node::Empty => return vec![EMPTY_STRING_CODE],
        Node::Leaf(key, value, _) => {
            encode_path_leaf(key, true).as_slice().encode(&mut payload);
            value.as_slice().encode(&mut payload);
        }
        Node::Extension(key, child, _) => {
            encode_path_leaf(key, false).as_slice().encode(&mut payload);
            payload.extend_from_slice(reference_of(child).as_slice());
        }
        Node::Branch(children, _) => {
            for child in children.iter() {
                match child {
                    Node::Empty => payload.push(EMPTY_STRING_CODE),
                    c => payload.extend_from_slice(reference_of(c).as_slice()),
                }
            }
            payload.push(EMPTY_STRING_CODE);
        }
    }
    let mut out = Vec::with_capacity(payload.len() + 3);
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(&payload);
    out
}

/// What a parent holds for `node`: the kept reference, or one computed now.
fn reference_of(node: &Node) -> Reference {
    match node {
        Node::Leaf(_, _, Some(r)) | Node::Extension(_, _, Some(r)) | Node::Branch(_, Some(r)) => *r,
        other => Reference::of_rlp(&node_rlp(other)),
    }
}

fn empty_children() -> Box<[Node; 16]> {
    Box::new(core::array::from_fn(|_| Node::Empty))
}

/// Inserts in place, forgetting the reference of every node on the way
/// down; returns whether a new key was added.
fn insert(node: &mut Node, path: &Nibbles, value: Vec<u8>) -> bool {
    match node {
        Node::Empty => {
            *node = Node::Leaf(*path, value, None);
            true
        }
        Node::Leaf(key, old, cache) => {
            if *key == *path {
                *old = value;
                *cache = None;
                return false;
            }
            let common = key.common_prefix_length(path);
            // Keys are all 64 nibbles: two different ones differ before the end.
            let (old_at, new_at) = (key.get_unchecked(common), path.get_unchecked(common));
            let mut children = empty_children();
            children[old_at as usize] =
                Node::Leaf(key.slice(common + 1..), core::mem::take(old), None);
            children[new_at as usize] = Node::Leaf(path.slice(common + 1..), value, None);
            *node = with_prefix(path.slice(..common), Node::Branch(children, None));
            true
        }
        Node::Extension(prefix, child, cache) => {
            *cache = None;
            let common = prefix.common_prefix_length(path);
            if common == prefix.len() {
                return insert(child, &path.slice(common..), value);
            }
            let (old_at, new_at) = (prefix.get_unchecked(common), path.get_unchecked(common));
            let below = core::mem::take(&mut **child);
            let mut children = empty_children();
            children[old_at as usize] = with_prefix(prefix.slice(common + 1..), below);
            children[new_at as usize] = Node::Leaf(path.slice(common + 1..), value, None);
            *node = with_prefix(path.slice(..common), Node::Branch(children, None));
            true
        }
        Node::Branch(children, cache) => {
            *cache = None;
            let i = path.get_unchecked(0) as usize;
            insert(&mut children[i], &path.slice(1..), value)
        }
    }
}

/// Removes `path`; returns the new node and whether a key was removed.
fn remove(node: Node, path: &Nibbles) -> (Node, bool) {
    match node {
        Node::Empty => (Node::Empty, false),
        Node::Leaf(key, value, cache) => {
            if key == *path {
                (Node::Empty, true)
            } else {
                (Node::Leaf(key, value, cache), false)
            }
        }
        Node::Extension(prefix, child, cache) => {
            if !path.starts_with(&prefix) {
                return (Node::Extension(prefix, child, cache), false);
            }
            let (child, removed) = remove(*child, &path.slice(prefix.len()..));
            if !removed {
                return (Node::Extension(prefix, Box::new(child), cache), false);
            }
            (with_prefix(prefix, child), true)
        }
        Node::Branch(mut children, cache) => {
            let i = path.get_unchecked(0) as usize;
            let (child, removed) = remove(core::mem::take(&mut children[i]), &path.slice(1..));
            children[i] = child;
            if !removed {
                return (Node::Branch(children, cache), false);
            }
            let mut left = children
                .iter()
                .enumerate()
                .filter(|(_, c)| !matches!(c, Node::Empty));
            let node = match (left.next(), left.next()) {
                (None, _) => Node::Empty,
                (Some(_), Some(_)) => Node::Branch(children, None),
                // A branch with one child is not canonical: fold it in.
                (Some((j, _)), None) => {
                    let only = core::mem::take(&mut children[j]);
                    let mut nibble = Nibbles::new();
                    nibble.push(j as u8);
                    with_prefix(nibble, only)
                }
            };
            (node, true)
        }
    }
}

/// Puts `prefix` in front of `node`, merging paths so the result is canonical.
fn with_prefix(prefix: Nibbles, node: Node) -> Node {
    if prefix.is_empty() {
        return node;
    }
    match node {
        Node::Empty => Node::Empty,
        Node::Leaf(key, value, _) => Node::Leaf(prefix.join(&key), value, None),
        Node::Extension(key, child, _) => Node::Extension(prefix.join(&key), child, None),
        branch => Node::Extension(prefix, Box::new(branch), None),
    }
}

/// Room before a node's payload for its list header (a branch's payload is
/// at most 16 × 33 + 1 bytes, under 64 KiB: three bytes suffice).
const HEADER_ROOM: usize = 3;

/// Writes `node`'s RLP into `buf` (cleared first); returns where it starts.
/// The same layout as `state_transition::mpt`'s encoder, which is not shared:
/// that one is compiled into the zkVM program, whose id changes with it.
fn encode_node(
    node: &mut Node,
    buf: &mut Vec<u8>,
    scratch: &mut Scratch<'_>,
    depth: usize,
) -> usize {
    buf.clear();
    buf.extend_from_slice(&[0; HEADER_ROOM]);
    match node {
        Node::Empty => {
            buf.push(EMPTY_STRING_CODE);
            return HEADER_ROOM;
        }
        Node::Leaf(key, value, _) => {
            encode_path_leaf(key, true).as_slice().encode(buf);
            value.as_slice().encode(buf);
        }
        Node::Extension(key, child, _) => {
            encode_path_leaf(key, false).as_slice().encode(buf);
            append_reference(child, buf, scratch, depth + 1);
        }
        Node::Branch(children, _) => {
            for child in children.iter_mut() {
                append_reference(child, buf, scratch, depth + 1);
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

/// Appends what a parent holds for `node`, computing and keeping it if the
/// node changed since it was last asked.
fn append_reference(node: &mut Node, out: &mut Vec<u8>, scratch: &mut Scratch<'_>, depth: usize) {
    let cached = match node {
        Node::Empty => {
            out.push(EMPTY_STRING_CODE);
            return;
        }
        Node::Leaf(_, _, c) | Node::Extension(_, _, c) | Node::Branch(_, c) => *c,
    };
    if let Some(r) = cached {
        out.extend_from_slice(r.as_slice());
        return;
    }
    if scratch.bufs.len() <= depth {
        scratch.bufs.resize_with(depth + 1, Vec::new);
    }
    let mut buf = core::mem::take(&mut scratch.bufs[depth]);
    let start = encode_node(node, &mut buf, scratch, depth);
    let r = Reference::of_rlp(&buf[start..]);
    if let (Some(sink), 33) = (scratch.sink.as_deref_mut(), r.len) {
        sink.push((B256::from_slice(&r.bytes[1..]), buf[start..].to_vec()));
    }
    scratch.bufs[depth] = buf;
    out.extend_from_slice(r.as_slice());
    if let Node::Leaf(_, _, c) | Node::Extension(_, _, c) | Node::Branch(_, c) = node {
        *c = Some(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::collections::BTreeMap;

    fn reference_root(map: &BTreeMap<B256, Vec<u8>>) -> B256 {
        let mut hb = alloy_trie::HashBuilder::default();
        for (k, v) in map {
            hb.add_leaf(Nibbles::unpack(k), v);
        }
        hb.root()
    }

    #[test]
    fn roots_match_a_full_rebuild_through_inserts_updates_and_removals() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut trie = HashedTrie::default();
        let mut map = BTreeMap::new();
        assert_eq!(trie.root(), EMPTY_ROOT_HASH);
        // Keys sharing long prefixes too, so extensions form and fold.
        let keys: Vec<B256> = (0..400u64)
            .map(|i| {
                if i % 5 == 0 {
                    let mut k = B256::repeat_byte(0x11);
                    k.0[31] = i as u8;
                    k.0[30] = (i >> 8) as u8;
                    k
                } else {
                    keccak256(i.to_be_bytes())
                }
            })
            .collect();
        for round in 0..60 {
            for _ in 0..rng.random_range(1..40) {
                let k = keys[rng.random_range(0..keys.len())];
                if rng.random_bool(0.3) {
                    map.remove(&k);
                    trie.set(&k, Vec::new());
                } else {
                    // Short values keep some nodes inline (under 32 bytes).
                    let v = alloy_rlp::encode(U256::from(
                        rng.random_range(1..u64::MAX) >> (round % 60),
                    ));
                    map.insert(k, v.clone());
                    trie.set(&k, v);
                }
            }
            assert_eq!(trie.root(), reference_root(&map), "round {round}");
            assert_eq!(trie.len(), map.len());
        }
        for k in keys {
            map.remove(&k);
            trie.set(&k, Vec::new());
        }
        assert_eq!(trie.root(), EMPTY_ROOT_HASH);
        assert_eq!(trie.len(), 0);
    }

    #[test]
    fn proofs_of_present_and_absent_keys_verify_against_the_root() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut trie = HashedTrie::default();
        let mut map = BTreeMap::new();
        for i in 0..300u64 {
            let k = keccak256(i.to_be_bytes());
            // Small values: some leaves are embedded in their parents.
            let v = alloy_rlp::encode(U256::from(rng.random_range(1..1_000u64)));
            map.insert(k, v.clone());
            trie.set(&k, v);
        }
        let root = trie.root();
        for i in 0..320u64 {
            let k = keccak256(i.to_be_bytes());
            let proof: Vec<alloy_primitives::Bytes> =
                trie.proof(&k).into_iter().map(Into::into).collect();
            let want = map.get(&k).cloned();
            alloy_trie::proof::verify_proof(root, Nibbles::unpack(k), want.clone(), &proof)
                .unwrap_or_else(|e| panic!("key {i}: {e}"));
            // The same proof does not prove another value.
            let wrong = Some(alloy_rlp::encode(U256::from(5_000u64)));
            assert!(
                alloy_trie::proof::verify_proof(root, Nibbles::unpack(k), wrong, &proof).is_err()
            );
        }
        let mut single = HashedTrie::default();
        let k = B256::repeat_byte(9);
        single.set(&k, vec![0x01]);
        let root = single.root();
        let proof: Vec<alloy_primitives::Bytes> =
            single.proof(&k).into_iter().map(Into::into).collect();
        alloy_trie::proof::verify_proof(root, Nibbles::unpack(k), Some(vec![0x01]), &proof)
            .unwrap();
        assert!(HashedTrie::default().proof(&k).is_empty());
    }

    #[test]
    fn a_single_leaf_and_removing_absent_keys() {
        let mut trie = HashedTrie::default();
        let k = B256::repeat_byte(3);
        trie.set(&k, vec![0x01]);
        let mut map = BTreeMap::new();
        map.insert(k, vec![0x01]);
        assert_eq!(trie.root(), reference_root(&map));
        trie.set(&B256::repeat_byte(4), Vec::new());
        assert_eq!(trie.len(), 1);
        assert_eq!(trie.root(), reference_root(&map));
    }
}
