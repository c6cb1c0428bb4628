//! How many RISC-V cycles the batch program will take on a batch, estimated
//! from the native run, so the cutter can bound a batch's proving time
//! before any zkVM has seen it.
//!
//! Proving time grows linearly with cycles (segments of a fixed size are
//! proven one after another), and the program's cycles are close to linear
//! in three things the native run knows: transactions (signature recovery,
//! revm set-up, receipt and header hashing), gas (EVM execution) and witness
//! bytes (every trie node is decoded and hashed, and the touched paths are
//! hashed again for the new root). `cargo bench -p prover --features openvm
//! --bench cycles` fits the coefficients on real guest runs and prints each
//! run's estimate beside its measured count.

use state_transition::BatchWitness;

/// What a batch is made of, as far as its cycle count goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchShape {
    /// Transactions in the batch.
    pub transactions: u64,
    /// Gas the batch's blocks used.
    pub gas_used: u64,
    /// Encoded witness size.
    pub witness_bytes: u64,
}

impl BatchShape {
    /// The shape of `witness` (encoded as `witness_bytes`), whose blocks
    /// used `gas_used`.
    pub fn of(witness: &BatchWitness, witness_bytes: usize, gas_used: u64) -> Self {
        Self {
            transactions: witness
                .blocks
                .iter()
                .map(|b| b.transactions.len() as u64)
                .sum(),
            gas_used,
            witness_bytes: witness_bytes as u64,
        }
    }
}

/// Cycles = `fixed` + `per_transaction` × transactions + `per_gas` × gas +
/// `per_witness_byte` × witness bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CycleModel {
    /// An empty batch: reading the witness, checking the ancestors, the
    /// output hash.
    pub fixed: f64,
    /// Per transaction, beyond its gas and witness.
    pub per_transaction: f64,
    /// Per unit of gas used.
    pub per_gas: f64,
    /// Per byte of witness.
    pub per_witness_byte: f64,
}

impl Default for CycleModel {
    /// Fitted by `benches/cycles.rs` on the guest whose id is in
    /// `guest/PROGRAM_ID`, on the batches of 100 and 1,000 ETH transfers,
    /// ERC-20 transfers among 50,000 holders and oracle updates, and an
    /// empty batch: within 10.3% of each (the cutter's budget matters for
    /// large batches; small ones it overstates, by up to 38%). Refit it
    /// whenever the program changes.
    fn default() -> Self {
        Self {
            fixed: 51_933.0,
            per_transaction: 38_269.0,
            per_gas: 1.611,
            per_witness_byte: 46.45,
        }
    }
}

impl CycleModel {
    /// The estimated cycles of a batch of this shape.
    pub fn estimate(&self, shape: &BatchShape) -> u64 {
        let cycles = self.fixed
            + self.per_transaction * shape.transactions as f64
            + self.per_gas * shape.gas_used as f64
            + self.per_witness_byte * shape.witness_bytes as f64;
        cycles.max(0.0) as u64
    }

    /// The estimate before the witness exists (blocks waiting to be cut):
    /// without the witness term, so it never overstates; the cutter checks
    /// the full estimate once it has witnessed the batch.
    pub fn lower_bound(&self, transactions: u64, gas_used: u64) -> u64 {
        self.estimate(&BatchShape {
            transactions,
            gas_used,
            witness_bytes: 0,
        })
    }

    /// Least-squares fit of the four coefficients to measured runs
    /// (`(shape, cycles)`), minimising the relative error so a run of a
    /// million cycles counts as much as one of a hundred million; `None`
    /// when the runs do not determine them (fewer than four, or all alike).
    pub fn fit(runs: &[(BatchShape, u64)]) -> Option<Self> {
        // Each row divided by its cycles (weights 1/c), then the normal
        // equations AᵀA x = Aᵀb, solved by Gaussian elimination with partial
        // pivoting; columns are scaled to comparable sizes first so the 4x4
        // system stays well conditioned.
        let rows: Vec<([f64; 4], f64)> = runs
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(s, c)| {
                let c = *c as f64;
                (
                    [
                        1.0 / c,
                        s.transactions as f64 / c,
                        s.gas_used as f64 / c,
                        s.witness_bytes as f64 / c,
                    ],
                    1.0,
                )
            })
            .collect();
        if rows.len() < 4 {
            return None;
        }
        let mut scale = [0.0f64; 4];
        for (x, _) in &rows {
            for (s, v) in scale.iter_mut().zip(x) {
                *s = s.max(v.abs());
            }
        }
        if scale.contains(&0.0) {
            return None;
        }
        let mut m = [[0.0f64; 5]; 4];
        for (x, y) in &rows {
            let x: Vec<f64> = x.iter().zip(&scale).map(|(v, s)| v / s).collect();
            for (row, xi) in m.iter_mut().zip(&x) {
                for (cell, xj) in row.iter_mut().zip(&x) {
                    *cell += xi * xj;
                }
                row[4] += xi * y;
            }
        }
        for col in 0..4 {
            let pivot = (col..4).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
            if m[pivot][col].abs() < 1e-12 {
                return None;
            }
            m.swap(col, pivot);
            let p = m[col];
            for (r, row) in m.iter_mut().enumerate() {
                if r != col {
                    let f = row[col] / p[col];
                    for (cell, pv) in row.iter_mut().zip(p.iter()).skip(col) {
                        *cell -= f * pv;
                    }
                }
            }
        }
        let x: Vec<f64> = (0..4).map(|i| m[i][4] / m[i][i] / scale[i]).collect();
        Some(Self {
            fixed: x[0],
            per_transaction: x[1],
            per_gas: x[2],
            per_witness_byte: x[3],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(transactions: u64, gas_used: u64, witness_bytes: u64) -> BatchShape {
        BatchShape {
            transactions,
            gas_used,
            witness_bytes,
        }
    }

    #[test]
    fn the_fit_recovers_the_coefficients_of_exact_runs() {
        let truth = CycleModel {
            fixed: 100_000.0,
            per_transaction: 30_000.0,
            per_gas: 3.0,
            per_witness_byte: 12.0,
        };
        let shapes = [
            shape(0, 0, 2_000),
            shape(1, 21_000, 4_000),
            shape(100, 2_100_000, 250_000),
            shape(1_000, 21_000_000, 1_900_000),
            shape(100, 5_200_000, 700_000),
            shape(10, 300_000, 90_000),
        ];
        let runs: Vec<_> = shapes.iter().map(|s| (*s, truth.estimate(s))).collect();
        let fitted = CycleModel::fit(&runs).unwrap();
        for s in &shapes {
            let (want, got) = (truth.estimate(s) as f64, fitted.estimate(s) as f64);
            assert!(
                (want - got).abs() <= want * 1e-6 + 2.0,
                "{s:?}: {want} vs {got}"
            );
        }
    }

    #[test]
    fn too_few_or_identical_runs_fit_nothing() {
        let s = shape(1, 21_000, 4_000);
        assert_eq!(CycleModel::fit(&[(s, 1), (s, 2), (s, 3)]), None);
        assert_eq!(CycleModel::fit(&[(s, 1), (s, 2), (s, 3), (s, 4)]), None);
    }

    #[test]
    fn the_lower_bound_never_exceeds_the_estimate() {
        let m = CycleModel::default();
        let full = m.estimate(&shape(100, 2_100_000, 300_000));
        assert!(m.lower_bound(100, 2_100_000) < full);
    }
}
