//! A partial Merkle-Patricia trie built from proof nodes.
//!
//! The prover's witness carries only the trie nodes on the paths a batch
//! touches. Every node is looked up by its keccak hash, starting from a
//! trusted root, so whatever this trie reveals is authentic; a path that leads
//! into a subtree the witness did not open is an error
//! ([`TrieError::Incomplete`]), never a guess. Updates rehash only the opened
//! part: untouched subtrees stay as their hashes.

use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};
use alloy_primitives::{keccak256, Bytes, B256};
use alloy_rlp::EMPTY_STRING_CODE;
use alloy_trie::{
    nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode, TrieNode},
    Nibbles, TrieMask, EMPTY_ROOT_HASH,
};

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
#[derive(Debug, Clone, Default)]
pub struct NodePool(BTreeMap<B256, Bytes>);

impl NodePool {
    /// Indexes RLP-encoded trie nodes by keccak hash.
    pub fn new(nodes: impl IntoIterator<Item = Bytes>) -> Self {
        Self(nodes.into_iter().map(|n| (keccak256(&n), n)).collect())
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
        Ok(Self {
            root: resolve_hash(root, pool)?,
        })
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
        let root = core::mem::replace(&mut self.root, Node::Empty);
        self.root = if value.is_empty() {
            remove(root, &path)?
        } else {
            insert(root, &path, value)?
        };
        Ok(())
    }

    /// The root hash of the trie as it stands.
    pub fn root(&self) -> B256 {
        if let Node::Hash(h) = self.root {
            return h;
        }
        let mut buf = Vec::new();
        let rlp = encode(&self.root, &mut buf);
        match rlp.as_hash() {
            Some(hash) => hash,
            None => keccak256(&buf),
        }
    }
}

fn resolve_hash(hash: B256, pool: &NodePool) -> Result<Node, TrieError> {
    match pool.0.get(&hash) {
        Some(raw) => decode(raw, hash, pool),
        None => Ok(Node::Hash(hash)),
    }
}

fn decode(raw: &[u8], hash: B256, pool: &NodePool) -> Result<Node, TrieError> {
    let node = alloy_rlp::Decodable::decode(&mut &raw[..]).map_err(|_| TrieError::BadNode(hash))?;
    Ok(match node {
        TrieNode::EmptyRoot => Node::Empty,
        TrieNode::Leaf(leaf) => Node::Leaf(leaf.key, leaf.value),
        TrieNode::Extension(ext) => {
            Node::Extension(ext.key, Box::new(resolve_ref(&ext.child, hash, pool)?))
        }
        TrieNode::Branch(branch) => {
            let mut children: Box<[Node; 16]> = Box::new(core::array::from_fn(|_| Node::Empty));
            let mut stack = branch.stack.iter();
            for (i, child) in children.iter_mut().enumerate() {
                if branch.state_mask.is_bit_set(i as u8) {
                    let reference = stack.next().ok_or(TrieError::BadNode(hash))?;
                    *child = resolve_ref(reference, hash, pool)?;
                }
            }
            Node::Branch(children)
        }
    })
}

/// A child reference is either a hash or, under 32 bytes, the node inline.
fn resolve_ref(reference: &RlpNode, parent: B256, pool: &NodePool) -> Result<Node, TrieError> {
    match reference.as_hash() {
        Some(hash) => resolve_hash(hash, pool),
        None => decode(reference, parent, pool),
    }
}

fn insert(node: Node, path: &Nibbles, value: Vec<u8>) -> Result<Node, TrieError> {
    Ok(match node {
        Node::Empty => Node::Leaf(*path, value),
        Node::Hash(h) => return Err(TrieError::Incomplete(h)),
        Node::Leaf(key, old) => {
            if key == *path {
                return Ok(Node::Leaf(key, value));
            }
            let common = key.common_prefix_length(path);
            let (Some(old_at), Some(new_at)) = (key.get(common), path.get(common)) else {
                return Err(TrieError::Malformed);
            };
            let mut children = empty_children();
            children[old_at as usize] = Node::Leaf(key.slice(common + 1..), old);
            children[new_at as usize] = Node::Leaf(path.slice(common + 1..), value);
            with_prefix(path.slice(..common), Node::Branch(children))
        }
        Node::Extension(prefix, child) => {
            let common = prefix.common_prefix_length(path);
            if common == prefix.len() {
                let child = insert(*child, &path.slice(common..), value)?;
                return Ok(Node::Extension(prefix, Box::new(child)));
            }
            let (Some(old_at), Some(new_at)) = (prefix.get(common), path.get(common)) else {
                return Err(TrieError::Malformed);
            };
            let mut children = empty_children();
            children[old_at as usize] = with_prefix(prefix.slice(common + 1..), *child);
            children[new_at as usize] = Node::Leaf(path.slice(common + 1..), value);
            with_prefix(path.slice(..common), Node::Branch(children))
        }
        Node::Branch(mut children) => {
            let i = path.first().ok_or(TrieError::Malformed)? as usize;
            let child = core::mem::replace(&mut children[i], Node::Empty);
            children[i] = insert(child, &path.slice(1..), value)?;
            Node::Branch(children)
        }
    })
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

/// RLP-encodes `node` into `buf` (cleared first) and returns its reference.
fn encode(node: &Node, buf: &mut Vec<u8>) -> RlpNode {
    buf.clear();
    match node {
        Node::Empty => {
            buf.push(EMPTY_STRING_CODE);
            RlpNode::from_rlp(buf)
        }
        Node::Hash(h) => RlpNode::word_rlp(h),
        Node::Leaf(key, value) => LeafNodeRef::new(key, value).rlp(buf),
        Node::Extension(key, child) => {
            let child = encode(child, buf);
            buf.clear();
            ExtensionNodeRef::new(key, &child).rlp(buf)
        }
        Node::Branch(children) => {
            let mut stack = Vec::with_capacity(16);
            let mut mask = TrieMask::default();
            for (i, child) in children.iter().enumerate() {
                if !matches!(child, Node::Empty) {
                    stack.push(encode(child, buf));
                    mask.set_bit(i as u8);
                }
            }
            buf.clear();
            BranchNodeRef::new(&stack, mask).rlp(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
