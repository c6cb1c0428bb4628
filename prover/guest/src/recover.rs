//! Signer recovery on OpenVM's secp256k1 instructions, called directly.
//!
//! alloy's `recover_signer` (its k256 path) takes the signature through
//! three representations before the curve sees it — 65 bytes, a RustCrypto
//! `Signature` (parsed with constant-time range checks, then checked and
//! normalised again), bytes once more for OpenVM's recovery — and encodes
//! the key as a SEC1 point to hash it. In the zkVM each of those copies is
//! a memcpy call: together they cost about as much as the curve arithmetic.
//! This path hands r and s to OpenVM's recovery once and hashes the key's
//! coordinates from where they lie.
//!
//! It accepts exactly what alloy's path accepts: s at most n/2 (EIP-2), r
//! and s in [1, n) (OpenVM's recovery checks both), a y parity of 0 or 1,
//! and a key that is not the point at infinity. OpenVM's field arithmetic
//! has no host implementation, so this is tested by running the program:
//! `prover/tests/zkvm.rs` gives it signatures alloy refuses, and every
//! zkVM run is checked against the native run (alloy's recovery).

use k256::{
    ecdsa::{RecoveryId, VerifyingKey},
    Secp256k1Coord,
};
use openvm_algebra_guest::IntMod;
use openvm_ecc_guest::weierstrass::WeierstrassPoint;
use state_transition::{
    alloy_consensus::{crypto::SECP256K1N_HALF, TxEnvelope},
    alloy_primitives::{keccak256, Address},
};

/// Why a signature does not recover (the batch program only needs to know
/// that it does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSignature;

/// The account that signed `tx`.
pub fn sender(tx: &TxEnvelope) -> Result<Address, BadSignature> {
    let sig = tx.signature();
    if sig.s() > SECP256K1N_HALF {
        return Err(BadSignature);
    }
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    rs[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let parity = RecoveryId::from_byte(sig.v() as u8).ok_or(BadSignature)?;
    let hash = tx.signature_hash();
    let key = VerifyingKey::recover_from_prehash_noverify(hash.as_slice(), &rs, parity)
        .map_err(|_| BadSignature)?;
    let point = key.as_affine();
    // The address hashes the key's x and y, big-endian; the coordinates are
    // kept little-endian.
    let mut xy = [0u8; 64];
    be_into(&mut xy[..32], point.x());
    be_into(&mut xy[32..], point.y());
    Ok(Address::from_slice(&keccak256(xy)[12..]))
}

fn be_into(out: &mut [u8], coord: &Secp256k1Coord) {
    for (dst, src) in out.iter_mut().zip(coord.as_le_bytes().iter().rev()) {
        *dst = *src;
    }
}
