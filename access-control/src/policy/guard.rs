//! The policy engine as the EVM's call guard: every frame of a transaction
//! (inner calls included) is a `call`, `read`, `transfer` or `deploy`
//! decision about the caller, and every opcode that reads another account
//! (`BALANCE`, `EXTCODE*`) is a `view_account` decision, exactly as
//! `eth_getBalance` / `eth_getCode` of that account would be; in-process,
//! with no network hop.

use super::request::push_bytes;
use super::Caller;
use super::{
    AccountFacts, Circumstances, Decision, FrameFacts, PolicyBundle, PolicyEngine, Resource,
};
use alloy_primitives::{keccak256, Address, U256};
use parking_lot::Mutex;
use state_transition::{AccountRead, CallGuard, CreatedContract, Denial, Frame, FrameKind};
use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

/// Facts about addresses (which are contracts, who deployed them).
pub trait AccountDirectory: Send + Sync {
    /// What is known about `address`.
    fn account(&self, address: &Address) -> AccountFacts;

    /// `contracts` were created by a transaction signed by `signer` for
    /// `principal` of `org`, in a block being built.
    fn created(&self, contracts: &[CreatedContract], signer: Address, principal: &str, org: &str) {
        let _ = (contracts, signer, principal, org);
    }
}

/// Most answers a memoizing guard keeps (one estimateGas search).
const MEMO_CAP: usize = 4_096;

/// Whether frames are writes (a transaction, eth_estimateGas) or reads
/// (eth_call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// State may change.
    Write,
    /// Simulation whose effects are discarded.
    Read,
}

/// Checks each call frame of one caller's transaction against the policies.
pub struct PolicyGuard {
    engine: Arc<PolicyEngine>,
    caller: Caller,
    directory: Arc<dyn AccountDirectory>,
    mode: ExecMode,
    signer: Address,
    spent_today_gwei: u64,
    view_all: OnceLock<bool>,
    /// Answers by question, for a guard that sees the same frames again:
    /// eth_estimateGas re-runs the call for its search, and a transaction
    /// runs at admission and again in its block. Each distinct question is
    /// decided, and audited, once per policy version: an answer holds only
    /// while the policies it was decided under are in force, and a frame
    /// that differs in the block (state changed since admission) is a new
    /// question.
    memo: Option<Mutex<Memo>>,
}

/// A memoizing guard's answers and the policies they were decided under.
#[derive(Default)]
struct Memo {
    bundle: Option<Arc<PolicyBundle>>,
    answers: HashMap<Vec<u8>, Result<(), Denial>>,
}

impl std::fmt::Debug for PolicyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGuard")
            .field("principal", &self.caller.principal.key())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Precompiles are plumbing (hashing, signature recovery), not resources;
/// value sent to them is still value sent.
fn is_precompile(a: &Address) -> bool {
    let b = a.as_slice();
    b[..18].iter().all(|x| *x == 0) && u16::from_be_bytes([b[18], b[19]]) <= 0x11
}

impl PolicyGuard {
    /// A guard for `caller`'s transaction signed by `signer`.
    pub fn new(
        engine: Arc<PolicyEngine>,
        caller: Caller,
        directory: Arc<dyn AccountDirectory>,
        mode: ExecMode,
        signer: Address,
        spent_today_gwei: u64,
    ) -> Self {
        Self {
            engine,
            caller,
            directory,
            mode,
            signer,
            spent_today_gwei,
            view_all: OnceLock::new(),
            memo: None,
        }
    }

    /// Decides each distinct question once (see `memo`).
    pub fn memoized(mut self) -> Self {
        self.memo = Some(Mutex::new(Memo::default()));
        self
    }

