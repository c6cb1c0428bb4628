//! Ethereum's GeneralStateTests, run through this crate's [`BlockExecutor`].
//!
//! The setup mirrors revm 43's reference runner (`revme statetest`): fork
//! mapping, chain id, block environment, blob limits, skip list and pass
//! criteria. If a post-state expects an exception the transaction must be
//! rejected and nothing else is checked; otherwise the output, the logs hash
//! and the state root must match. The state root is computed the way the
//! appliance derives state: pre-state [`MemoryState`] plus the block's
//! [`StateDiff`](state_transition::StateDiff), so the overlay's commit logic
//! (created, self-destructed and EIP-161-cleared accounts, storage resets) is
//! what is under test.
//!
//! Fixtures: `$PRIVIDIUM_STATE_TESTS`, else
//! `../shared/fixtures/ethereum-tests/GeneralStateTests` next to the repo.

use state_transition::{
    alloy_primitives::{keccak256, Address, Log, B256, U256},
    revm::{
        context::{BlockEnv, CfgEnv, TxEnv},
        database::CacheState,
        primitives::{hardfork::SpecId, KECCAK_EMPTY},
        statetest_types::{SpecName, Test, TestSuite, TestUnit},
    },
    BlockContext, BlockExecutor, MemoryState,
};
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

const FIXTURES_ENV: &str = "PRIVIDIUM_STATE_TESTS";
/// Beside the project root. Resolved when the test runs, not when it is
/// built: a build cache shared by several checkouts would otherwise point
/// at whichever checkout built it.
fn default_fixtures() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("../../shared/fixtures/ethereum-tests/GeneralStateTests")
}
const SHOWN_FAILURES: usize = 20;

// Skip categories (post-states not run).
const SKIP_LISTED: &str = "file on revme's skip list";
const SKIP_CONSTANTINOPLE: &str = "Constantinople fork (revme skips it)";
const SKIP_UNKNOWN_SPEC: &str = "unknown fork name (revme skips it)";
const SKIP_NO_TX: &str = "tx not buildable, exception expected (revme skips it)";

