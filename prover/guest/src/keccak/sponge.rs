//! Keccak-256's sponge over a given permutation: the batch program runs it
//! on OpenVM's keccak instructions, the host tests on a software one
//! (`prover/tests/guest_keccak.rs`, which includes this file).

use core::mem::MaybeUninit;

/// Bytes absorbed per permutation.
pub(crate) const RATE: usize = 136;

/// The 1600-bit state; word-aligned, as the zkVM's instructions need.
#[repr(C, align(4))]
pub(crate) struct State(pub(crate) [u8; 200]);

#[repr(C, align(4))]
struct Block([u8; RATE]);

/// Keccak-f[1600] and the absorption of input into the state.
pub(crate) trait Permutation {
    /// XORs `data` into the front of `state`. `data` is word-aligned and a
    /// whole number of words, at most [`RATE`] bytes.
    fn xorin(state: &mut State, data: &[u8]);
    /// Permutes `state`.
    fn keccakf(state: &mut State);
}

/// keccak256 of `input`, into `out`.
pub(crate) fn keccak256<P: Permutation>(mut input: &[u8], out: &mut [u8; 32]) {
    let mut state = State([0u8; 200]);
    let mut block = MaybeUninit::<Block>::uninit();
    while input.len() >= RATE {
        let (head, rest) = input.split_at(RATE);
        P::xorin(&mut state, aligned(head, &mut block));
        P::keccakf(&mut state);
        input = rest;
    }
    // The last, partial block: its whole words through the instruction,
    // the odd bytes and the pad10*1 padding by hand.
    let words = input.len() & !3;
    let (head, tail) = input.split_at(words);
    if words > 0 {
        P::xorin(&mut state, aligned(head, &mut block));
    }
    for (s, b) in state.0[words..].iter_mut().zip(tail) {
        *s ^= b;
    }
    state.0[input.len()] ^= 0x01;
    state.0[RATE - 1] ^= 0x80;
    P::keccakf(&mut state);
    out.copy_from_slice(&state.0[..32]);
}

/// `data` itself when word-aligned, else a copy of it in `block`.
fn aligned<'a>(data: &'a [u8], block: &'a mut MaybeUninit<Block>) -> &'a [u8] {
    if (data.as_ptr() as usize).is_multiple_of(4) {
        return data;
    }
    let dst = block.as_mut_ptr().cast::<u8>();
    // SAFETY: `data` is at most RATE bytes (both callers split it so), the
    // block holds RATE, and the bytes read back are the ones just written.
    unsafe {
        core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        core::slice::from_raw_parts(dst, data.len())
    }
}
