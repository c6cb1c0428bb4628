//! Test peers for the bridge (see `peers`) and real batches of a small
//! private chain written as the prover writes them.
#![allow(dead_code, unreachable_pub, missing_docs)]

#[path = "../../../prover/tests/support/mod.rs"]
pub mod chain;
pub mod peers;

pub use peers::*;

use alloy_consensus::Transaction as _;
use alloy_primitives::{B256, U256};
use proof::{OutputsFile, ProofEnvelope};
use state_transition::{execute_batch, AuditHead, BatchOutputs};
use std::path::Path;

/// A private chain cut into batches of two blocks, each block with an ETH
/// transfer of a distinctive amount to a fresh address and a BankToken
/// transfer to it, written to `dir` as
/// the prover writes proven batches (with a stand-in proof: the contract
/// never reads proofs, and these tests are about settlement).
pub struct Batches {
    pub chain: chain::TestChain,
    prover: prover::ProverState,
    pub outputs: Vec<BatchOutputs>,
    pub secrets: Secrets,
    token: Option<alloy_primitives::Address>,
}

impl Batches {
    pub fn new() -> Self {
        let chain = chain::TestChain::new();
        let prover = chain.prover_state();
        Self {
            chain,
            prover,
            outputs: Vec::new(),
            secrets: Secrets::default(),
            token: None,
        }
    }

    /// The state commitment a new chain is registered with.
    pub fn genesis_commitment(&self) -> B256 {
        state_transition::state_commitment(self.chain.roots[0], self.chain.hashes[0])
    }

    /// Produces the next batch and returns its outputs.
    pub fn next(&mut self) -> BatchOutputs {
        let n = self.outputs.len() as u64 + 1;
        let mut blocks = Vec::new();
        for i in 0..2u64 {
            let to = alloy_primitives::Address::from_slice(
                &alloy_primitives::keccak256(format!("recipient {n}/{i}"))[12..],
            );
            let wei = 1_234_567_891_000 + n * 10 + i;
            let tx = self.chain.eth(0, to, wei);
            self.secrets.add_bytes("recipient", to.as_slice());
            self.secrets
                .add_bytes("sender", chain::TestChain::address(0).as_slice());
            self.secrets.add_bytes("tx hash", tx.tx_hash().as_slice());
            self.secrets.add_amount("amount", U256::from(wei));
            let mut txs = vec![tx];
            // Every batch also moves BankToken: calldata that must not leave.
            if self.token.is_none() {
                let (deploy, token) = self.chain.deploy_token(1, 1_000_000_000);
                self.token = Some(token);
                txs.push(deploy);
            }
            let token = self.token.unwrap_or_default();
            let units = 7_654_321 + n * 10 + i;
            let erc20 = self.chain.token_transfer(1, token, to, units);
            self.secrets.add_bytes("token", token.as_slice());
            self.secrets.add_bytes("calldata", erc20.input());
            self.secrets
                .add_bytes("tx hash", erc20.tx_hash().as_slice());
            self.secrets.add_amount("token amount", U256::from(units));
            txs.push(erc20);
            blocks.push(self.chain.produce(txs));
        }
        let audit = AuditHead {
            size: 10 * n,
            root: B256::repeat_byte(n as u8),
        };
        let chain = &self.chain;
        let witness = self
            .prover
            .witness_batch(&chain.spec, n, &blocks, audit, |b| chain.header(b))
            .unwrap();
        let out = execute_batch(&witness).unwrap();
        // Nothing of the batch but its settled commitments may leave:
        // roots, block hashes, the audit head and the block range are as
        // private as the transactions.
        for hidden in [
            out.prev_state_root,
            out.new_state_root,
            out.last_block_hash,
            out.batch_commitment,
            out.audit_root,
        ] {
            self.secrets.add_bytes("batch output", hidden.as_slice());
        }
        self.outputs.push(out);
        out
    }

    /// Writes batch `n` as `batch-n.proof` + `batch-n.json` under `dir`.
    pub fn write(&self, dir: &Path, n: u64) -> B256 {
        std::fs::create_dir_all(dir).unwrap();
        let outputs = self.outputs[n as usize - 1];
        let envelope = ProofEnvelope {
            backend: "settlement-test".into(),
            program_commit: b"test program".to_vec(),
            verifying_key: b"test key".to_vec(),
            proof: format!("stand-in proof of batch {n}").into_bytes(),
        };
        let program_id = envelope.claimed_program_id();
        let proof = envelope.encode();
        std::fs::write(dir.join(OutputsFile::proof_file_name(n)), &proof).unwrap();
        let file = OutputsFile::new(&outputs, program_id, &envelope.backend, None);
        std::fs::write(
            dir.join(OutputsFile::file_name(n)),
            serde_json::to_vec_pretty(&file).unwrap(),
        )
        .unwrap();
        program_id
    }

    pub fn program_id() -> B256 {
        ProofEnvelope::program_id("settlement-test", b"test program", b"test key")
    }
}
