//! An append-only Merkle tree in the style of RFC 6962 / RFC 9162: leaf and
//! node hashes are domain-separated, the tree of `n` leaves splits at the
//! largest power of two below `n`, and proofs use the RFCs' algorithms so any
//! Certificate-Transparency-style verifier can check them.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The right edge of a tree: the roots of its perfect subtrees, largest
/// (leftmost) first, one per set bit of the size. Enough to append leaves
/// and compute the root without the leaves themselves, which is what lets
/// the writer append in O(log n) and a pruned log stay verifiable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds from stored form; `None` when the node count does not match
    /// the size.
    pub fn from_parts(size: u64, bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(32) || bytes.len() / 32 != size.count_ones() as usize {
            return None;
        }
        let nodes = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("chunks of 32"))
            .collect();
        Some(Self { size, nodes })
    }

    /// Stored form of the nodes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.concat()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots with their leaf ranges, left to right.
    pub fn subtrees(&self) -> impl Iterator<Item = (u64, u64, &Hash)> {
        let mut start = 0u64;
        let size = self.size;
        let widths = (0..64)
            .rev()
            .map(|b| 1u64 << b)
            .filter(move |w| size & w != 0);
        self.nodes.iter().zip(widths).map(move |(h, width)| {
            let range = (start, start + width, h);
            start += width;
            range
        })
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.nodes.pop().expect("one node per set bit");
            h = node_hash(&left, &h);
            size >>= 1;
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Why a proof could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or size lies outside the tree.
    #[error("{0}")]
    OutOfRange(String),
    /// The proof needs leaves that retention pruned away.
    #[error("the proof needs events pruned before {0}")]
    Pruned(u64),
}

/// Leaf hashes of a log whose first `pruned` leaves were dropped, kept
/// verifiable by the frontier at the prune point.
#[derive(Debug, Clone)]
pub struct Leaves {
    checkpoint: Frontier,
    leaves: Vec<Hash>,
}

impl Leaves {
    /// All leaves from index 0.
    pub fn full(leaves: Vec<Hash>) -> Self {
        Self {
            checkpoint: Frontier::new(),
            leaves,
        }
    }

    /// Leaves from `checkpoint.size()` on.
    pub fn after(checkpoint: Frontier, leaves: Vec<Hash>) -> Self {
        Self { checkpoint, leaves }
    }

    /// Tree size.
    pub fn size(&self) -> u64 {
        self.checkpoint.size + self.leaves.len() as u64
    }

    /// `MTH(D[lo..hi])`.
    pub fn subtree(&self, lo: u64, hi: u64) -> Result<Hash, ProofError> {
        let pruned = self.checkpoint.size;
        if hi > self.size() || lo >= hi {
            return Err(ProofError::OutOfRange(format!("range {lo}..{hi}")));
        }
        if hi <= pruned {
            // A left sibling inside the pruned prefix is always one of the
            // checkpoint's perfect subtrees.
            return self
                .checkpoint
                .subtrees()
                .find(|(a, b, _)| *a == lo && *b == hi)
                .map(|(_, _, h)| *h)
                .ok_or(ProofError::Pruned(pruned));
        }
        if hi - lo == 1 {
            return Ok(self.leaves[(lo - pruned) as usize]);
        }
        let k = split(hi - lo);
        Ok(node_hash(
            &self.subtree(lo, lo + k)?,
            &self.subtree(lo + k, hi)?,
        ))
    }

