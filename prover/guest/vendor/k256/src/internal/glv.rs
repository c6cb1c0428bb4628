//! a·G + b·P through secp256k1's endomorphism (GLV), for signer recovery.
//!
//! Not part of OpenVM's fork: the batch program spends about a quarter of
//! an ether transfer's cycles recovering its signer, nearly all of it in
//! the two-point multiplication, which the fork does with 4-bit windows
//! over 256-bit scalars (252 doublings, up to 128 additions and two
//! 14-point tables built per signature). secp256k1 has an endomorphism
//! φ(x, y) = (β·x, y) = λ·(x, y), so each scalar splits into two halves
//! under 2^128 (k = k1 + λ·k2 mod n) and the sum becomes four products of
//! half the length: 124 doublings, up to 128 additions, one table built
//! (P's; φ(P)'s are β·x of it, and G's are constants).
//!
//! Sound for any representation of the scalars: each half is used as the
//! integer its bytes spell, with a sign, and the split only has to hold
//! modulo n (the modular chips guarantee that); a half whose bytes are not
//! under 2^128 sends the caller back to the generic path, so a wrong
//! rounding could cost cycles, never the result.

use super::{Secp256k1Coord, Secp256k1Point, Secp256k1Scalar};
use core::mem::MaybeUninit;
use openvm_algebra_guest::IntMod;
use openvm_ecc_guest::{weierstrass::WeierstrassPoint, CyclicGroup, Group};

mod tables {
    use super::{pt, Secp256k1Point};
    use hex_literal::hex;
    include!("glv_tables.rs");
}
use tables::*;

const fn pt(x: [u8; 32], y: [u8; 32]) -> Secp256k1Point {
    Secp256k1Point {
        x: Secp256k1Coord::from_const_bytes(x),
        y: Secp256k1Coord::from_const_bytes(y),
    }
}

/// Windows of 4 bits over a half of at most 128 bits.
const WINDOWS: usize = 32;

/// One half of a split scalar: its magnitude (little-endian) and sign.
struct Half {
    magnitude: [u8; 16],
    negative: bool,
}

impl Half {
    #[inline(always)]
    fn digit(&self, window: usize) -> usize {
        ((self.magnitude[window / 2] >> ((window % 2) * 4)) & 15) as usize
    }
}

/// `coeffs[0]·bases[0] + coeffs[1]·bases[1]` when `bases[0]` is the
/// generator or its negation; `None` when this path does not apply (the
/// caller then takes the generic one).
pub(super) fn lincomb_with_generator(
    coeffs: &[Secp256k1Scalar],
    bases: &[Secp256k1Point],
) -> Option<Secp256k1Point> {
    let [a, b] = coeffs else { return None };
    let [g, p] = bases else { return None };
    // P's table is built with the formulas for distinct, non-identity
    // points: on a curve of prime order, d·P ≠ ±P for 1 < d < 16.
    if <Secp256k1Point as Group>::is_identity(p) {
        return None;
    }
    let a = if *g == Secp256k1Point::GENERATOR {
        a.clone()
    } else if *g == Secp256k1Point::NEG_GENERATOR {
        -a
    } else {
        return None;
    };
    let (a1, a2) = split(&a)?;
    let (b1, b2) = split(b)?;
    Some(sum(&a1, &a2, &b1, &b2, p))
}

/// Straus over the four halves: one shared run of doublings.
fn sum(a1: &Half, a2: &Half, b1: &Half, b2: &Half, p: &Secp256k1Point) -> Secp256k1Point {
    <Secp256k1Point as WeierstrassPoint>::set_up_once();
    let g1 = if a1.negative { &TABLE_NEG_G } else { &TABLE_G };
    let g2 = if a2.negative {
        &TABLE_NEG_PHI_G
    } else {
        &TABLE_PHI_G
    };
    // Built where they stay: on this VM every 64-byte point moved is a
    // memcpy call, and copies were most of what the fork's tables cost.
    let mut p1 = MaybeUninit::<[Secp256k1Point; 15]>::uninit();
    let mut p2 = MaybeUninit::<[Secp256k1Point; 15]>::uninit();
    // Safety: every entry is written before the arrays are read, by
    // `multiples` and then `endomorphism`.
    let (p1, p2) = unsafe {
        multiples(p1.as_mut_ptr().cast(), p);
        endomorphism(p2.as_mut_ptr().cast(), p1.as_ptr().cast(), b2.negative);
        let p1 = &mut *p1.as_mut_ptr();
        if b1.negative {
            for q in p1.iter_mut() {
                q.y.neg_assign();
            }
        }
        (&*p1, &*p2.as_ptr())
    };
    let mut acc = Accumulator::new();
    for window in (0..WINDOWS).rev() {
        if window != WINDOWS - 1 {
            for _ in 0..4 {
                acc.double();
            }
        }
        for (half, table) in [(a1, g1), (a2, g2), (b1, p1), (b2, p2)] {
            let d = half.digit(window);
            if d != 0 {
                acc.add(&table[d - 1]);
            }
        }
    }
    acc.finish()
}

