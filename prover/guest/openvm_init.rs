// Written by hand in the form cargo-openvm generates (see prover/src/openvm):
// the secp256k1 coordinate and scalar moduli and the curve, in the same order
// as the host's VM config. Changing one side means changing both.
openvm_algebra_guest::moduli_macros::moduli_init! { "115792089237316195423570985008687907853269984665640564039457584007908834671663", "115792089237316195423570985008687907852837564279074904382605163141518161494337" }
openvm_ecc_guest::sw_macros::sw_init! { "Secp256k1Point" }
