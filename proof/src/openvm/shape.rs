//! A bounded walk over an aggregated proof's encoding, run before OpenVM
//! decodes it.
//!
//! OpenVM's decoder (stark-backend codec version 3) trusts counts whose
//! loop bodies read no input: a zero-degree sumcheck repeated 2^32 times, a
//! zero-width row repeated `2^k_whir` times with `k_whir` set by the sender,
//! a Merkle depth that underflows. A proof file of a few hundred bytes
//! could make it allocate without bound or abort, and neither
//! `catch_unwind` nor a size limit helps. This walk follows the same layout
//! reading only lengths, and refuses an encoding whose loops would run more
//! than [`MAX_STEPS`] times in all, that ends early or late, or that carries
//! deferral proofs (the batch program makes no deferred calls). An honest
//! proof takes about a hundred thousand steps.
//!
//! The layout mirrors `openvm_stark_backend::proof` and
//! `openvm_verify_stark_host::VmStarkProof` at the pinned versions; a unit
//! test has OpenVM decode what the walk accepts.

/// `CODEC_VERSION` of openvm-stark-backend 2.0.1.
const CODEC_VERSION: u32 = 3;
/// BabyBear element, little-endian u32.
const F: usize = 4;
/// Degree-4 extension of BabyBear.
const EF: usize = 4 * F;
/// Poseidon2 digest: 8 BabyBear elements.
const DIGEST: usize = 8 * F;
/// Loop iterations allowed in all: generous for honest proofs, small
/// enough that the empty vectors an adversary can make stay in megabytes.
pub(crate) const MAX_STEPS: u64 = 1 << 20;
/// WHIR folds `2^k_whir` rows per query; real configurations use single
/// digits.
const MAX_K_WHIR: usize = 16;

/// Checks that `bytes` is a `VmStarkProof` encoding OpenVM can decode in
/// bounded time and memory; `Err` says what is wrong.
pub(crate) fn check(bytes: &[u8]) -> Result<(), String> {
    let mut s = Walk {
        rest: bytes,
        steps: 0,
    };
    s.proof()?;
    // user_pvs_proof: Merkle path, the public values, their commitment.
    s.vec(DIGEST)?;
    s.vec(F)?;
    s.skip(DIGEST)?;
    if s.skip(1)?[0] != 0 {
        return Err("carries deferral proofs, which this program never makes".into());
    }
    if !s.rest.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(())
}

struct Walk<'a> {
    rest: &'a [u8],
    steps: u64,
}

fn product(factors: &[usize]) -> Result<usize, String> {
    factors
        .iter()
        .try_fold(1usize, |acc, f| acc.checked_mul(*f))
        .ok_or_else(|| "counts overflow".to_string())
}

impl<'a> Walk<'a> {
    fn skip(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn count(&mut self) -> Result<usize, String> {
        let raw = self.skip(4)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    }

    /// Charges `n` loop iterations to the budget.
    fn step(&mut self, n: usize) -> Result<(), String> {
        self.steps = self.steps.saturating_add(n as u64);
        if self.steps > MAX_STEPS {
            return Err(format!(
                "its counts ask for more than {MAX_STEPS} decoding steps"
            ));
        }
        Ok(())
    }

    /// `n` items of `size` bytes each.
    fn items(&mut self, n: usize, size: usize) -> Result<(), String> {
        self.step(n)?;
        self.skip(product(&[n, size])?)?;
        Ok(())
    }

    /// A length-prefixed vector of `size`-byte items.
    fn vec(&mut self, size: usize) -> Result<usize, String> {
        let n = self.count()?;
        self.items(n, size)?;
        Ok(n)
    }

    /// A length-prefixed vector of such vectors (`Vec<Vec<_>>`).
    fn vecs(&mut self, size: usize) -> Result<(), String> {
        let n = self.count()?;
        self.step(n)?;
        for _ in 0..n {
            self.vec(size)?;
        }
        Ok(())
    }

    fn proof(&mut self) -> Result<(), String> {
        let raw = self.skip(4)?;
        if u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) != CODEC_VERSION {
            return Err("unknown proof codec version".into());
        }
        self.skip(DIGEST)?;
        // Trace data per AIR, present where the bitmap's bit is set.
        let airs = self.count()?;
        self.step(airs)?;
        let bitmap = self.skip(airs.div_ceil(8))?;
        for air in 0..airs {
            if bitmap[air / 8] & (1 << (air % 8)) != 0 {
                self.count()?; // log height
                self.vec(DIGEST)?;
            }
        }
        self.vecs(F)?; // public values per AIR
        self.gkr()?;
        self.batch_constraint()?;
        self.stacking()?;
        self.whir()
    }

    fn gkr(&mut self) -> Result<(), String> {
        self.skip(F + EF)?;
        let layers = self.vec(4 * EF)?;
        for round in 1..layers {
            self.items(round, 3 * EF)?;
        }
        Ok(())
    }

    fn batch_constraint(&mut self) -> Result<(), String> {
        let airs = self.vec(EF)?;
        self.items(airs, EF)?;
        self.vec(EF)?;
        let rounds = self.count()?;
        if rounds > 0 {
            let degree = self.count()?;
            self.step(rounds)?;
            self.items(product(&[rounds, degree])?, EF)?;
        }
        self.step(airs)?;
        for _ in 0..airs {
            self.vecs(EF)?; // column openings
        }
        Ok(())
    }

    fn stacking(&mut self) -> Result<(), String> {
        self.vec(EF)?;
        self.vec(2 * EF)?;
        self.vecs(EF) // stacking openings
    }

