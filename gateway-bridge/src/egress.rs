//! The egress guard: the one payload type that may leave the appliance.
//!
//! A [`Commitment`] is built only from a batch's public outputs (hashes,
//! counters, the chain id) and the digest of its proof. Every transaction
//! the bridge sends is the encoding of one `Commitment`, and nothing else
//! reaches the settlement client's send path, so no address, amount,
//! calldata or transaction hash of the private chain can be settled by
//! mistake.

use crate::contract::PrividiumSettlement;
use alloy_primitives::{keccak256, Bytes, B256};
use alloy_sol_types::SolCall;
use state_transition::BatchOutputs;

/// What one settlement transaction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment {
    outputs: BatchOutputs,
    proof_digest: B256,
}

impl Commitment {
    /// The commitment for `outputs` proven by the proof file `proof`.
    pub fn new(outputs: BatchOutputs, proof: &[u8]) -> Self {
        Self {
            outputs,
            proof_digest: keccak256(proof),
        }
    }

    /// The public outputs.
    pub fn outputs(&self) -> &BatchOutputs {
        &self.outputs
    }

    /// keccak256 of the proof file.
    pub fn proof_digest(&self) -> B256 {
        self.proof_digest
    }

    /// The `commitBatch` calldata: the 384-byte outputs and the proof digest.
    pub fn calldata(&self) -> Bytes {
        PrividiumSettlement::commitBatchCall {
            outputs: self.outputs.encode().into(),
            proofDigest: self.proof_digest,
        }
        .abi_encode()
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calldata_is_the_selector_outputs_and_proof_digest_only() {
        let outputs = BatchOutputs {
            chain_id: 7,
            batch_number: 1,
            first_block: 1,
            last_block: 4,
            ..Default::default()
        };
        let c = Commitment::new(outputs, b"proof");
        let data = c.calldata();
        // selector + digest + offset + length + 384 bytes
        assert_eq!(data.len(), 4 + 32 * 3 + 384);
        let call = PrividiumSettlement::commitBatchCall::abi_decode(&data).unwrap();
        assert_eq!(call.outputs.as_ref(), outputs.encode().as_slice());
        assert_eq!(call.proofDigest, keccak256(b"proof"));
    }
}
