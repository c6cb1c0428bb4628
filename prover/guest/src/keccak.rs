//! keccak256 for the whole batch program: alloy's `native-keccak` feature
//! (trie hashing, transaction and signing hashes, revm's KECCAK256) calls
//! the `native_keccak256` symbol defined here.
//!
//! Defined here instead of taken from `openvm-keccak256`, whose version
//! hashes through a shared hasher: it copies any input that is not
//! word-aligned or a whole number of words (most RLP is neither) into a
//! freshly allocated buffer, and the state beside it, and back, and then
//! clears all 200 bytes of the state for the next caller. Here the state
//! lives on the stack, starts cleared, and only unaligned input is copied,
//! once (`keccak/sponge.rs`).

#[path = "keccak/sponge.rs"]
mod sponge;

use sponge::{Permutation, State};

/// OpenVM's XORIN and KECCAKF instructions.
struct OpenVm;

impl Permutation for OpenVm {
    fn xorin(state: &mut State, data: &[u8]) {
        // SAFETY: the state holds 200 bytes and `data` fits in its first
        // RATE; both are word-aligned and whole words (the sponge's
        // contract), so OpenVM takes them as they are.
        unsafe {
            openvm_keccak256_guest::native_xorin(state.0.as_mut_ptr(), data.as_ptr(), data.len())
        }
    }

    fn keccakf(state: &mut State) {
        // SAFETY: 200 word-aligned bytes.
        unsafe { openvm_keccak256_guest::native_keccakf(state.0.as_mut_ptr()) }
    }
}

/// # Safety
///
/// `input` is valid for `len` bytes and `output` for 32 writes (alloy's
/// `keccak256` passes a slice and a 32-byte array).
#[no_mangle]
pub unsafe extern "C" fn native_keccak256(input: *const u8, len: usize, output: *mut u8) {
    // SAFETY: the caller's contract above.
    let (input, output) = unsafe {
        (
            core::slice::from_raw_parts(input, len),
            &mut *output.cast::<[u8; 32]>(),
        )
    };
    sponge::keccak256::<OpenVm>(input, output);
}
