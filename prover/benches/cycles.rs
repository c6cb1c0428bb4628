//! Cycles of the batch program per transaction: executes (does not prove)
//! the guest under OpenVM on batches of ETH transfers, ERC-20 transfers
//! among 50,000 holders and oracle price updates, 1 to 1,000 transactions
//! each, and an empty batch for the fixed cost.
//!
//! ```sh
//! prover/guest/build.sh
//! cargo bench -p prover --features openvm --bench cycles
//! ```
//! Cycle counts depend only on the guest and the witness, not on the host's
//! build or speed, so the dev profile gives the same figures in less build
//! time (`--profile dev` reuses the test build). `PROVER_BENCH_TXS` sets the
//! batch sizes (default `1,10,100,1000`), `PROVER_BENCH_HOLDERS` the token
//! holders (default 50000).
//!
//! Each workload is one chain; its batches follow each other on it, so a
//! batch's witness covers a state that earlier batches already grew. Blocks
//! hold at most 100 transactions, as 100 ms blocks at 1,000 tx/s would.
//!
//! It then fits the cutter's [`prover::CycleModel`] to these runs and prints
//! each run's estimate, by the fit and by the model the cutter ships with.
//!
//! `PROVER_BENCH_CORPUS=DIR` also writes the GPU check's corpus there
//! (`prover/corpus`: the witnesses named in [`CORPUS`] and `MANIFEST`), so
//! regenerate it with `PROVER_BENCH_TXS=1,100,1000`.

#[path = "../tests/support/guest.rs"]
mod guest;
#[path = "../tests/support/mod.rs"]
mod support;

use alloy_consensus::TxEnvelope;
use alloy_primitives::{keccak256, Address, B256};
use prover::{BatchShape, ChainBlock, CycleModel, ProverState, ZkBackend};
use state_transition::AuditHead;
use support::TestChain;

const PER_BLOCK: usize = 100;
/// The batches `scripts/gpu-check.sh` proves.
const CORPUS: [&str; 4] = ["eth-1", "eth-100", "eth-1000", "erc20-100"];
const AUDIT: AuditHead = AuditHead {
    size: 1,
    root: B256::repeat_byte(0xad),
};

/// A workload's chain, with the prover's state following it.
struct Bench {
    chain: TestChain,
    prover: ProverState,
    batch: u64,
}

impl Bench {
    fn new(keys: usize) -> Self {
        let chain = TestChain::with_keys(keys);
        let prover = chain.prover_state();
        Self {
            chain,
            prover,
            batch: 0,
        }
    }

    /// Setup blocks: produced and replayed by the prover, not measured.
    fn setup(&mut self, txs: Vec<TxEnvelope>) {
        let parent = self.chain.headers.last().unwrap().clone();
        let block = self.chain.produce(txs);
        self.prover
            .replay(&self.chain.spec, &parent, &block)
            .unwrap();
    }

    /// Produces `txs` in blocks of at most [`PER_BLOCK`] and witnesses them
    /// as the next batch (an empty `txs` makes one empty block).
    fn batch(&mut self, txs: Vec<TxEnvelope>) -> Batch {
        let mut blocks: Vec<ChainBlock> = Vec::new();
        if txs.is_empty() {
            blocks.push(self.chain.produce(Vec::new()));
        }
        for chunk in txs.chunks(PER_BLOCK) {
            blocks.push(self.chain.produce(chunk.to_vec()));
        }
        self.batch += 1;
        let chain = &self.chain;
        let witness = self
            .prover
            .witness_batch(&chain.spec, self.batch, &blocks, AUDIT, |n| chain.header(n))
            .unwrap();
        assert_eq!(self.prover.root(), *chain.roots.last().unwrap());
        let encoded = witness.encode();
        let gas = blocks.iter().map(|b| b.header.gas_used).sum();
        Batch {
            shape: BatchShape::of(&witness, encoded.len(), gas),
            witness: encoded,
            blocks: blocks.len(),
        }
    }
}

/// A witnessed batch.
struct Batch {
    witness: Vec<u8>,
    blocks: usize,
    shape: BatchShape,
}

fn fresh(i: usize) -> Address {
    Address::from_slice(&keccak256(format!("recipient {i}"))[12..])
}

