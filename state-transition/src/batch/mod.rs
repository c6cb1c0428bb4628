//! The batch program: checks a witness, re-executes the batch and returns its
//! public outputs. The prover runs exactly this function inside the zkVM; the
//! host runs it natively to check a witness before proving it.

mod overlay;
mod trie_state;

pub use overlay::{AccountDelta, BatchOverlay, OverlayState};
pub use trie_state::TrieState;

use crate::{
    mpt::NodePool, witness::BatchWitness, BatchError, BatchOutputs, BlockContext, BlockExecutor,
    ParentBlock, TxRejection,
};
use alloc::{collections::BTreeMap, vec::Vec};
use alloy_consensus::{transaction::SignerRecoverable, TxEnvelope};
use alloy_primitives::{keccak256, Address, B256};

/// Runs the batch in `witness` and returns what its proof asserts.
pub fn execute_batch(witness: &BatchWitness) -> Result<BatchOutputs, BatchError> {
    execute_batch_with(witness, |tx| tx.recover_signer().ok())
}

/// [`execute_batch`] with signers recovered by `recover` (`None`: the
/// signature does not recover). The batch program brings its own, on the
/// zkVM's curve instructions without alloy's copies around them; it must
/// accept exactly the signatures alloy's `recover_signer` accepts.
pub fn execute_batch_with(
    witness: &BatchWitness,
    recover: impl Fn(&TxEnvelope) -> Option<Address>,
) -> Result<BatchOutputs, BatchError> {
    let chain = witness.chain.spec()?;
    if witness.blocks.is_empty() {
        return Err(BatchError::EmptyBatch);
    }
    let block_hashes = check_ancestry(witness)?;
    let parent_header = witness.ancestors.last().ok_or(BatchError::BrokenAncestry)?;
    let prev_block_hash = parent_header.hash_slow();
    let pool = NodePool::new(witness.nodes.iter().cloned());
    let codes: BTreeMap<B256, _> = witness
        .codes
        .iter()
        .map(|c| (keccak256(c), c.clone()))
        .collect();
    let base = TrieState::open(witness.prev_state_root, &pool, codes)?;
    let mut state = OverlayState::new(base, block_hashes);

    let mut parent = ParentBlock::of(parent_header, prev_block_hash);
    let first_block = parent.number + 1;
    let mut commitment = Vec::with_capacity(witness.blocks.len() * 32);
    for block in &witness.blocks {
        if block.timestamp < parent.timestamp {
            return Err(BatchError::TimeWentBack(parent.number + 1));
        }
        let ctx = BlockContext::child_of(&chain, &parent, block.timestamp, block.beneficiary);
        let number = ctx.number;
        let mut exec = BlockExecutor::new(&chain, ctx, &state);
        exec.reserve(block.transactions.len());
        for (index, tx) in block.transactions.iter().enumerate() {
            let sender = recover(tx).ok_or(BatchError::InvalidSignature {
                block: number,
                index,
            })?;
            exec.execute(tx.clone(), sender).map_err(|e| match e {
                TxRejection::State(e) => BatchError::Witness(alloc::format!("{e}")),
                other => BatchError::Rejected {
                    block: number,
                    index,
                    reason: alloc::format!("{other}"),
                },
            })?;
        }
        let outcome = exec.finish();
        state.apply(&outcome.diff, number, outcome.header.hash);
        commitment.extend_from_slice(outcome.header.hash.as_slice());
        parent = ParentBlock::of(&outcome.header.header, outcome.header.hash);
    }
    let (base, overlay) = state.into_parts();
    let new_state_root = base.commit(&overlay)?;
    Ok(BatchOutputs {
        chain_id: chain.chain_id,
        batch_number: witness.batch_number,
        first_block,
        last_block: parent.number,
        prev_state_root: witness.prev_state_root,
        new_state_root,
        prev_block_hash,
        last_block_hash: parent.hash,
        batch_commitment: keccak256(&commitment),
        config_hash: witness.chain.hash(),
        audit_size: witness.audit.size,
        audit_root: witness.audit.root,
    })
}

/// Hashes the ancestor headers, checks they chain, and returns their hashes
/// by number for BLOCKHASH.
fn check_ancestry(witness: &BatchWitness) -> Result<BTreeMap<u64, B256>, BatchError> {
    let mut hashes = BTreeMap::new();
    let mut previous: Option<(u64, B256)> = None;
    for header in &witness.ancestors {
        if let Some((number, hash)) = previous {
            if header.parent_hash != hash || header.number != number + 1 {
                return Err(BatchError::BrokenAncestry);
            }
        }
        let hash = header.hash_slow();
        hashes.insert(header.number, hash);
        previous = Some((header.number, hash));
    }
    if previous.is_none() {
        return Err(BatchError::BrokenAncestry);
    }
    Ok(hashes)
}