    /// Root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size == 0 {
            return Ok(empty_root());
        }
        self.subtree(0, size)
    }

    /// RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of
    /// `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size || size > self.size() {
            return Err(ProofError::OutOfRange(format!(
                "event {index} is not in a tree of {size}"
            )));
        }
        if index < self.checkpoint.size {
            return Err(ProofError::Pruned(self.checkpoint.size));
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof)?;
        Ok(proof)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Result<(), ProofError> {
        if hi - lo == 1 {
            return Ok(());
        }
        let k = split(hi - lo);
        if m < lo + k {
            self.path(m, lo, lo + k, out)?;
            out.push(self.subtree(lo + k, hi)?);
        } else {
            self.path(m, lo + k, hi, out)?;
            out.push(self.subtree(lo, lo + k)?);
        }
        Ok(())
    }

    /// RFC 9162 §2.1.4.1 consistency proof between the trees of `old` and
    /// `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, ProofError> {
        if old > new || new > self.size() {
            return Err(ProofError::OutOfRange(format!(
                "no consistency proof from {old} to {new}"
            )));
        }
        let mut proof = Vec::new();
        if old == 0 || old == new {
            return Ok(proof);
        }
        self.subproof(old, 0, new, true, &mut proof)?;
        Ok(proof)
    }

    fn subproof(
        &self,
        m: u64,
        lo: u64,
        hi: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), ProofError> {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(self.subtree(lo, hi)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, complete, out)?;
            out.push(self.subtree(lo + k, hi)?);
        } else {
            self.subproof(m - k, lo + k, hi, false, out)?;
            out.push(self.subtree(lo, lo + k)?);
        }
        Ok(())
    }
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.2: does `proof` place `leaf` at `index` under `root`?
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: is the tree of `new` leaves (`new_root`) an extension
/// of the tree of `old` leaves (`old_root`)?
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// The RFC's recursive definition, written the slow obvious way.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn frontier_root_matches_the_definition() {
        let all = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, l) in all.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), mth(&all[..=i]), "size {}", i + 1);
            let back = Frontier::from_parts(f.size(), &f.to_bytes()).unwrap();
            assert_eq!(back, f);
        }
        assert!(Frontier::from_parts(3, &[0u8; 32]).is_none());
    }

    #[test]
    fn inclusion_proofs_verify_and_reject_tampering() {
        let all = leaves(33);
        let tree = Leaves::full(all.clone());
        for n in 1..=33u64 {
            let root = mth(&all[..n as usize]);
            for m in 0..n {
                let p = tree.inclusion_proof(m, n).unwrap();
                assert!(verify_inclusion(m, n, &all[m as usize], &p, &root));
                let other = all[((m + 1) % 33) as usize];
                assert!(!verify_inclusion(m, n, &other, &p, &root), "{m}/{n}");
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(m, n, &all[m as usize], &bad, &root));
                }
            }
        }
        assert!(tree.inclusion_proof(5, 5).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_reject_forks() {
        let all = leaves(33);
        let tree = Leaves::full(all.clone());
        for n in 1..=33u64 {
            let new_root = mth(&all[..n as usize]);
            for m in 1..=n {
                let old_root = mth(&all[..m as usize]);
                let p = tree.consistency_proof(m, n).unwrap();
                assert!(
                    verify_consistency(m, n, &old_root, &new_root, &p),
                    "{m}->{n}"
                );
                if m < n {
                    let forked = leaf_hash(b"rewritten history");
                    assert!(!verify_consistency(m, n, &forked, &new_root, &p));
                    assert!(!verify_consistency(m, n, &old_root, &forked, &p));
                }
            }
        }
    }

    #[test]
    fn a_pruned_prefix_still_proves_later_events() {
        let all = leaves(45);
        let full = Leaves::full(all.clone());
        for pruned in 0..45u64 {
            let mut f = Frontier::new();
            all[..pruned as usize].iter().for_each(|l| f.push(*l));
            let tree = Leaves::after(f, all[pruned as usize..].to_vec());
            assert_eq!(tree.root(45).unwrap(), full.root(45).unwrap());
            for m in pruned..45 {
                assert_eq!(
                    tree.inclusion_proof(m, 45).unwrap(),
                    full.inclusion_proof(m, 45).unwrap()
                );
            }
            if pruned > 0 {
                assert_eq!(
                    tree.inclusion_proof(pruned - 1, 45),
                    Err(ProofError::Pruned(pruned))
                );
            }
        }
    }
}
