//! What the call guard costs a transaction, before and after it learned to
//! check opcodes that read another account (BALANCE, EXTCODESIZE,
//! EXTCODECOPY, EXTCODEHASH) and to tell code from wallets (issue 20), in
//! one run, side by side:
//! - `unguarded`: no inspector (replay and proving),
//! - `frames`: the guard as it was: one decision per call and create frame,
//!   nothing per opcode (replicated here, since the crate no longer has it),
//! - `guard`: [`GuardInspector`] as the block producer runs it: frames,
//!   every opcode looked at, code lookups for the frame's target, created
//!   contracts listed after the transaction.
//!
//! Workloads: ERC-20 `transfer`s of the BankToken the load generator uses,
//! and plain ETH transfers, each from one funded account to 1,000
//! recipients, executed and committed one by one on an in-memory state.
//! The guard allows everything (the policy engine's own cost is measured by
//! `access-control`'s `auth_policy` bench), so the difference between
//! `frames` and `guard` is exactly what the opcode checks add.
//!
//! The variants run interleaved, round after round, so drift in the
//! machine's load hits all of them; each prints the median over the rounds.
//! An in-memory EVM is the cheapest place a transaction can run, so the
//! share printed is an upper bound on the share of the node's time, which
//! adds signature recovery, RPC, policy decisions, audit and the block log.
//!
//! `cargo bench -p state-transition --bench guard_overhead`

use alloy_primitives::{Address, Bytes, TxKind, U256};
use revm::{
    context::{ContextTr, TxEnv},
    context_interface::JournalTr,
    database::InMemoryDB,
    interpreter::{CallInputs, CallOutcome, CallScheme, CreateInputs, CreateOutcome},
    state::AccountInfo,
    Context, ExecuteCommitEvm, ExecuteEvm, InspectEvm, Inspector, MainBuilder, MainContext,
};
use state_transition::{
    created_contracts, AccountRead, CallGuard, Denial, Frame, FrameKind, GuardInspector,
    SharedGuard,
};
use std::{
    hint::black_box,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

const TXS: usize = 5_000;
const ROUNDS: usize = 31;
const RECIPIENTS: usize = 1_000;
const SENDER: Address = Address::repeat_byte(0x5e);
const BANK_TOKEN: &str = include_str!("../../contracts/out/BankToken.json");

/// Allows every frame and read, counting them so no check is optimized away.
#[derive(Default)]
struct AllowAll {
    frames: AtomicU64,
    reads: AtomicU64,
}

impl CallGuard for AllowAll {
    fn check(&self, frame: &Frame<'_>) -> Result<(), Denial> {
        self.frames.fetch_add(1, Ordering::Relaxed);
        black_box(frame);
        Ok(())
    }

    fn check_read(&self, read: &AccountRead) -> Result<(), Denial> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        black_box(read);
        Ok(())
    }
}

/// The guard inspector before issue 20, copied as it was (the crate no
/// longer has it; sharing the frame construction with `GuardInspector`
/// would change the zkVM program's ELF and so its program id): a decision
/// at each frame start, no code lookups, nothing per opcode. The bench's
/// guard allows every frame, so the refusal path it had never runs here.
struct FramesOnly(SharedGuard);

impl<CTX: ContextTr> Inspector<CTX> for FramesOnly {
    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let input = inputs.input.bytes(context);
        let kind = match inputs.scheme {
            CallScheme::Call => FrameKind::Call,
            CallScheme::CallCode => FrameKind::CallCode,
            CallScheme::DelegateCall => FrameKind::DelegateCall,
            CallScheme::StaticCall => FrameKind::StaticCall,
        };
        let frame = Frame {
            depth: context.journal_ref().depth(),
            kind,
            caller: inputs.caller,
            target: inputs.target_address,
            code_address: inputs.bytecode_address,
            value: inputs.call_value(),
            input: &input,
            has_code: false,
        };
        assert!(self.0.check(&frame).is_ok());
        None
    }

    fn create(&mut self, context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let frame = Frame {
            depth: context.journal_ref().depth(),
            kind: FrameKind::Create,
            caller: inputs.caller(),
            target: Address::ZERO,
            code_address: Address::ZERO,
            value: inputs.value(),
            input: inputs.init_code(),
            has_code: false,
        };
        assert!(self.0.check(&frame).is_ok());
        None
    }
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    Unguarded,
    Frames,
    Guard,
}

const VARIANTS: [Variant; 3] = [Variant::Unguarded, Variant::Frames, Variant::Guard];

fn word(x: U256) -> [u8; 32] {
    x.to_be_bytes()
}