    fn remembered(
        &self,
        key: impl FnOnce() -> Vec<u8>,
        decide: impl FnOnce() -> Result<(), Denial>,
    ) -> Result<(), Denial> {
        let Some(memo) = &self.memo else {
            return decide();
        };
        let key = key();
        let bundle = self.engine.bundle();
        {
            let mut memo = memo.lock();
            if !memo
                .bundle
                .as_ref()
                .is_some_and(|b| Arc::ptr_eq(b, &bundle))
            {
                // Policies were reloaded: every earlier answer is void.
                memo.answers.clear();
                memo.bundle = Some(bundle);
            }
            if let Some(known) = memo.answers.get(&key) {
                return known.clone();
            }
        }
        let answer = decide();
        let mut memo = memo.lock();
        if memo.answers.len() < MEMO_CAP {
            memo.answers.insert(key, answer.clone());
        }
        answer
    }

    /// The action and resource a frame amounts to; `facts` are the
    /// directory's facts about its [`subject`].
    fn classify(&self, frame: &Frame<'_>, facts: &AccountFacts) -> (&'static str, Resource) {
        if frame.kind == FrameKind::Create {
            return ("deploy", Resource::Node);
        }
        let subject = facts.address;
        let resource = Resource::Account(facts.clone());
        // Empty call data runs a contract's receive/fallback: that is a call
        // of its code, not a plain transfer. Value into a precompile is a
        // transfer whatever its input.
        let action = match self.mode {
            ExecMode::Read => "read",
            ExecMode::Write if is_precompile(&subject) => "transfer",
            ExecMode::Write if frame.input.is_empty() && !frame.has_code => "transfer",
            ExecMode::Write => "call",
        };
        (action, resource)
    }

    /// Whether the caller may see `address`'s balance and code, by the
    /// rules of eth_getBalance / eth_getCode.
    fn may_view(&self, address: &Address) -> Result<(), Decision> {
        if self.caller.owns(address) {
            return Ok(());
        }
        let view_all = *self.view_all.get_or_init(|| {
            self.engine
                .decide(
                    &self.caller,
                    "view_all",
                    &Resource::Node,
                    &Circumstances::Rpc,
                )
                .allowed
        });
        if view_all {
            return Ok(());
        }
        let d = self.engine.decide(
            &self.caller,
            "view_account",
            &Resource::Account(self.directory.account(address)),
            &Circumstances::Rpc,
        );
        if d.allowed {
            Ok(())
        } else {
            Err(d)
        }
    }

    fn decide_frame(&self, frame: &Frame<'_>, facts: &AccountFacts) -> Result<(), Denial> {
        let precompile = frame.kind != FrameKind::Create && is_precompile(&frame.code_address);
        if precompile && frame.value == U256::ZERO {
            return Ok(());
        }
        // Read-only frames moving no value inside a write are views (e.g. a
        // token asking an oracle); they still need a `read` permit.
        let (mut action, resource) = self.classify(frame, facts);
        if action == "call" && frame.kind == FrameKind::StaticCall && frame.value == U256::ZERO {
            action = "read";
        }
        let decoded = self
            .engine
            .bundle()
            .abi
            .decode(frame.input)
            .map(|(f, args)| (f.name.clone(), args));
        let (function, args) = match decoded {
            Some((f, a)) => (Some(f), a),
            None => (None, Vec::new()),
        };
        let facts = FrameFacts {
            kind: frame.kind.as_str(),
            depth: frame.depth as u64,
            caller: frame.caller,
            signer: self.signer,
            selector: frame.input.get(..4).and_then(|s| s.try_into().ok()),
            function,
            args,
            value: frame.value,
            spent_today_gwei: self.spent_today_gwei,
        };
        let decision = self.engine.decide(
            &self.caller,
            action,
            &resource,
            &Circumstances::Frame(facts),
        );
        if decision.allowed {
            return Ok(());
        }
        let target = match &resource {
            Resource::Account(a) => format!(" on {:#x}", a.address),
            _ => String::new(),
        };
        let what = match frame.input.get(..4) {
            Some(sel) if action != "deploy" => format!(" selector 0x{}", hex::encode(sel)),
            _ => String::new(),
        };
        Err(Denial {
            rule: decision.rule,
            reason: format!(
                "{} may not {action}{target}{what} (frame depth {}, {})",
                self.caller.principal,
                frame.depth,
                frame.kind.as_str()
            ),
        })
    }
}

