//! The policy pre-check at admission: the transaction's call frames are put
//! to the submitter's guard against the produced head, so a denial is
//! answered at once instead of surfacing as a drop at block time. The guard
//! travels with the transaction and is asked again when the block is built,
//! against the state the transaction really runs on.
//!
//! Some transactions have exactly one frame, known without running
//! anything: the transaction's own call, at depth 0, from the sender to the
//! recipient, with the transaction's value and data. That holds when the
//! recipient has no code (a wallet, a new account, a precompile), and when
//! its code holds none of the opcodes through which the EVM asks the guard
//! anything more: no CALL, CALLCODE, DELEGATECALL, STATICCALL, CREATE or
//! CREATE2 (further frames) and no BALANCE, EXTCODESIZE, EXTCODECOPY or
//! EXTCODEHASH (reads of other accounts) — a token's `transfer`, say. Such a
//! frame is put to the guard directly: building an EVM and running the call
//! (context, journal, a commit into a state that is thrown away) cost more
//! than the policy question itself. Anything else — a creation, an
//! authorization list, blobs, code that can call out or read other
//! accounts, EOF or delegated code — is executed as before.

use crate::{hot::Hot, mempool::MempoolError, produce::next_context};
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, Bytes, TxKind, B256, KECCAK256_EMPTY, U256};
use parking_lot::RwLock;
use state_transition::{
    revm::{
        bytecode::{
            opcode::{
                BALANCE, CALL, CALLCODE, CREATE, CREATE2, DELEGATECALL, EXTCODECOPY, EXTCODEHASH,
                EXTCODESIZE, STATICCALL,
            },
            Bytecode,
        },
        state::AccountInfo,
    },
    tx_env, BlockExecutor, ChainSpec, Frame, FrameKind, SharedGuard,
};
use std::collections::HashMap;

/// Puts `tx`'s frames to `guard` on top of `hot`, discarding any effects.
/// Only a denial is reported: nonce, balance and revert outcomes are for
/// the pool and the block to decide.
pub(crate) fn preflight(
    chain: &ChainSpec,
    hot: &Hot,
    tx: &TxEnvelope,
    sender: Address,
    guard: &SharedGuard,
    codes: &ClosedCodes,
) -> Result<(), MempoolError> {
    let denied = |d: state_transition::Denial| MempoolError::Denied {
        rule: d.rule,
        reason: d.reason,
    };
    if let Some(frame) = only_frame(hot, tx, sender, codes) {
        return guard.check(&frame).map_err(denied);
    }
    let env = tx_env(tx, sender).map_err(|e| MempoolError::Decode(e.to_string()))?;
    let ctx = next_context(chain, &hot.head, Address::ZERO);
    let mut cfg = chain.cfg_env();
    // Queued transactions run ahead of their predecessors here.
    cfg.disable_nonce_check = true;
    let mut exec = BlockExecutor::with_env(cfg, ctx.block_env(), ctx, &hot.state);
    match exec.transact_env_guarded(env, guard) {
        Ok(Err(denial)) => Err(denied(denial)),
        _ => Ok(()),
    }
}

/// The one frame of `tx` when nothing but its own call can be put to the
/// guard (see the module docs); `None` when only executing it can tell.
fn only_frame<'a>(
    hot: &Hot,
    tx: &'a TxEnvelope,
    from: Address,
    codes: &ClosedCodes,
) -> Option<Frame<'a>> {
    let TxKind::Call(to) = tx.kind() else {
        return None;
    };
    if tx.authorization_list().is_some() || tx.blob_versioned_hashes().is_some() {
        return None;
    }
    let no_code = |a: &AccountInfo| a.code_hash == KECCAK256_EMPTY || a.code_hash == B256::ZERO;
    let has_code = match hot.state.accounts.get(&to) {
        None => false,
        Some(a) if no_code(a) => false,
        Some(a) => {
            let code = hot.state.codes.get(&a.code_hash)?;
            if !codes.is_closed(a.code_hash, code) {
                return None;
            }
            true
        }
    };
    // The EVM refuses a sender that cannot pay the most the transaction
    // may cost, or that holds code, before any frame starts: such a
    // transaction is executed, so it is refused as before without a policy
    // question being asked (and audited).
    // An account the chain has never seen (a token holder that was never
    // sent ether, on a chain without fees) runs as an empty one.
    let (balance, sender_no_code) = hot
        .state
        .accounts
        .get(&from)
        .map_or((U256::ZERO, true), |a| (a.balance, no_code(a)));
    let most = U256::from(tx.gas_limit())
        .checked_mul(U256::from(tx.max_fee_per_gas()))?
        .checked_add(tx.value())?;
    if balance < most || !sender_no_code {
        return None;
    }
    let input = tx.input().as_ref();
    Some(Frame {
        depth: 0,
        kind: FrameKind::Call,
        caller: from,
        target: to,
        code_address: to,
        value: tx.value(),
        input,
        // As the EVM's guard sees it: looked at only for empty call data.
        has_code: has_code && input.is_empty(),
    })
}