/// The running sum, with the identity tracked here rather than tested
/// (two equality instructions) before every doubling and addition.
struct Accumulator {
    point: Secp256k1Point,
    identity: bool,
}

impl Accumulator {
    fn new() -> Self {
        Self {
            point: <Secp256k1Point as Group>::IDENTITY,
            identity: true,
        }
    }

    #[inline(always)]
    fn double(&mut self) {
        if !self.identity {
            // Safety: set up by the caller; not the identity, and no point
            // of secp256k1 has y = 0 (its order is odd).
            unsafe { self.point.double_assign_nonidentity::<false>() }
        }
    }

    /// Adds a table entry, which is never the identity (a multiple d < 16
    /// of a point of prime order).
    #[inline(always)]
    fn add(&mut self, entry: &Secp256k1Point) {
        if self.identity {
            self.point = entry.clone();
            self.identity = false;
        // Safety (eq_impl): set up by the caller.
        } else if unsafe { self.point.x.eq_impl::<false>(&entry.x) } {
            // The same point or its negation: a doubling or the identity.
            if unsafe { self.point.y.eq_impl::<false>(&entry.y) } {
                unsafe { self.point.double_assign_nonidentity::<false>() }
            } else {
                self.identity = true;
            }
        } else {
            // Safety: set up by the caller; distinct x, neither identity.
            unsafe { self.point.add_ne_assign_nonidentity::<false>(entry) }
        }
    }

    fn finish(self) -> Secp256k1Point {
        if self.identity {
            <Secp256k1Point as Group>::IDENTITY
        } else {
            self.point
        }
    }
}

/// Writes d·P for d = 1..=15 to `out[0..15]`.
///
/// # Safety
/// `out` must be valid for 15 writes; set-up done; P not the identity (so,
/// the order being prime, 2P ≠ O and d·P ≠ ±P for the sums below).
unsafe fn multiples(out: *mut Secp256k1Point, p: &Secp256k1Point) {
    out.write(p.clone());
    double_into(out.add(1), p);
    for d in 2..15 {
        add_ne_into(out.add(d), &*out.add(d - 1), p);
    }
}

/// Writes φ(±table[i]) = (β·x, ±y) to `out[i]` for the 15 entries.
///
/// # Safety
/// `table` holds 15 initialised points; `out` is valid for 15 writes and
/// does not overlap it.
unsafe fn endomorphism(out: *mut Secp256k1Point, table: *const Secp256k1Point, negate: bool) {
    let beta = Secp256k1Coord::from_const_bytes(BETA);
    for i in 0..15 {
        let (from, to) = (&*table.add(i), out.add(i));
        from.x
            .mul_refs_impl(&beta, core::ptr::addr_of_mut!((*to).x));
        if negate {
            Secp256k1Coord::ZERO.sub_refs_impl(&from.y, core::ptr::addr_of_mut!((*to).y));
        } else {
            core::ptr::addr_of_mut!((*to).y).write(from.y.clone());
        }
    }
}

/// `out` ← p1 + p2 for distinct x, neither the identity; written in place
/// by the curve instruction on the VM.
#[inline(always)]
unsafe fn add_ne_into(out: *mut Secp256k1Point, p1: &Secp256k1Point, p2: &Secp256k1Point) {
    #[cfg(target_os = "zkvm")]
    super::sw_add_ne_extern_func_Secp256k1Point(
        out as usize,
        p1 as *const Secp256k1Point as usize,
        p2 as *const Secp256k1Point as usize,
    );
    #[cfg(not(target_os = "zkvm"))]
    out.write(p1.add_ne_nonidentity::<false>(p2));
}

/// `out` ← 2p for p not the identity.
#[inline(always)]
unsafe fn double_into(out: *mut Secp256k1Point, p: &Secp256k1Point) {
    #[cfg(target_os = "zkvm")]
    super::sw_double_extern_func_Secp256k1Point(out as usize, p as *const Secp256k1Point as usize);
    #[cfg(not(target_os = "zkvm"))]
    out.write(p.double_nonidentity::<false>());
}