/// Files `revme statetest` does not run (revm 43, `skip_test`): storage on
/// accounts a creation collides with (EIP-7610, which revm does not model),
/// a malformed value, and a few that pass but take minutes.
fn revme_skips(path: &Path) -> bool {
    if path
        .to_string_lossy()
        .contains("paris/eip7610_create_collision")
    {
        return true;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    matches!(
        name,
        "RevertInCreateInInit_Paris.json"
            | "RevertInCreateInInit.json"
            | "dynamicAccountOverwriteEmpty.json"
            | "dynamicAccountOverwriteEmpty_Paris.json"
            | "RevertInCreateInInitCreate2Paris.json"
            | "create2collisionStorage.json"
            | "RevertInCreateInInitCreate2.json"
            | "create2collisionStorageParis.json"
            | "InitCollision.json"
            | "InitCollisionParis.json"
            | "test_init_collision_create_opcode.json"
            | "ValueOverflow.json"
            | "ValueOverflowParis.json"
            | "Call50000_sha256.json"
            | "static_Call50000_sha256.json"
            | "loopMul.json"
            | "CALLBlake2f_MaxRounds.json"
    )
}

#[derive(Debug)]
struct Failure {
    file: String,
    test: String,
    fork: String,
    index: usize,
    reason: String,
}

#[derive(Debug, Default)]
struct Tally {
    files: usize,
    skip_listed_files: usize,
    unparsed_skip_listed_files: usize,
    tests: usize,
    post_states: usize,
    run: usize,
    passed: usize,
    skipped: BTreeMap<&'static str, usize>,
    failures: Vec<Failure>,
}

impl Tally {
    fn skip(&mut self, why: &'static str, n: usize) {
        if n > 0 {
            *self.skipped.entry(why).or_default() += n;
        }
    }

    fn fail(&mut self, file: &str, test: &str, fork: &str, index: usize, reason: String) {
        self.failures.push(Failure {
            file: file.to_owned(),
            test: test.to_owned(),
            fork: fork.to_owned(),
            index,
            reason,
        });
    }

    fn merge(&mut self, other: Tally) {
        self.files += other.files;
        self.skip_listed_files += other.skip_listed_files;
        self.unparsed_skip_listed_files += other.unparsed_skip_listed_files;
        self.tests += other.tests;
        self.post_states += other.post_states;
        self.run += other.run;
        self.passed += other.passed;
        for (why, n) in other.skipped {
            *self.skipped.entry(why).or_default() += n;
        }
        self.failures.extend(other.failures);
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn general_state_tests() {
    let root = std::env::var_os(FIXTURES_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(default_fixtures);
    assert!(
        root.exists(),
        "state-test fixtures not found at {} (set {FIXTURES_ENV})",
        root.display()
    );
    let mut files = Vec::new();
    if root.is_file() {
        files.push(root.clone());
    } else {
        json_files(&root, &mut files);
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no .json fixtures under {}",
        root.display()
    );

    let started = Instant::now();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len());
    let next = AtomicUsize::new(0);
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("statetest-{i}"))
                    .stack_size(64 << 20)
                    .spawn_scoped(scope, || {
                        let mut tally = Tally::default();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(path) = files.get(i) else { break };
                            let rel = path.strip_prefix(&root).unwrap_or(path);
                            run_file(path, &rel.to_string_lossy(), &mut tally);
                        }
                        tally
                    })
                    .expect("spawn worker")
            })
            .collect();
        for handle in handles {
            tally.merge(handle.join().expect("worker thread panicked"));
        }
    });
    let elapsed = started.elapsed();

    let skipped: usize = tally.skipped.values().sum();
    println!("GeneralStateTests at {}", root.display());
    println!(
        "files: {} ({} on revme's skip list, {} of those unparseable)",
        tally.files, tally.skip_listed_files, tally.unparsed_skip_listed_files
    );
    println!("tests: {}", tally.tests);
    println!(
        "post-states: {} total, {} run",
        tally.post_states, tally.run
    );
    println!("passed: {}", tally.passed);
    println!("skipped: {skipped}");
    for (why, n) in &tally.skipped {
        println!("  {n:>6}  {why}");
    }
    println!("failed: {}", tally.failures.len());
    println!("wall time: {:.1?} on {workers} worker(s)", elapsed);

    if !tally.failures.is_empty() {
        tally.failures.sort_by(|a, b| {
            (&a.file, &a.test, &a.fork, a.index).cmp(&(&b.file, &b.test, &b.fork, b.index))
        });
        println!(
            "first {} failures:",
            SHOWN_FAILURES.min(tally.failures.len())
        );
        for f in tally.failures.iter().take(SHOWN_FAILURES) {
            println!(
                "  {} :: {} [{} #{}]: {}",
                f.file, f.test, f.fork, f.index, f.reason
            );
        }
        panic!(
            "{} of {} post-states failed",
            tally.failures.len(),
            tally.run
        );
    }
}

fn run_file(path: &Path, rel: &str, tally: &mut Tally) {
    tally.files += 1;
    let skip_listed = revme_skips(path);
    tally.skip_listed_files += usize::from(skip_listed);
    let suite = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<TestSuite>(&text).map_err(|e| e.to_string()));
    let suite = match suite {
        Ok(suite) => suite,
        // revme never opens skip-listed files; some are deliberately malformed.
        Err(_) if skip_listed => {
            tally.unparsed_skip_listed_files += 1;
            return;
        }
        Err(e) => {
            tally.fail(rel, "-", "-", 0, format!("cannot load fixture: {e}"));
            return;
        }
    };
    for (name, unit) in &suite.0 {
        tally.tests += 1;
        let post_states = unit.post.values().map(Vec::len).sum();
        tally.post_states += post_states;
        if skip_listed {
            tally.skip(SKIP_LISTED, post_states);
        } else {
            run_unit(rel, name, unit, tally);
        }
    }
}

