//! The disclosure predicate inside the zkVM: reads a `PredicateInput`
//! (Merkle proofs and a balance, private), checks the proofs and the
//! comparison with `disclosure::predicate::evaluate`, and reveals only the
//! keccak256 digest of the claim. A false statement or a bad proof panics,
//! and a panicking guest has no proof.
#![no_std]
#![no_main]

extern crate alloc;

// Linked for their side effects: the `native_keccak256` symbol alloy calls,
// and the secp256k1 point type the machine's init names.
#[allow(unused_imports, clippy::single_component_path_imports)]
use openvm_keccak256;
#[allow(unused_imports)]
use k256::Secp256k1Point;

use alloy_rlp::Decodable;
use disclosure::predicate::{evaluate, PredicateInput};

openvm::entry!(main);
openvm::init!();

fn main() {
    let input = openvm::io::read_vec();
    let input = match PredicateInput::decode(&mut input.as_slice()) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    };
    let claim = match evaluate(&input) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    openvm::io::reveal_bytes32(claim.digest().0);
}