/// k = k1 + λ·k2 (mod n) with both halves under 2^128 in magnitude
/// (libsecp256k1's method: c1, c2 are k·(−b1)/n and k·(−b2)/n rounded,
/// through the precomputed 2^384/n multiples g1, g2).
fn split(k: &Secp256k1Scalar) -> Option<(Half, Half)> {
    let words = le_words(k.as_le_bytes());
    let c1 = Secp256k1Scalar::from_le_bytes_unchecked(&mul_shift_384(&words, &G1));
    let c2 = Secp256k1Scalar::from_le_bytes_unchecked(&mul_shift_384(&words, &G2));
    let minus_b1 = Secp256k1Scalar::from_const_bytes(MINUS_B1);
    let minus_b2 = Secp256k1Scalar::from_const_bytes(MINUS_B2);
    let lambda = Secp256k1Scalar::from_const_bytes(LAMBDA);
    let k2 = &(&c1 * &minus_b1) + &(&c2 * &minus_b2);
    let k1 = k - &(&k2 * &lambda);
    Some((half(&k1)?, half(&k2)?))
}

/// The half as a signed integer under 2^128: its own bytes, or its
/// negation's with the sign flipped; `None` when neither fits.
fn half(x: &Secp256k1Scalar) -> Option<Half> {
    let fits = |bytes: &[u8]| bytes[16..].iter().all(|&b| b == 0);
    let take = |bytes: &[u8], negative| {
        let mut magnitude = [0u8; 16];
        magnitude.copy_from_slice(&bytes[..16]);
        Half {
            magnitude,
            negative,
        }
    };
    if fits(x.as_le_bytes()) {
        return Some(take(x.as_le_bytes(), false));
    }
    let negated = -x;
    fits(negated.as_le_bytes()).then(|| take(negated.as_le_bytes(), true))
}

fn le_words(bytes: &[u8]) -> [u32; 8] {
    core::array::from_fn(|i| {
        u32::from_le_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    })
}

/// About (k·g + 2^383) >> 384 for 256-bit k and g, as 32 little-endian
/// bytes (under 2^128). Only the 15 partial products at word 10 and above
/// are summed: the rest stay under 2^355, so they can move the result by
/// one only when the sum lies that close to a rounding boundary (about one
/// scalar in 2^28), and then the halves at most exceed 2^128 and the
/// caller takes the generic path. The split is exact modulo n whatever c
/// is; c only keeps the halves short.
fn mul_shift_384(k: &[u32; 8], g: &[u32; 8]) -> [u8; 32] {
    // Words 10 to 15 of the product.
    let mut high = [0u32; 6];
    for (i, &ki) in k.iter().enumerate().skip(3) {
        let mut carry = 0u64;
        for (j, &gj) in g.iter().enumerate().skip(10 - i) {
            let w = &mut high[i + j - 10];
            let t = ki as u64 * gj as u64 + *w as u64 + carry;
            *w = t as u32;
            carry = t >> 32;
        }
        high[i - 2] = carry as u32;
    }
    // Round: add bit 383 (the top bit of word 11) into word 12 upwards.
    let mut carry = (high[1] >> 31) as u64;
    let mut out = [0u8; 32];
    for (i, w) in high[2..].iter().enumerate() {
        let t = *w as u64 + carry;
        out[4 * i..4 * i + 4].copy_from_slice(&(t as u32).to_le_bytes());
        carry = t >> 32;
    }
    out
}