fn run_unit(rel: &str, name: &str, unit: &TestUnit, tally: &mut Tally) {
    let mut cfg = CfgEnv::default();
    cfg.chain_id = unit
        .env
        .current_chain_id
        .unwrap_or(U256::ONE)
        .try_into()
        .unwrap_or(1);
    let pre = memory_state(&unit.state(), unit.env.current_number.saturating_to());

    for (spec_name, tests) in &unit.post {
        // revme skips Constantinople (superseded by Petersburg); `to_spec_id`
        // cannot map either Constantinople name.
        if matches!(
            spec_name,
            SpecName::Constantinople | SpecName::ByzantiumToConstantinopleAt5
        ) {
            tally.skip(SKIP_CONSTANTINOPLE, tests.len());
            continue;
        }
        if *spec_name == SpecName::Unknown {
            tally.skip(SKIP_UNKNOWN_SPEC, tests.len());
            continue;
        }
        let spec = spec_name.to_spec_id();
        cfg.set_spec_and_mainnet_gas_params(spec);
        // Same per-fork blob limits as revme.
        cfg.set_max_blobs_per_tx(if spec.is_enabled_in(SpecId::OSAKA) {
            6
        } else if spec.is_enabled_in(SpecId::PRAGUE) {
            9
        } else {
            6
        });
        let block = unit.block_env(&mut cfg);
        let fork = format!("{spec_name:?}");

        for (index, test) in tests.iter().enumerate() {
            let tx = match test.tx_env(unit) {
                Ok(tx) => tx,
                Err(_) if test.expect_exception.is_some() => {
                    tally.skip(SKIP_NO_TX, 1);
                    continue;
                }
                Err(e) => {
                    tally.run += 1;
                    tally.fail(rel, name, &fork, index, format!("cannot build tx: {e}"));
                    continue;
                }
            };
            tally.run += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                check_post_state(unit, &pre, &cfg, &block, test, tx)
            }));
            match outcome {
                Ok(Ok(())) => tally.passed += 1,
                Ok(Err(reason)) => tally.fail(rel, name, &fork, index, reason),
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    tally.fail(rel, name, &fork, index, format!("panicked: {msg}"));
                }
            }
        }
    }
}

/// The fixture's pre-state as the appliance holds state: accounts without
/// code, code by hash, non-zero storage only.
fn memory_state(cache: &CacheState, block_number: u64) -> MemoryState {
    let mut state = MemoryState::default();
    for (address, account) in &cache.accounts {
        let Some(plain) = &account.account else {
            continue;
        };
        let mut info = plain.info.clone();
        if let Some(code) = info.code.take() {
            if info.code_hash != KECCAK_EMPTY {
                state.codes.insert(info.code_hash, code.original_bytes());
            }
        }
        state.accounts.insert(*address, info);
        let slots: BTreeMap<U256, U256> = plain
            .storage
            .iter()
            .filter(|(_, value)| !value.is_zero())
            .map(|(slot, value)| (*slot, *value))
            .collect();
        if !slots.is_empty() {
            state.storage.insert(*address, slots);
        }
    }
    for (code_hash, code) in &cache.contracts {
        state.codes.insert(*code_hash, code.original_bytes());
    }
    // BLOCKHASH in state tests: keccak256 of the decimal block number, as in
    // geth's and revme's harnesses; only the last 256 blocks are reachable.
    for n in block_number.saturating_sub(256)..block_number {
        state.block_hashes.insert(n, keccak256(n.to_string()));
    }
    state
}