fn address_word(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

/// `BankToken(name, symbol, initialSupply)` creation code.
fn token_creation() -> Bytes {
    let artifact: serde_json::Value = serde_json::from_str(BANK_TOKEN).expect("artifact");
    let code: Bytes = artifact["bytecode"]
        .as_str()
        .expect("bytecode")
        .parse()
        .expect("hex");
    let mut out = code.to_vec();
    let short_string = |s: &str| {
        let mut data = [0u8; 32];
        data[..s.len()].copy_from_slice(s.as_bytes());
        [word(U256::from(s.len())), data].concat()
    };
    out.extend(word(U256::from(0x60)));
    out.extend(word(U256::from(0xa0)));
    out.extend(word(U256::MAX >> 8));
    out.extend(short_string("Bench Token"));
    out.extend(short_string("BNCH"));
    out.into()
}

fn recipient(i: usize) -> Address {
    Address::left_padding_from(&(0x1000_0000u64 + i as u64).to_be_bytes())
}

/// The state after deploying the token, the token's address, and the
/// sender's next nonce.
fn genesis() -> (InMemoryDB, Address) {
    let mut db = InMemoryDB::default();
    db.insert_account_info(SENDER, AccountInfo::from_balance(U256::MAX >> 1));
    let token = SENDER.create(0);
    let mut evm = Context::mainnet().with_db(db).build_mainnet();
    let deploy = TxEnv::builder()
        .caller(SENDER)
        .create()
        .data(token_creation())
        .gas_limit(5_000_000)
        .nonce(0)
        .build()
        .expect("deploy env");
    let result = evm.transact_commit(deploy).expect("deploy");
    assert!(result.is_success(), "token deployment failed: {result:?}");
    (evm.ctx.journaled_state.database, token)
}

fn transfers(token: Option<Address>) -> Vec<TxEnv> {
    (0..TXS)
        .map(|i| {
            let to = recipient(i % RECIPIENTS);
            let builder = TxEnv::builder()
                .caller(SENDER)
                .nonce(1 + i as u64)
                .gas_limit(100_000);
            match token {
                Some(token) => {
                    let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
                    data.extend(address_word(to));
                    data.extend(word(U256::from(1)));
                    builder.kind(TxKind::Call(token)).data(data.into())
                }
                None => builder.kind(TxKind::Call(to)).value(U256::from(1)),
            }
            .build()
            .expect("tx env")
        })
        .collect()
}

/// Executes and commits `txs` on a copy of `db` the way the executor does
/// for `variant`; returns the elapsed time.
fn run(variant: Variant, db: &InMemoryDB, txs: &[TxEnv], guard: &SharedGuard) -> Duration {
    let txs = txs.to_vec();
    let ctx = Context::mainnet().with_db(db.clone());
    let start = Instant::now();
    let mut ok = 0usize;
    match variant {
        Variant::Unguarded => {
            let mut evm = ctx.build_mainnet();
            for tx in txs {
                ok += usize::from(evm.transact_commit(tx).expect("tx").is_success());
            }
        }
        Variant::Frames => {
            let mut evm = ctx.build_mainnet_with_inspector(FramesOnly(guard.clone()));
            for tx in txs {
                evm.set_inspector(FramesOnly(guard.clone()));
                let result = evm.inspect_one_tx(tx).expect("tx");
                let state = evm.finalize();
                evm.commit(state);
                ok += usize::from(result.is_success());
            }
        }
        Variant::Guard => {
            let mut evm = ctx.build_mainnet_with_inspector(GuardInspector::default());
            for tx in txs {
                evm.set_inspector(GuardInspector::new(guard.clone()));
                let result = evm.inspect_one_tx(tx).expect("tx");
                let mut inspector = std::mem::take(&mut evm.inspector);
                assert!(inspector.take_denial().is_none());
                let state = evm.finalize();
                black_box(created_contracts(&state, |a| inspector.creator_of(a)));
                evm.commit(state);
                ok += usize::from(result.is_success());
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(ok, TXS, "{variant:?}: every transfer succeeds");
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let (db, token) = genesis();
    let allow = Arc::new(AllowAll::default());
    let guard: SharedGuard = allow.clone();
    println!("{TXS} transfers per round, {ROUNDS} rounds, median µs per transaction");
    println!(
        "{:<8} {:>10} {:>8} {:>8} {:>13} {:>8}",
        "workload", "unguarded", "frames", "guard", "checks add", "share"
    );
    for (name, txs) in [("erc20", transfers(Some(token))), ("eth", transfers(None))] {
        let mut samples = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..=ROUNDS {
            for k in 0..VARIANTS.len() {
                // Rotate the order so no variant always runs first.
                let k = (k + round) % VARIANTS.len();
                let elapsed = run(VARIANTS[k], &db, &txs, &guard);
                if round > 0 {
                    samples[k].push(elapsed);
                }
            }
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / TXS as f64;
        let [unguarded, frames, full] = samples.map(|s| us(median(s)));
        println!(
            "{name:<8} {unguarded:>10.2} {frames:>8.2} {full:>8.2} {:>+10.2} µs {:>+7.1}%",
            full - frames,
            100.0 * (full - frames) / frames
        );
    }
    println!(
        "({} frame and {} read decisions asked)",
        allow.frames.load(Ordering::Relaxed),
        allow.reads.load(Ordering::Relaxed)
    );
}