fn main() {
    let sizes: Vec<usize> = std::env::var("PROVER_BENCH_TXS")
        .unwrap_or_else(|_| "1,10,100,1000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("PROVER_BENCH_TXS: numbers"))
        .collect();
    let holders: usize = std::env::var("PROVER_BENCH_HOLDERS")
        .ok()
        .map(|s| s.parse().expect("PROVER_BENCH_HOLDERS: a number"))
        .unwrap_or(50_000);
    let senders = sizes.iter().copied().max().unwrap_or(1).max(1);

    let vm = guest::load_guest();
    // Cycles and the outputs digest, once the guest agrees with the native run.
    let cycles = |witness: &[u8]| -> (u64, B256) {
        let native = prover::NativeBackend.execute(witness).unwrap().digest;
        let run = vm.execute(witness).unwrap();
        assert_eq!(run.digest, native, "the guest and the native run disagree");
        (run.cycles.expect("OpenVM counts cycles"), native)
    };

    let corpus = std::env::var_os("PROVER_BENCH_CORPUS").map(std::path::PathBuf::from);
    let mut manifest = String::from(
        "# name\twitness keccak256\toutputs digest\ttransactions\tcycles (when written)\n",
    );
    println!(
        "| workload | txs | blocks | witness bytes | gas | cycles | cycles/tx | (cycles - empty)/tx |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut empty = 0u64;
    let mut runs: Vec<(String, BatchShape, u64)> = Vec::new();
    let mut row = |name: &str, file: &str, txs: usize, batch: Batch| {
        let (c, digest) = cycles(&batch.witness);
        if txs == 0 {
            empty = c;
        }
        let per = |v: u64| {
            if txs == 0 {
                "-".to_string()
            } else {
                (v / txs as u64).to_string()
            }
        };
        println!(
            "| {name} | {txs} | {} | {} | {} | {c} | {} | {} |",
            batch.blocks,
            batch.witness.len(),
            batch.shape.gas_used,
            per(c),
            per(c.saturating_sub(empty)),
        );
        runs.push((format!("{name} x{txs}"), batch.shape, c));
        if let Some(dir) = corpus.as_ref().filter(|_| CORPUS.contains(&file)) {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(format!("{file}.witness")), &batch.witness).unwrap();
            manifest.push_str(&format!(
                "{file}\t{}\t{digest}\t{txs}\t{c}\n",
                keccak256(&batch.witness)
            ));
        }
    };

    // ETH transfers: distinct senders, each to a fresh address.
    let mut eth = Bench::new(senders);
    row("empty batch (one block)", "empty", 0, eth.batch(Vec::new()));
    let mut next = 0;
    for &n in &sizes {
        let txs = (0..n)
            .map(|i| {
                next += 1;
                eth.chain.eth(i, fresh(next), 1)
            })
            .collect();
        row("ETH transfer", &format!("eth-{n}"), n, eth.batch(txs));
    }

    // ERC-20 transfers among `holders`: the senders hold tokens too.
    let mut erc20 = Bench::new(senders);
    let (deploy, token) = erc20.chain.deploy_token(0, 0);
    erc20.setup(vec![deploy]);
    let holder = |i: usize| {
        if i < senders {
            TestChain::address(i)
        } else {
            fresh(i)
        }
    };
    let all: Vec<Address> = (0..holders.max(senders)).map(holder).collect();
    // 450 per block keeps blocks under the 15M gas target, so the base fee
    // does not climb past what the test keys' transactions offer.
    for chunk in all.chunks(450) {
        let mint = erc20.chain.mint_batch(0, token, chunk.to_vec(), 1_000_000);
        erc20.setup(vec![mint]);
    }
    eprintln!("{} token holders minted", all.len());
    let mut k = 0usize;
    for &n in &sizes {
        let txs = (0..n)
            .map(|i| {
                k += 1;
                let to = all[k.wrapping_mul(7_919) % all.len()];
                erc20.chain.token_transfer(i, token, to, 1)
            })
            .collect();
        row(
            &format!("ERC-20 transfer ({} holders)", all.len()),
            &format!("erc20-{n}"),
            n,
            erc20.batch(txs),
        );
    }

    // Oracle price updates over 16 assets.
    let mut oracle = Bench::new(senders);
    let (deploy, kit) = oracle.chain.deploy_oracle(0);
    oracle.setup(vec![deploy]);
    let mut p = 0u64;
    for &n in &sizes {
        let txs = (0..n)
            .map(|i| {
                p += 1;
                oracle.chain.set_price(i, kit, p % 16, p)
            })
            .collect();
        row(
            "oracle update",
            &format!("oracle-{n}"),
            n,
            oracle.batch(txs),
        );
    }
    if let Some(dir) = &corpus {
        std::fs::write(dir.join("MANIFEST"), &manifest).unwrap();
        eprintln!("corpus written to {}", dir.display());
    }

    // The cutter's estimate, fitted here and as shipped. Fitted on the
    // empty batch and batches of 100 or more: the budget bounds large
    // batches, and small ones carry costs (the first touch of each upper
    // trie node) that a linear model spreads badly.
    let shapes: Vec<(BatchShape, u64)> = runs
        .iter()
        .filter(|(_, s, _)| s.transactions == 0 || s.transactions >= 100)
        .map(|(_, s, c)| (*s, *c))
        .collect();
    let shipped = CycleModel::default();
    let Some(fitted) = CycleModel::fit(&shapes) else {
        println!("\n(too few runs to fit the cycle model)");
        return;
    };
    println!(
        "\ncycle model fitted (empty batch and batches of 100+): fixed {:.0}, per transaction {:.0}, per gas {:.3}, per witness byte {:.2}",
        fitted.fixed, fitted.per_transaction, fitted.per_gas, fitted.per_witness_byte
    );
    println!("\n| run | cycles | fitted estimate | error | shipped estimate | error |");
    println!("|---|---|---|---|---|---|");
    let error = |est: u64, c: u64| (est as f64 - c as f64) / c as f64 * 100.0;
    for (name, shape, c) in &runs {
        let (f, s) = (fitted.estimate(shape), shipped.estimate(shape));
        println!(
            "| {name} | {c} | {f} | {:+.1}% | {s} | {:+.1}% |",
            error(f, *c),
            error(s, *c)
        );
    }
}