fn check_post_state(
    unit: &TestUnit,
    pre: &MemoryState,
    cfg: &CfgEnv,
    block: &BlockEnv,
    test: &Test,
    tx: TxEnv,
) -> Result<(), String> {
    let context = BlockContext {
        number: block.number.saturating_to(),
        timestamp: block.timestamp.saturating_to(),
        parent_hash: B256::ZERO,
        beneficiary: block.beneficiary,
        gas_limit: block.gas_limit,
        base_fee: block.basefee,
        prevrandao: block.prevrandao.unwrap_or_default(),
    };
    let mut exec = BlockExecutor::with_env(cfg.clone(), block.clone(), context, pre);
    let result = exec.transact_env(tx);

    let result = match (result, &test.expect_exception) {
        (Err(_), Some(_)) => return Ok(()),
        (Ok(result), None) => result,
        (Ok(result), Some(expected)) => {
            return Err(format!(
                "expected exception {expected}, but the tx executed ({})",
                if result.is_success() {
                    "success"
                } else {
                    "reverted/halted"
                }
            ))
        }
        (Err(e), None) => return Err(format!("unexpected exception: {e}")),
    };

    if let (Some(expected), Some(got)) = (&unit.out, result.output()) {
        if expected != got {
            return Err(format!("output mismatch: got {got}, expected {expected}"));
        }
    }

    let logs = logs_hash(result.logs());
    if logs != test.logs {
        return Err(format!(
            "logs hash mismatch: got {logs}, expected {}",
            test.logs
        ));
    }

    let mut post = pre.clone();
    post.apply(exec.state().diff());
    let root = post.state_root();
    if root != test.hash {
        return Err(format!(
            "state root mismatch: got {root}, expected {}{}",
            test.hash,
            explain_mismatch(&post, test)
        ));
    }

    // Our own invariant on top of revme's checks: the next block must be able
    // to run every contract in the post-state, so its code must be stored.
    if let Some((address, info)) = post.accounts.iter().find(|(_, info)| {
        info.code_hash != KECCAK_EMPTY && !post.codes.contains_key(&info.code_hash)
    }) {
        return Err(format!(
            "post-state lacks code {} of account {address}",
            info.code_hash
        ));
    }
    Ok(())
}

/// keccak256 of the RLP list of logs, as the fixtures' `logs` field.
fn logs_hash(logs: &[Log]) -> B256 {
    let mut out = Vec::with_capacity(alloy_rlp::list_length(logs));
    alloy_rlp::encode_list(logs, &mut out);
    keccak256(&out)
}

/// Names the first accounts that differ from the fixture's `postState`, if
/// it has one (most do), to make a root mismatch actionable.
fn explain_mismatch(post: &MemoryState, test: &Test) -> String {
    if test.post_state.is_empty() {
        return String::new();
    }
    let mut addresses: Vec<Address> = post.accounts.keys().copied().collect();
    addresses.extend(test.post_state.keys().copied());
    addresses.sort();
    addresses.dedup();
    let mut out = String::new();
    let mut shown = 0;
    for address in addresses {
        let ours = post.accounts.get(&address);
        let theirs = test.post_state.get(&address);
        let problem = match (ours, theirs) {
            (Some(_), None) => Some("extra account".to_owned()),
            (None, Some(_)) => Some("missing account".to_owned()),
            (None, None) => None,
            (Some(ours), Some(theirs)) => {
                let our_slots = post.storage.get(&address);
                let their_slots: BTreeMap<U256, U256> = theirs
                    .storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (*k, *v))
                    .collect();
                if ours.nonce != theirs.nonce {
                    Some(format!("nonce {} != {}", ours.nonce, theirs.nonce))
                } else if ours.balance != theirs.balance {
                    Some(format!("balance {} != {}", ours.balance, theirs.balance))
                } else if ours.code_hash != keccak256(&theirs.code) {
                    Some("code hash differs".to_owned())
                } else if our_slots.cloned().unwrap_or_default() != their_slots {
                    Some(format!(
                        "storage {:?} != {:?}",
                        our_slots.cloned().unwrap_or_default(),
                        their_slots
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            if shown == 3 {
                out.push_str("; ...");
                break;
            }
            let _ = write!(out, "; {address}: {problem}");
            shown += 1;
        }
    }
    out
}