    fn whir(&mut self) -> Result<(), String> {
        self.skip(F)?;
        let sumcheck_rounds = self.vec(2 * EF)?;
        let rounds = self.vec(DIGEST)? + 1;
        if sumcheck_rounds % rounds != 0 {
            return Err("WHIR sumcheck rounds are not a multiple of its rounds".into());
        }
        let k_whir = sumcheck_rounds / rounds;
        if k_whir > MAX_K_WHIR {
            return Err(format!("WHIR folding factor {k_whir} is out of range"));
        }
        let fold = 1usize << k_whir;
        self.items(rounds - 1, EF)?;
        self.items(sumcheck_rounds, F)?;
        self.items(rounds, F)?;
        let commits = self.count()?;
        if commits == 0 {
            return Err("no WHIR commitments".into());
        }
        let queries = self.count()?;
        let depth = if queries > 0 { self.count()? } else { 0 };
        let mut widths = Vec::new();
        if queries > 0 {
            self.step(commits)?;
            for _ in 0..commits {
                widths.push(self.count()?);
            }
        } else {
            self.step(commits)?;
        }
        for width in widths {
            self.step(product(&[queries, fold])?)?;
            self.items(product(&[queries, fold, width])?, F)?;
        }
        self.step(product(&[commits, queries])?)?;
        self.items(product(&[commits, queries, depth])?, DIGEST)?;
        let mut round_queries = Vec::new();
        self.step(rounds - 1)?;
        for _ in 1..rounds {
            let n = self.count()?;
            self.step(n)?;
            self.items(product(&[n, fold])?, EF)?;
            round_queries.push(n);
        }
        let mut depth = self.count()?;
        for n in round_queries {
            self.step(n)?;
            self.items(product(&[n, depth])?, DIGEST)?;
            depth = depth
                .checked_sub(1)
                .ok_or("WHIR Merkle depth runs out before its rounds do")?;
        }
        self.vec(EF)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvm_stark_sdk::openvm_stark_backend::codec::Decode;
    use openvm_verify_stark_host::VmStarkProof;

    /// The smallest encoding: every count zero except one WHIR commitment.
    fn minimal() -> Vec<u8> {
        let u = |n: u32| n.to_le_bytes().to_vec();
        let zeros = |n: usize| vec![0u8; n];
        [
            u(CODEC_VERSION),
            zeros(DIGEST),
            u(0), // airs
            u(0), // public value sets
            // GKR: pow witness, q0 claim, no layers
            zeros(F + EF),
            u(0),
            // batch constraint: no airs, no coefficients, no rounds
            u(0),
            u(0),
            u(0),
            // stacking
            u(0),
            u(0),
            u(0),
            // WHIR: pow witness, no sumcheck rounds, no codeword commits,
            // one query-phase pow witness, one commit, no queries
            zeros(F),
            u(0),
            u(0),
            zeros(F),
            u(1),
            u(0),
            u(0), // codeword Merkle depth
            u(0), // final polynomial
            // user public values: no path, no values, a commitment
            u(0),
            u(0),
            zeros(DIGEST),
            vec![0], // no deferral proofs
        ]
        .concat()
    }

    #[test]
    fn accepts_what_openvm_decodes() {
        let bytes = minimal();
        check(&bytes).unwrap();
        VmStarkProof::decode_from_bytes(&bytes).expect("OpenVM decodes the same layout");
    }

    #[test]
    fn refuses_counts_that_cost_no_input() {
        let base = minimal();
        // Batch constraint: 2^32 - 1 sumcheck rounds of degree zero.
        let at = 4 + DIGEST + 8 + F + EF + 4 + 8;
        let mut bytes = base[..at].to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&base[at + 4..]);
        let err = check(&bytes).unwrap_err();
        assert!(err.contains("decoding steps"), "{err}");

        // WHIR: one commit, many zero-width queries folded 2^16 times.
        let mut bytes = base.clone();
        let whir = 4 + DIGEST + 8 + (F + EF + 4) + 12 + 12;
        // 16 sumcheck rounds over one round: k_whir = 16.
        bytes.splice(
            whir + F..whir + F + 4,
            [16u32.to_le_bytes().to_vec(), vec![0; 16 * 2 * EF]].concat(),
        );
        let folding = whir + F + 4 + 16 * 2 * EF + 4;
        bytes.splice(folding..folding, vec![0; 16 * F]);
        let queries = folding + 16 * F + F + 4;
        bytes.splice(
            queries..queries + 4,
            [
                u32::MAX.to_le_bytes(),
                0u32.to_le_bytes(),
                0u32.to_le_bytes(),
            ]
            .concat(),
        );
        let err = check(&bytes).unwrap_err();
        assert!(err.contains("decoding steps"), "{err}");

        // A folding factor that would shift past the word.
        let mut bytes = base.clone();
        bytes.splice(
            whir + F..whir + F + 4,
            [64u32.to_le_bytes().to_vec(), vec![0; 64 * 2 * EF]].concat(),
        );
        let err = check(&bytes).unwrap_err();
        assert!(err.contains("folding factor"), "{err}");
    }

    #[test]
    fn refuses_bad_ends_and_deferrals() {
        let base = minimal();
        let mut longer = base.clone();
        longer.push(0);
        assert_eq!(check(&longer).unwrap_err(), "trailing bytes");
        assert_eq!(check(&base[..base.len() - 1]).unwrap_err(), "truncated");
        let mut deferred = base.clone();
        *deferred.last_mut().unwrap() = 1;
        assert!(check(&deferred).unwrap_err().contains("deferral"));
        let mut version = base;
        version[0] = 9;
        assert!(check(&version).unwrap_err().contains("codec version"));
    }
}
