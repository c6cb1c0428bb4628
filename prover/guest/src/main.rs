//! The batch program inside the zkVM: reads a witness, runs
//! `state_transition::execute_batch` on it and reveals the keccak256 digest
//! of the public outputs. Any failure panics, and a panicking guest has no
//! proof.
#![no_std]
#![no_main]

extern crate alloc;

// Linked for its side effect: the secp256k1 point type the curve setup
// below names.
#[allow(unused_imports)]
use k256::Secp256k1Point;

mod keccak;
mod recover;

use state_transition::{execute_batch_with, BatchWitness};

openvm::entry!(main);
openvm::init!();

fn main() {
    let input = openvm::io::read_vec();
    let witness = match BatchWitness::decode(&input) {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let outputs = match execute_batch_with(&witness, |tx| recover::sender(tx).ok()) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    openvm::io::reveal_bytes32(outputs.digest().0);
}