/// Which contract codes can ask the guard nothing beyond their own frame,
/// by code hash: each code is scanned once. Bounded: past
/// [`REMEMBERED_CODES`] the map starts over (a rescan is a few µs).
#[derive(Debug, Default)]
pub(crate) struct ClosedCodes {
    known: RwLock<HashMap<B256, bool>>,
}

/// Codes [`ClosedCodes`] remembers at most.
const REMEMBERED_CODES: usize = 4_096;

impl ClosedCodes {
    fn is_closed(&self, hash: B256, code: &Bytes) -> bool {
        if let Some(closed) = self.known.read().get(&hash) {
            return *closed;
        }
        let closed = is_closed(code);
        let mut known = self.known.write();
        if known.len() >= REMEMBERED_CODES {
            known.clear();
        }
        known.insert(hash, closed);
        closed
    }
}

/// Whether legacy `code` holds no opcode that opens a frame or makes the
/// guard look at another account. Opcodes are walked as revm's interpreter
/// reads them (immediates such as push data skipped); bytes that only look
/// like such an opcode (in metadata or data after the code) make the answer
/// "no", which only costs an execution.
fn is_closed(code: &Bytes) -> bool {
    // 0xEF starts EOF containers and EIP-7702 delegations: the code that
    // runs is elsewhere or laid out differently.
    if code.first() == Some(&0xef) {
        return false;
    }
    Bytecode::new_legacy(code.clone())
        .iter_opcodes()
        .all(|op| match op {
            BALANCE | EXTCODESIZE | EXTCODECOPY | EXTCODEHASH => false,
            CREATE | CALL | CALLCODE | DELEGATECALL | CREATE2 | STATICCALL => false,
            // EOF's calls and creations (EOFCREATE, TXCREATE, EXTCALL,
            // EXTDELEGATECALL, EXTSTATICCALL): undefined for legacy code in
            // this EVM, refused here in case a later one defines them.
            0xec | 0xed | 0xf8 | 0xf9 | 0xfb => false,
            _ => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{signed_call_from, signed_transfer_from, test_signer, TEST_CHAIN_ID};
    use parking_lot::Mutex;
    use state_transition::{
        revm::primitives::hardfork::SpecId, CallGuard, Denial, FeeMode, MemoryState, ParentBlock,
    };
    use std::sync::Arc;

    /// Records every frame it is asked about; denies frames into `deny`.
    struct Recording {
        frames: Mutex<Vec<String>>,
        deny: Address,
    }

    impl CallGuard for Recording {
        fn check(&self, f: &Frame<'_>) -> Result<(), Denial> {
            self.frames.lock().push(format!(
                "{} {} {:?} {} {} {} {:?} {}",
                f.depth,
                f.kind.as_str(),
                f.caller,
                f.target,
                f.code_address,
                f.value,
                f.input,
                f.has_code
            ));
            if f.target == self.deny {
                return Err(Denial {
                    rule: "no-entry".into(),
                    reason: format!("{} is closed", f.target),
                });
            }
            Ok(())
        }
    }

    const WALLET: Address = Address::repeat_byte(0x42);
    const CONTRACT: Address = Address::repeat_byte(0xcc);
    const DENIED: Address = Address::repeat_byte(0xdd);
    const CALLS_OUT: Address = Address::repeat_byte(0xc1);
    const READS_OUT: Address = Address::repeat_byte(0xc2);
    const PUSHES_LOOKALIKES: Address = Address::repeat_byte(0xc3);
    const DELEGATED: Address = Address::repeat_byte(0xc4);
    /// The SHA-256 precompile.
    const PRECOMPILE: Address = Address::with_last_byte(2);

    fn setup() -> (ChainSpec, Hot) {
        let chain = ChainSpec {
            chain_id: TEST_CHAIN_ID,
            spec: SpecId::PRAGUE,
            fee_mode: FeeMode::Zero,
            block_gas_limit: 30_000_000,
        };
        let mut state = MemoryState::default();
        let funded = AccountInfo {
            balance: U256::from(10u64).pow(U256::from(18u64)),
            ..Default::default()
        };
        state.accounts.insert(test_signer(0).address(), funded);
        state.accounts.insert(WALLET, AccountInfo::default());
        let mut contract = |address: Address, code: Vec<u8>| {
            let code = Bytes::from(code);
            let hash = Bytecode::new_raw(code.clone()).hash_slow();
            state.accounts.insert(
                address,
                AccountInfo {
                    code_hash: hash,
                    // Looked up by hash, as the EVM reads the hot state.
                    code: None,
                    ..Default::default()
                },
            );
            state.codes.insert(hash, code);
        };
        // STOP: a contract that accepts ether and does nothing.
        contract(CONTRACT, vec![0x00]);
        let push20 = |a: Address| [&[0x73][..], a.as_slice()].concat();
        // CALL(gas 0xffff, WALLET, value 0, no data): a second frame.
        contract(
            CALLS_OUT,
            [
                &[0x60, 0, 0x60, 0, 0x60, 0, 0x60, 0, 0x60, 0][..],
                &push20(WALLET)[..],
                &[0x61, 0xff, 0xff, 0xf1, 0x00][..],
            ]
            .concat(),
        );
        // BALANCE(WALLET): a read of another account.
        contract(
            READS_OUT,
            [&push20(WALLET)[..], &[0x31, 0x50, 0x00][..]].concat(),
        );
        // Pushes bytes that look like CALL and BALANCE, stores one: closed.
        contract(
            PUSHES_LOOKALIKES,
            vec![0x61, 0xf1, 0x31, 0x60, 0x00, 0x55, 0x00],
        );
        // An EIP-7702 delegation to CALLS_OUT.
        contract(
            DELEGATED,
            [&[0xef, 0x01, 0x00][..], CALLS_OUT.as_slice()].concat(),
        );
        let head = ParentBlock {
            number: 1,
            hash: B256::repeat_byte(1),
            timestamp: 1_700_000_001,
            gas_used: 0,
            base_fee: 0,
        };
        (chain, Hot { state, head })
    }

    /// What the guard is asked, through the EVM and through `preflight`.
    fn asked(chain: &ChainSpec, hot: &Hot, tx: &TxEnvelope) -> (Vec<String>, Vec<String>, bool) {
        asked_of(chain, hot, tx, test_signer(0).address())
    }

    /// What the guard is asked about `sender`'s `tx`.
    fn asked_of(
        chain: &ChainSpec,
        hot: &Hot,
        tx: &TxEnvelope,
        sender: Address,
    ) -> (Vec<String>, Vec<String>, bool) {
        let through_evm = Arc::new(Recording {
            frames: Mutex::new(Vec::new()),
            deny: DENIED,
        });
        let env = tx_env(tx, sender).unwrap();
        let ctx = next_context(chain, &hot.head, Address::ZERO);
        let mut exec = BlockExecutor::with_env(chain.cfg_env(), ctx.block_env(), ctx, &hot.state);
        let evm_guard: SharedGuard = through_evm.clone();
        let _ = exec.transact_env_guarded(env, &evm_guard);
        let admitted = Arc::new(Recording {
            frames: Mutex::new(Vec::new()),
            deny: DENIED,
        });
        let guard: SharedGuard = admitted.clone();
        let denied = preflight(chain, hot, tx, sender, &guard, &ClosedCodes::default()).is_err();
        let evm = through_evm.frames.lock().clone();
        let pre = admitted.frames.lock().clone();
        (evm, pre, denied)
    }

    /// The contracts the load generator and the examples deploy: the
    /// token's calls are answered without executing; the helper that
    /// disperses ether calls out, so its calls are executed.
    #[test]
    fn the_shipped_token_is_answered_without_executing() {
        let code = |artifact: &str| {
            let v: serde_json::Value = serde_json::from_str(artifact).unwrap();
            let hex = v["deployedBytecode"].as_str().unwrap();
            Bytes::from(alloy_primitives::hex::decode(hex).unwrap())
        };
        assert!(is_closed(&code(include_str!(
            "../../contracts/out/BankToken.json"
        ))));
        assert!(!is_closed(&code(include_str!(
            "../../contracts/out/BenchKit.json"
        ))));
        assert!(!is_closed(&code(include_str!(
            "../../contracts/out/Forwarder.json"
        ))));
    }

    /// The guard is asked exactly what the EVM would ask it, whether the
    /// frame is answered directly (a wallet, a contract that cannot call
    /// out or read other accounts) or by executing, and a denial comes back
    /// as the guard's rule.
    #[test]
    fn admission_asks_the_guard_what_the_evm_would() {
        let (chain, hot) = setup();
        let key = test_signer(0);
        let data = || Bytes::from_static(&[1, 2]);
        let cases = [
            (
                "transfer to a wallet",
                signed_transfer_from(&key, 0, WALLET, 5, 0),
                true,
                false,
                1,
            ),
            (
                "transfer to a new account",
                signed_transfer_from(&key, 0, Address::repeat_byte(7), 5, 0),
                true,
                false,
                1,
            ),
            (
                "transfer to a closed account",
                signed_transfer_from(&key, 0, DENIED, 5, 0),
                true,
                true,
                1,
            ),
            (
                "transfer to a contract",
                signed_transfer_from(&key, 0, CONTRACT, 5, 0),
                true,
                false,
                1,
            ),
            (
                "call with data to a wallet",
                signed_call_from(&key, 0, WALLET, data(), 50_000),
                true,
                false,
                1,
            ),
            (
                "call into a contract",
                signed_call_from(&key, 0, CONTRACT, data(), 50_000),
                true,
                false,
                1,
            ),
            (
                "call into a precompile",
                signed_call_from(&key, 0, PRECOMPILE, data(), 50_000),
                true,
                false,
                1,
            ),
            (
                "call into code that only pushes look-alike bytes",
                signed_call_from(&key, 0, PUSHES_LOOKALIKES, data(), 50_000),
                true,
                false,
                1,
            ),
            (
                "call into a contract that calls out",
                signed_call_from(&key, 0, CALLS_OUT, data(), 100_000),
                false,
                false,
                2,
            ),
            (
                "transfer to a contract that calls out",
                signed_transfer_from(&key, 0, CALLS_OUT, 5, 0),
                false,
                false,
                // 21,000 gas: the call out runs out of gas before it starts.
                1,
            ),
            (
                "call into a contract that reads a balance",
                signed_call_from(&key, 0, READS_OUT, data(), 50_000),
                false,
                false,
                1,
            ),
            (
                "call into a delegated account",
                signed_call_from(&key, 0, DELEGATED, data(), 100_000),
                false,
                false,
                2,
            ),
        ];
        let codes = ClosedCodes::default();
        for (what, tx, direct, deny, frames) in cases {
            assert_eq!(
                only_frame(&hot, &tx, key.address(), &codes).is_some(),
                direct,
                "{what}"
            );
            let (evm, pre, denied) = asked(&chain, &hot, &tx);
            assert_eq!(evm.len(), frames, "{what}: {evm:?}");
            assert_eq!(pre, evm, "{what}");
            assert_eq!(denied, deny, "{what}");
        }
        // A sender the chain has never seen, fee-free: as an empty account
        // (the EVM creates it), answered directly; with a fee it cannot
        // pay, executed (the EVM refuses it before any frame).
        let stranger = test_signer(7);
        assert!(!hot.state.accounts.contains_key(&stranger.address()));
        for (fee, direct, frames) in [(0, true, 1), (1, false, 0)] {
            let mut call = signed_call_from(&stranger, 0, CONTRACT, data(), 50_000);
            if fee > 0 {
                call = signed_transfer_from(&stranger, 0, CONTRACT, 0, fee);
            }
            assert_eq!(
                only_frame(&hot, &call, stranger.address(), &codes).is_some(),
                direct
            );
            let (evm, pre, denied) = asked_of(&chain, &hot, &call, stranger.address());
            assert_eq!(evm.len(), frames, "{evm:?}");
            assert_eq!(pre, evm);
            assert!(!denied);
        }
        // Asked again, the remembered answers are the same.
        for (address, closed) in [(CONTRACT, true), (CALLS_OUT, false), (READS_OUT, false)] {
            let tx = signed_call_from(&key, 0, address, data(), 50_000);
            assert_eq!(
                only_frame(&hot, &tx, key.address(), &codes).is_some(),
                closed
            );
        }
        // More than the sender holds: the EVM refuses it before any frame,
        // so the guard is not asked (the pool answers for the funds).
        let broke = signed_transfer_from(&key, 0, DENIED, 2_000_000_000_000_000_000, 0);
        assert!(only_frame(&hot, &broke, key.address(), &ClosedCodes::default()).is_none());
        let (evm, pre, denied) = asked(&chain, &hot, &broke);
        assert!(
            evm.is_empty() && pre.is_empty() && !denied,
            "{evm:?} {pre:?}"
        );
        let tx = signed_transfer_from(&key, 0, DENIED, 5, 0);
        let guard: SharedGuard = Arc::new(Recording {
            frames: Mutex::new(Vec::new()),
            deny: DENIED,
        });
        match preflight(
            &chain,
            &hot,
            &tx,
            key.address(),
            &guard,
            &ClosedCodes::default(),
        ) {
            Err(MempoolError::Denied { rule, reason }) => {
                assert_eq!(rule, "no-entry");
                assert!(reason.contains("is closed"), "{reason}");
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}
