//! The egress guard: the one payload type that may leave the appliance.
//!
//! A [`Commitment`] is built only from a batch's settled outputs (chain id,
//! batch number, three commitments) and the digest of its proof. Every
//! transaction the bridge sends is the encoding of one `Commitment`, and
//! nothing else reaches the settlement client's send path, so no address,
//! amount, calldata, transaction hash, block number, audit size or time of
//! the private chain can be settled by mistake.

use crate::contract::PrividiumSettlement;
use alloy_primitives::{keccak256, Bytes, B256};
use alloy_sol_types::SolCall;
use state_transition::{BatchOutputs, SettledOutputs};

/// What one settlement transaction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitment {
    outputs: SettledOutputs,
    proof_digest: B256,
}

impl Commitment {
    /// The commitment for `outputs` proven by the proof file `proof`.
    /// Only the settled form of `outputs` is kept.
    pub fn new(outputs: &BatchOutputs, proof: &[u8]) -> Self {
        Self {
            outputs: outputs.settled(),
            proof_digest: keccak256(proof),
        }
    }

    /// What is settled.
    pub fn outputs(&self) -> &SettledOutputs {
        &self.outputs
    }

    /// keccak256 of the proof file.
    pub fn proof_digest(&self) -> B256 {
        self.proof_digest
    }

    /// The `commitBatch` calldata: the 160-byte settled outputs and the
    /// proof digest.
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
    fn calldata_is_the_selector_settled_outputs_and_proof_digest_only() {
        let outputs = BatchOutputs {
            chain_id: 7,
            batch_number: 1,
            first_block: 1234,
            last_block: 5678,
            audit_size: 4321,
            new_state_root: B256::repeat_byte(2),
            last_block_hash: B256::repeat_byte(3),
            ..Default::default()
        };
        let c = Commitment::new(&outputs, b"proof");
        let data = c.calldata();
        // selector + digest + offset + length + 160 bytes
        assert_eq!(data.len(), 4 + 32 * 3 + 160);
        let call = PrividiumSettlement::commitBatchCall::abi_decode(&data).unwrap();
        assert_eq!(call.outputs.as_ref(), outputs.settled().encode().as_slice());
        assert_eq!(call.proofDigest, keccak256(b"proof"));
        let words: Vec<&[u8]> = data[4..].chunks(32).collect();
        for private in [
            B256::from(alloy_primitives::U256::from(1234)),
            B256::from(alloy_primitives::U256::from(5678)),
            B256::from(alloy_primitives::U256::from(4321)),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        ] {
            assert!(
                !words.contains(&private.as_slice()),
                "{private} is in the calldata"
            );
        }
    }
}