/// The account a frame uses: a delegate call runs another contract's code,
/// so that code is what is being used.
fn subject(frame: &Frame<'_>) -> Address {
    match frame.kind {
        FrameKind::DelegateCall | FrameKind::CallCode => frame.code_address,
        _ => frame.target,
    }
}

/// What the directory knows of `facts`' account, for memo keys: a contract
/// deployed between admission and the block is a different resource.
fn push_facts(buf: &mut Vec<u8>, facts: &AccountFacts) {
    buf.push(u8::from(facts.is_contract));
    buf.extend_from_slice(facts.deployer.unwrap_or_default().as_slice());
    push_bytes(buf, facts.deployer_org.as_bytes());
}

/// Call data up to this long is part of a memo key as it is; longer call
/// data by its keccak256, so that a guard's kept questions stay small.
const INPUT_KEPT_WHOLE: usize = 256;

/// The memo key of a frame: everything its decision depends on, the
/// directory's facts about its subject included. The key is the facts
/// themselves, not a hash of them, so equal keys are equal questions (the
/// map compares whole keys); each transaction's frames are keyed twice, at
/// admission and in its block, and two keccak256 rounds per frame cost
/// more than the map's own hashing of a couple of hundred bytes.
fn frame_key(frame: &Frame<'_>, subject: &AccountFacts) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128 + frame.input.len().min(INPUT_KEPT_WHOLE));
    push_facts(&mut buf, subject);
    buf.push(frame.kind as u8);
    buf.push(u8::from(frame.has_code));
    buf.extend_from_slice(&(frame.depth as u64).to_be_bytes());
    buf.extend_from_slice(frame.caller.as_slice());
    buf.extend_from_slice(frame.target.as_slice());
    buf.extend_from_slice(frame.code_address.as_slice());
    buf.extend_from_slice(&frame.value.to_be_bytes::<32>());
    if frame.input.len() <= INPUT_KEPT_WHOLE {
        buf.push(0);
        push_bytes(&mut buf, frame.input);
    } else {
        buf.push(1);
        buf.extend_from_slice(keccak256(frame.input).as_slice());
    }
    buf
}

impl CallGuard for PolicyGuard {
    fn check(&self, frame: &Frame<'_>) -> Result<(), Denial> {
        // Looked up once: the memo key and the decision both need them.
        let facts = self.directory.account(&subject(frame));
        self.remembered(
            || frame_key(frame, &facts),
            || self.decide_frame(frame, &facts),
        )
    }

    fn check_read(&self, read: &AccountRead) -> Result<(), Denial> {
        // Its own account and the signer's are the frame's business;
        // precompiles hold no one's state.
        if read.account == read.reader
            || read.account == self.signer
            || is_precompile(&read.account)
        {
            return Ok(());
        }
        // Tagged apart from frame keys, which start with a facts byte of
        // 0 or 1.
        let key = || {
            let mut buf = Vec::with_capacity(96);
            buf.push(2);
            buf.extend_from_slice(read.account.as_slice());
            push_facts(&mut buf, &self.directory.account(&read.account));
            buf
        };
        self.remembered(key, || {
            self.may_view(&read.account).map_err(|d| Denial {
                rule: d.rule,
                reason: format!(
                    "{} may not view account {:#x} ({} at frame depth {})",
                    self.caller.principal,
                    read.account,
                    read.kind.as_str(),
                    read.depth
                ),
            })
        })
    }

