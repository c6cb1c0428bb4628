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
mod tests;
