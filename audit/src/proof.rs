//! Inclusion and consistency proofs, bundled with the signed heads they
//! refer to so a regulator can check them with the public key alone.

use crate::{
    event::StoredEvent,
    head::TreeHead,
    merkle::{self, Hash, Leaves},
    store::AuditDb,
    AuditError,
};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// "Event `event_id` is leaf `event_id` of the tree `head` signs."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The event (its leaf index).
    pub event_id: u64,
    /// Leaf hash, hex.
    pub leaf_hash: String,
    /// Sibling hashes from leaf to root, hex.
    pub path: Vec<String>,
    /// The signed head the proof leads to.
    pub head: TreeHead,
}

/// "The tree `new` signs extends the tree `old` signs."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The earlier head.
    pub old: TreeHead,
    /// The later head.
    pub new: TreeHead,
    /// RFC 9162 consistency path, hex.
    pub path: Vec<String>,
}

async fn tree(db: &AuditDb, size: u64) -> Result<Leaves, AuditError> {
    let state = db.state().await?;
    let start = state.checkpoint.size();
    let leaves = db.leaf_hashes(start, size.max(start)).await?;
    Ok(Leaves::after(state.checkpoint, leaves))
}

async fn head(db: &AuditDb, size: Option<u64>) -> Result<TreeHead, AuditError> {
    match size {
        None => db.latest_head().await?,
        Some(s) => db.head_at(s).await?,
    }
    .ok_or_else(|| {
        AuditError::NotFound(match size {
            None => "the audit log is empty".into(),
            Some(s) => format!("no signed tree head at size {s}"),
        })
    })
}

/// Proves event `id` is in the tree of the head at `size` (default latest).
pub async fn prove_inclusion(
    db: &AuditDb,
    id: u64,
    size: Option<u64>,
) -> Result<InclusionProof, AuditError> {
    let head = head(db, size).await?;
    if id >= head.tree_size {
        return Err(AuditError::NotFound(format!(
            "event {id} is not covered by the head at size {}",
            head.tree_size
        )));
    }
    let tree = tree(db, head.tree_size).await?;
    if tree.root(head.tree_size)? != head.root {
        return Err(AuditError::Corrupt(
            "stored events do not match the signed head; run `prividium audit verify`".into(),
        ));
    }
    let path = tree.inclusion_proof(id, head.tree_size)?;
    // The leaf is already loaded: a one-leaf subtree is the leaf itself.
    let leaf = tree.subtree(id, id + 1)?;
    Ok(InclusionProof {
        event_id: id,
        leaf_hash: hex::encode(leaf),
        path: path.iter().map(hex::encode).collect(),
        head,
    })
}

/// Proves the head at `new` extends the head at `old`.
pub async fn prove_consistency(
    db: &AuditDb,
    old: u64,
    new: Option<u64>,
) -> Result<ConsistencyProof, AuditError> {
    let new = head(db, new).await?;
    let old = head(db, Some(old)).await?;
    let tree = tree(db, new.tree_size).await?;
    let path = tree.consistency_proof(old.tree_size, new.tree_size)?;
    Ok(ConsistencyProof {
        old,
        new,
        path: path.iter().map(hex::encode).collect(),
    })
}

fn parse_hashes(hs: &[String]) -> Result<Vec<Hash>, String> {
    hs.iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("{h:?} is not a 32-byte hex hash"))
        })
        .collect()
}

impl InclusionProof {
    /// Checks the head's signature and the path; with `event`, also that the
    /// event's contents are what the leaf commits to.
    pub fn verify(&self, key: &VerifyingKey, event: Option<&StoredEvent>) -> Result<(), String> {
        if !self.head.verify(key) {
            return Err("the tree head is not signed by this key".into());
        }
        let leaf: Hash = parse_hashes(std::slice::from_ref(&self.leaf_hash))?[0];
        if let Some(e) = event {
            if e.id != self.event_id || e.leaf_hash() != leaf {
                return Err(format!("the event does not hash to leaf {}", self.event_id));
            }
        }
        let path = parse_hashes(&self.path)?;
        if merkle::verify_inclusion(
            self.event_id,
            self.head.tree_size,
            &leaf,
            &path,
            &self.head.root,
        ) {
            Ok(())
        } else {
            Err(format!(
                "event {} is not in the tree of {} events",
                self.event_id, self.head.tree_size
            ))
        }
    }
}

impl ConsistencyProof {
    /// Checks both signatures and the path.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        if !self.old.verify(key) || !self.new.verify(key) {
            return Err("a tree head is not signed by this key".into());
        }
        let path = parse_hashes(&self.path)?;
        if merkle::verify_consistency(
            self.old.tree_size,
            self.new.tree_size,
            &self.old.root,
            &self.new.root,
            &path,
        ) {
            Ok(())
        } else {
            Err(format!(
                "the log at {} does not extend the log at {}",
                self.new.tree_size, self.old.tree_size
            ))
        }
    }
}