    fn included(&self, contracts: &[CreatedContract]) {
        self.directory.created(
            contracts,
            self.signer,
            &self.caller.principal.key(),
            &self.caller.principal.org,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        policy::test_support::{shipped_policies_copy, Counting},
        principal::{Principal, PrincipalKind},
    };
    use state_transition::ReadKind;
    use std::{
        path::Path,
        sync::atomic::{AtomicUsize, Ordering},
    };

    const WALLET: Address = Address::repeat_byte(0xaa);
    const FOREIGN_WALLET: Address = Address::repeat_byte(0xbb);
    const BANK_A_CONTRACT: Address = Address::repeat_byte(0xca);

    struct Directory;

    impl AccountDirectory for Directory {
        fn account(&self, address: &Address) -> AccountFacts {
            let contract = *address == BANK_A_CONTRACT;
            AccountFacts {
                address: *address,
                is_contract: contract,
                deployer: contract.then_some(Address::repeat_byte(0xde)),
                deployer_org: if contract {
                    "bank-a".into()
                } else {
                    String::new()
                },
            }
        }
    }

    fn engine() -> (Arc<PolicyEngine>, Arc<AtomicUsize>) {
        let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("../policies");
        let engine = PolicyEngine::load(&dir).unwrap();
        let count = Counting::on(&engine);
        (Arc::new(engine), count)
    }

    fn guard(role: &str, org: &str, mode: ExecMode) -> (PolicyGuard, Arc<AtomicUsize>) {
        let (engine, count) = engine();
        let caller = Caller::new(
            Arc::new(Principal {
                kind: PrincipalKind::ApiKey,
                id: format!("k_{role}"),
                roles: [role.to_owned()].into_iter().collect(),
                org: org.into(),
                expires_at: None,
            }),
            [WALLET].into_iter().collect(),
        );
        let g = PolicyGuard::new(engine, caller, Arc::new(Directory), mode, WALLET, 0);
        (g, count)
    }

    fn frame(target: Address, value: U256, input: &[u8], has_code: bool) -> Frame<'_> {
        Frame {
            depth: 0,
            kind: FrameKind::Call,
            caller: WALLET,
            target,
            code_address: target,
            value,
            input,
            has_code,
        }
    }

    fn eth(n: u64) -> U256 {
        U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
    }

    fn read(account: Address) -> AccountRead {
        AccountRead {
            depth: 1,
            kind: ReadKind::Balance,
            reader: Address::repeat_byte(0x99),
            account,
        }
    }

    #[test]
    fn empty_call_data_to_code_is_a_call_and_to_a_wallet_a_transfer() {
        let (g, _) = guard("trader", "bank-b", ExecMode::Write);
        let d = g
            .check(&frame(BANK_A_CONTRACT, U256::ZERO, &[], true))
            .unwrap_err();
        assert_eq!(d.rule, "exec.org-only-contracts");
        assert!(d.reason.contains("may not call"), "{}", d.reason);
        g.check(&frame(FOREIGN_WALLET, eth(1), &[], false)).unwrap();
    }

    #[test]
    fn value_into_a_precompile_is_a_capped_transfer() {
        let (g, _) = guard("trader", "bank-b", ExecMode::Write);
        let ecrecover = Address::with_last_byte(1);
        for input in [&[][..], &[0u8; 128][..]] {
            let d = g
                .check(&frame(ecrecover, eth(150), input, false))
                .unwrap_err();
            assert_eq!(d.rule, "exec.trader.value-cap-tx");
            g.check(&frame(ecrecover, eth(50), input, false)).unwrap();
            g.check(&frame(ecrecover, U256::ZERO, input, false))
                .unwrap();
        }
    }

    #[test]
    fn reading_another_account_needs_the_right_to_view_it() {
        let (g, _) = guard("service", "bank-b", ExecMode::Read);
        let d = g.check_read(&read(FOREIGN_WALLET)).unwrap_err();
        assert_eq!(d.rule, "default-deny");
        assert!(d.reason.contains("BALANCE"), "{}", d.reason);
        assert!(g.check_read(&read(BANK_A_CONTRACT)).is_err());
        // Its own wallet, the reading contract itself, precompiles.
        g.check_read(&read(WALLET)).unwrap();
        g.check_read(&read(Address::repeat_byte(0x99))).unwrap();
        g.check_read(&read(Address::with_last_byte(2))).unwrap();
        // Same organization's contracts, and everything for an auditor.
        let (same_org, _) = guard("service", "bank-a", ExecMode::Read);
        same_org.check_read(&read(BANK_A_CONTRACT)).unwrap();
        let (auditor, _) = guard("auditor", "bank-z", ExecMode::Read);
        auditor.check_read(&read(FOREIGN_WALLET)).unwrap();
    }

