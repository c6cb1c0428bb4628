//! The batch program's keccak256 (`guest/src/keccak/sponge.rs`), run on the
//! host with a software keccak-f in place of OpenVM's instructions: every
//! length across the block boundaries, from every alignment, gives alloy's
//! hash, and the instruction is only ever handed word-aligned whole words
//! (what OpenVM's XORIN takes without copying).

#[path = "../guest/src/keccak/sponge.rs"]
#[allow(dead_code)]
mod sponge;

use sponge::{Permutation, State, RATE};

struct Software;

impl Permutation for Software {
    fn xorin(state: &mut State, data: &[u8]) {
        assert!(
            (data.as_ptr() as usize).is_multiple_of(4),
            "handed unaligned input"
        );
        assert!(data.len().is_multiple_of(4), "handed {} bytes", data.len());
        assert!(data.len() <= RATE);
        for (s, b) in state.0.iter_mut().zip(data) {
            *s ^= b;
        }
    }

    fn keccakf(state: &mut State) {
        let mut lanes = [0u64; 25];
        for (lane, bytes) in lanes.iter_mut().zip(state.0.chunks_exact(8)) {
            *lane = u64::from_le_bytes(bytes.try_into().unwrap());
        }
        keccak::f1600(&mut lanes);
        for (lane, bytes) in lanes.iter().zip(state.0.chunks_exact_mut(8)) {
            bytes.copy_from_slice(&lane.to_le_bytes());
        }
    }
}

#[test]
fn every_length_from_every_alignment_hashes_as_alloy_does() {
    // Lengths past three blocks, offsets 0-3 into a word-aligned buffer.
    let mut buf = vec![0u32; 160];
    // SAFETY: a u32 buffer viewed as its bytes.
    let bytes: &mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), buf.len() * 4) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    for offset in 0..4 {
        for len in 0..=(3 * RATE + 20) {
            let input = &bytes[offset..offset + len];
            let mut ours = [0u8; 32];
            sponge::keccak256::<Software>(input, &mut ours);
            assert_eq!(
                ours,
                alloy_primitives::keccak256(input).0,
                "{len} bytes at offset {offset}"
            );
        }
    }
}