/// Run on the host (`cargo test --manifest-path prover/guest/Cargo.toml -p
/// k256`), where the fork's arithmetic is plain software: the fast path
/// must give exactly what the fork's own windowed multiplication gives.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secp256k1;
    use openvm_ecc_guest::weierstrass::CachedMulTable;

    fn generic(coeffs: &[Secp256k1Scalar], bases: &[Secp256k1Point]) -> Secp256k1Point {
        CachedMulTable::<Secp256k1>::new_with_prime_order(bases, 4).windowed_mul(coeffs)
    }

    /// Deterministic scalars under 2^255 (splitmix64); the top of the range
    /// is covered by the edge cases and by tools/glv_tables.py.
    fn scalar(seed: u64) -> Secp256k1Scalar {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_mut(8) {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes[31] &= 0x7f; // under n
        Secp256k1Scalar::from_le_bytes_unchecked(&bytes)
    }

    fn small(v: u32) -> Secp256k1Scalar {
        Secp256k1Scalar::from_u32(v)
    }

    #[test]
    fn agrees_with_the_generic_multiplication() {
        let g = Secp256k1Point::GENERATOR;
        let neg_g = Secp256k1Point::NEG_GENERATOR;
        for i in 0..48u64 {
            let p = generic(&[scalar(1_000 + i)], &[g.clone()]);
            let (a, b) = (scalar(2 * i), scalar(2 * i + 1));
            for base in [&g, &neg_g] {
                let bases = [base.clone(), p.clone()];
                let fast = lincomb_with_generator(&[a.clone(), b.clone()], &bases)
                    .expect("the generator path applies");
                assert_eq!(fast, generic(&[a.clone(), b.clone()], &bases), "case {i}");
            }
        }
    }

    #[test]
    fn edge_scalars_and_a_sum_that_cancels() {
        let g = Secp256k1Point::GENERATOR;
        let three_g = generic(&[small(3)], &[g.clone()]);
        let minus_one = -&small(1);
        let lambda = Secp256k1Scalar::from_const_bytes(LAMBDA);
        let cases = [
            (small(0), small(0)),
            (small(0), small(1)),
            (small(1), small(0)),
            (minus_one.clone(), minus_one.clone()),
            (lambda.clone(), -&lambda),
            // 3·G + (n − 1)·3G: the identity.
            (small(3), minus_one.clone()),
        ];
        for (a, b) in cases {
            let bases = [g.clone(), three_g.clone()];
            let fast = lincomb_with_generator(&[a.clone(), b.clone()], &bases).unwrap();
            assert_eq!(fast, generic(&[a, b], &bases));
        }
        let cancel =
            lincomb_with_generator(&[small(3), minus_one.clone()], &[g.clone(), three_g]).unwrap();
        assert!(<Secp256k1Point as Group>::is_identity(&cancel));
        // P = G: the running sum meets the very entry it adds (a doubling)
        // or its negation (the identity, then built up again).
        for (a, b) in [
            (small(1), small(1)),
            (small(17), small(17)),
            (small(1), minus_one.clone()),
            (small(0x1234_5678), -&small(0x1234_5677)),
        ] {
            let bases = [g.clone(), g.clone()];
            let fast = lincomb_with_generator(&[a.clone(), b.clone()], &bases).unwrap();
            assert_eq!(fast, generic(&[a, b], &bases));
        }
    }

    #[test]
    fn other_bases_and_the_identity_take_the_generic_path() {
        let g = Secp256k1Point::GENERATOR;
        let p = generic(&[small(5)], &[g.clone()]);
        let identity = <Secp256k1Point as Group>::IDENTITY;
        assert!(lincomb_with_generator(&[small(1), small(2)], &[p.clone(), g.clone()]).is_none());
        assert!(lincomb_with_generator(&[small(1), small(2)], &[g.clone(), identity]).is_none());
        assert!(lincomb_with_generator(&[small(1)], &[g]).is_none());
    }

    #[test]
    fn splits_recombine_and_stay_under_2_128() {
        let lambda = Secp256k1Scalar::from_const_bytes(LAMBDA);
        for i in 0..2_000u64 {
            let k = scalar(i);
            let (k1, k2) = split(&k).expect("both halves under 2^128");
            let value = |h: &Half| {
                let mut bytes = [0u8; 32];
                bytes[..16].copy_from_slice(&h.magnitude);
                let m = Secp256k1Scalar::from_le_bytes_unchecked(&bytes);
                if h.negative {
                    -&m
                } else {
                    m
                }
            };
            assert_eq!(&value(&k1) + &(&value(&k2) * &lambda), k, "scalar {i}");
        }
    }

    /// The truncated product rounds like the full one except within 2^355
    /// of a boundary: on these scalars it must agree exactly.
    #[test]
    fn the_truncated_product_rounds_like_the_full_one() {
        fn full(k: &[u32; 8], g: &[u32; 8]) -> [u8; 32] {
            let mut product = [0u32; 16];
            for i in 0..8 {
                let mut carry = 0u64;
                for j in 0..8 {
                    let t = k[i] as u64 * g[j] as u64 + product[i + j] as u64 + carry;
                    product[i + j] = t as u32;
                    carry = t >> 32;
                }
                product[i + 8] = carry as u32;
            }
            let mut carry = (product[11] >> 31) as u64;
            let mut out = [0u8; 32];
            for (i, w) in product[12..].iter().enumerate() {
                let t = *w as u64 + carry;
                out[4 * i..4 * i + 4].copy_from_slice(&(t as u32).to_le_bytes());
                carry = t >> 32;
            }
            out
        }
        for i in 0..2_000u64 {
            let k = le_words(scalar(i).as_le_bytes());
            for g in [&G1, &G2] {
                assert_eq!(mul_shift_384(&k, g), full(&k, g), "scalar {i}");
            }
        }
    }

    #[test]
    fn the_tables_hold_the_multiples_they_name() {
        let g = Secp256k1Point::GENERATOR;
        let lambda = Secp256k1Scalar::from_const_bytes(LAMBDA);
        for d in 1..=15u32 {
            let i = d as usize - 1;
            let dg = generic(&[small(d)], &[g.clone()]);
            assert_eq!(TABLE_G[i], dg);
            assert_eq!(TABLE_NEG_G[i], -&dg);
            let phi = generic(&[&small(d) * &lambda], &[g.clone()]);
            assert_eq!(TABLE_PHI_G[i], phi);
            assert_eq!(TABLE_NEG_PHI_G[i], -&phi);
        }
    }
}