    #[test]
    fn a_memoizing_guard_decides_each_frame_once() {
        let (plain, count) = guard("service", "bank-b", ExecMode::Write);
        let f = frame(FOREIGN_WALLET, U256::ZERO, &[1, 2, 3, 4], false);
        plain.check(&f).unwrap();
        plain.check(&f).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 2);
        let (memo, count) = guard("service", "bank-b", ExecMode::Write);
        let memo = memo.memoized();
        memo.check(&f).unwrap();
        memo.check(&f).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 1);
        let denied = frame(BANK_A_CONTRACT, U256::ZERO, &[1], true);
        assert!(memo.check(&denied).is_err());
        assert!(memo.check(&denied).is_err(), "a denial is remembered too");
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    /// Frames differing anywhere in their call data are different
    /// questions, whether the data is kept whole in the key or by its hash
    /// (past `INPUT_KEPT_WHOLE` bytes); the same data asked again is not.
    #[test]
    fn a_memoizing_guard_tells_call_data_apart() {
        let (memo, count) = guard("service", "bank-b", ExecMode::Write);
        let memo = memo.memoized();
        let mut inputs = Vec::new();
        for len in [4, INPUT_KEPT_WHOLE, INPUT_KEPT_WHOLE + 1, 4_000] {
            let mut data = vec![7u8; len];
            inputs.push(data.clone());
            *data.last_mut().unwrap() = 8;
            inputs.push(data);
        }
        for input in inputs.iter().chain(inputs.iter()) {
            memo.check(&frame(FOREIGN_WALLET, U256::ZERO, input, false))
                .unwrap();
        }
        assert_eq!(count.load(Ordering::Relaxed), inputs.len());
        // A trader's token call and its forbidden mint differ in four bytes.
        let (trader, _) = guard("trader", "bank-a", ExecMode::Write);
        let trader = trader.memoized();
        let transfer = [0xa9, 0x05, 0x9c, 0xbb];
        let mint = [0x40, 0xc1, 0x0f, 0x19];
        trader
            .check(&frame(BANK_A_CONTRACT, U256::ZERO, &transfer, true))
            .unwrap();
        let d = trader
            .check(&frame(BANK_A_CONTRACT, U256::ZERO, &mint, true))
            .unwrap_err();
        assert_eq!(d.rule, "default-deny");
    }

    #[test]
    fn remembered_answers_end_with_the_policies_they_were_decided_under() {
        // A transaction's guard remembers from admission to its block; a
        // reload in between must be decided afresh.
        let dir = shipped_policies_copy();
        let engine = Arc::new(PolicyEngine::load(dir.path()).unwrap());
        let count = Counting::on(&engine);
        let caller = Caller::new(
            Arc::new(Principal {
                kind: PrincipalKind::ApiKey,
                id: "k_service".into(),
                roles: ["service".to_owned()].into_iter().collect(),
                org: "bank-b".into(),
                expires_at: None,
            }),
            [WALLET].into_iter().collect(),
        );
        let g = PolicyGuard::new(
            engine.clone(),
            caller,
            Arc::new(Directory),
            ExecMode::Write,
            WALLET,
            0,
        )
        .memoized();
        let f = frame(FOREIGN_WALLET, U256::ZERO, &[1, 2, 3, 4], false);
        g.check(&f).unwrap();
        g.check(&f).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 1);
        let cedar = dir.path().join("bank.cedar");
        let mut text = std::fs::read_to_string(&cedar).unwrap();
        text.push_str("\n// reloaded\n");
        std::fs::write(&cedar, text).unwrap();
        assert!(engine.reload().unwrap().changed);
        g.check(&f).unwrap();
        assert_eq!(
            count.load(Ordering::Relaxed),
            2,
            "decided again after the reload"
        );
        g.check(&f).unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
