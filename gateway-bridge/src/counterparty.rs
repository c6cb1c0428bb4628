//! Counterparty verification from public data only: the proof file and the
//! commitment the settlement contract holds for it. Nothing is asked of the
//! appliance.

use crate::{client::SettledBatch, client::SettlementClient, BridgeError};
use alloy_primitives::keccak256;
use proof::verify_proof_digest;

/// A batch whose proof checked against its settled commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The private chain.
    pub chain_id: u64,
    /// The commitment the proof matched.
    pub batch: SettledBatch,
}

/// Checks `proof` (a `batch-N.proof` file) against the commitment the
/// contract holds for batch `batch_number`: the proof must be the one
/// committed (by digest), be made by the program the chain was registered
/// with at the time, and prove exactly the committed outputs digest.
pub async fn verify_settled<C: SettlementClient>(
    client: &C,
    proof: &[u8],
    batch_number: u64,
    chain_id: Option<u64>,
) -> Result<Verified, BridgeError> {
    let fail = |m: String| BridgeError::Verification(m);
    let digest = keccak256(proof);
    let (found_chain, found_batch) = client.find_proof(digest).await?.ok_or_else(|| {
        fail(format!(
            "no batch on the settlement contract was committed with this proof (digest {digest})"
        ))
    })?;
    if found_batch != batch_number || chain_id.is_some_and(|c| c != found_chain) {
        return Err(fail(format!(
            "this proof was committed for chain {found_chain} batch {found_batch}, not {}batch {batch_number}",
            chain_id.map(|c| format!("chain {c} ")).unwrap_or_default()
        )));
    }
    let settled = client
        .batch(found_chain, found_batch)
        .await?
        .ok_or_else(|| fail(format!("batch {found_batch} is not on the contract")))?;
    // Also refuses a proof from any program but the one the chain was
    // registered with when the batch was committed.
    verify_proof_digest(proof, settled.outputs_digest, settled.program_id)?;
    Ok(Verified {
        chain_id: found_chain,
        batch: settled,
    })
}
