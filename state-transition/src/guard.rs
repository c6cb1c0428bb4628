//! Call-frame guard: lets the host veto any call frame of a transaction.
//!
//! Policy decisions belong to the host (access control), but only the EVM
//! knows every inner CALL, DELEGATECALL, STATICCALL and CREATE a transaction
//! makes. The executor asks a [`CallGuard`] before each frame starts; one
//! denial rejects the whole transaction, because a contract could otherwise
//! catch the revert of a forbidden inner call and carry on.
//!
//! Opcodes that observe another account without entering it (`BALANCE`,
//! `EXTCODESIZE`, `EXTCODECOPY`, `EXTCODEHASH`) are put to the guard as
//! [`AccountRead`]s: a call frame check alone would let a contract read any
//! wallet's balance or any contract's code. An account's own balance
//! (`SELFBALANCE`) and block hashes are not another account's state.
//!
//! Replay and proving run without a guard: what is in the block log was
//! allowed when it was sequenced, and policies are not part of the state.

use alloc::{string::String, sync::Arc, vec::Vec};
use alloy_primitives::{Address, Bytes, B256, KECCAK256_EMPTY, U256};
use revm::{
    context::ContextTr,
    context_interface::JournalTr,
    database_interface::Database,
    interpreter::{
        interpreter_types::{InputsTr, Jumps},
        CallInputs, CallOutcome, CallScheme, CreateInputs, CreateOutcome, Gas, InstructionResult,
        Interpreter, InterpreterResult,
    },
    state::EvmState,
    Inspector,
};

/// How a frame was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// CALL (or the transaction's own call).
    Call,
    /// CALLCODE.
    CallCode,
    /// DELEGATECALL: code of `code_address` runs in `target`'s storage.
    DelegateCall,
    /// STATICCALL: a read that cannot change state.
    StaticCall,
    /// CREATE / CREATE2 (or a deployment transaction).
    Create,
}

impl FrameKind {
    /// Lower-case name, as policies see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::CallCode => "callcode",
            Self::DelegateCall => "delegatecall",
            Self::StaticCall => "staticcall",
            Self::Create => "create",
        }
    }
}

/// One call frame about to start.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// 0 for the transaction's own frame, 1 for its first inner call, …
    pub depth: usize,
    /// How it was entered.
    pub kind: FrameKind,
    /// Account making the call (`msg.sender` inside the frame).
    pub caller: Address,
    /// Account whose storage the frame runs against; zero for creations.
    pub target: Address,
    /// Account whose code runs (differs from `target` for delegate calls).
    pub code_address: Address,
    /// Ether moved by the frame.
    pub value: U256,
    /// Call data, or init code for creations.
    pub input: &'a [u8],
    /// With empty call data: `code_address` holds code, so entering it runs
    /// that code (`receive` / `fallback`) rather than moving ether to a
    /// wallet. Looked up only for empty call data, the one case it decides;
    /// false for frames with call data and for creations.
    pub has_code: bool,
}

/// An opcode that reads another account's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// BALANCE.
    Balance,
    /// EXTCODESIZE.
    CodeSize,
    /// EXTCODECOPY.
    CodeCopy,
    /// EXTCODEHASH.
    CodeHash,
}

impl ReadKind {
    /// The opcode that performs the read, if `opcode` is one.
    #[inline(always)]
    pub fn of(opcode: u8) -> Option<Self> {
        match opcode {
            0x31 => Some(Self::Balance),
            0x3b => Some(Self::CodeSize),
            0x3c => Some(Self::CodeCopy),
            0x3f => Some(Self::CodeHash),
            _ => None,
        }
    }

    /// Upper-case opcode name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Balance => "BALANCE",
            Self::CodeSize => "EXTCODESIZE",
            Self::CodeCopy => "EXTCODECOPY",
            Self::CodeHash => "EXTCODEHASH",
        }
    }
}

/// A running frame's opcode about to read `account`.
#[derive(Debug, Clone, Copy)]
pub struct AccountRead {
    /// Depth of the frame executing the opcode.
    pub depth: usize,
    /// Which read.
    pub kind: ReadKind,
    /// The frame's own account (`address(this)`).
    pub reader: Address,
    /// The account read.
    pub account: Address,
}

/// A contract that a transaction created (at any depth) and that survived
/// it: not reverted, not self-destructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedContract {
    /// Its address.
    pub address: Address,
    /// The account that executed the creation (the signer for a deployment
    /// transaction, a factory for CREATE/CREATE2); `None` when the
    /// transaction ran without a guard (replay), which does not watch frames.
    pub creator: Option<Address>,
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Stable id of the rule that decided (for audit and for the caller).
    pub rule: String,
    /// Human-readable explanation.
    pub reason: String,
}

/// Decides whether a frame may run.
pub trait CallGuard: Send + Sync {
    /// `Ok` lets the frame run; `Err` rejects the transaction.
    fn check(&self, frame: &Frame<'_>) -> Result<(), Denial>;

    /// `Ok` lets the opcode read the account; `Err` rejects the transaction.
    fn check_read(&self, read: &AccountRead) -> Result<(), Denial> {
        let _ = read;
        Ok(())
    }

    /// The transaction was included in a block being built and created
    /// `contracts`; called before the next transaction of the block runs.
    /// Simulations (eth_call, pre-flight checks) never call it.
    fn included(&self, contracts: &[CreatedContract]) {
        let _ = contracts;
    }
}

/// A guard shared between the submitter and the block producer.
pub type SharedGuard = Arc<dyn CallGuard>;

/// revm inspector that consults a [`CallGuard`] at every frame start.
#[derive(Default)]
pub struct GuardInspector {
    guard: Option<SharedGuard>,
    denial: Option<Denial>,
    /// Successful creations and their creators, reverted ones included:
    /// the committed state says which survived.
    creations: Vec<(Address, Address)>,
}

impl core::fmt::Debug for GuardInspector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuardInspector")
            .field("guarded", &self.guard.is_some())
            .field("denial", &self.denial)
            .finish()
    }
}

impl GuardInspector {
    /// Inspector for one transaction.
    pub fn new(guard: SharedGuard) -> Self {
        Self {
            guard: Some(guard),
            denial: None,
            creations: Vec::new(),
        }
    }

    /// The creator of `contract` in this transaction, if a frame created it.
    pub fn creator_of(&self, contract: &Address) -> Option<Address> {
        self.creations
            .iter()
            .rev()
            .find(|(a, _)| a == contract)
            .map(|(_, c)| *c)
    }

    /// The first denial seen, if any.
    pub fn take_denial(&mut self) -> Option<Denial> {
        self.denial.take()
    }

    /// Checks a frame; on the first denial, records it. Later frames are
    /// refused too (without re-asking) so the transaction unwinds quickly.
    fn admit(&mut self, frame: &Frame<'_>) -> bool {
        self.decide(|g| g.check(frame))
    }

    fn decide(&mut self, ask: impl FnOnce(&dyn CallGuard) -> Result<(), Denial>) -> bool {
        if self.denial.is_some() {
            return false;
        }
        let Some(guard) = &self.guard else {
            return true;
        };
        match ask(guard.as_ref()) {
            Ok(()) => true,
            Err(d) => {
                self.denial = Some(d);
                false
            }
        }
    }
}

/// Contracts that `state` (one transaction's committed changes) created:
/// accounts created in it that kept code and were not destroyed. Sorted,
/// so every run of a block lists them alike.
pub fn created_contracts(
    state: &EvmState,
    creator: impl Fn(&Address) -> Option<Address>,
) -> Vec<CreatedContract> {
    let mut out: Vec<CreatedContract> = state
        .iter()
        .filter(|(_, a)| {
            a.is_created()
                && !a.is_selfdestructed()
                && a.info.code_hash != KECCAK256_EMPTY
                && a.info.code_hash != B256::ZERO
        })
        .map(|(address, _)| CreatedContract {
            address: *address,
            creator: creator(address),
        })
        .collect();
    out.sort_unstable_by_key(|c| c.address);
    out
}

/// Whether `address` holds code as this transaction sees it: the journal
/// first (an account created earlier in the transaction), the database
/// otherwise. Reading the database does not warm the account, so gas is
/// unaffected. An unreadable account counts as code: the stricter rule.
fn has_code<CTX: ContextTr>(context: &mut CTX, address: Address) -> bool
where
    CTX::Journal: JournalTr<State = EvmState>,
{
    let journal = context.journal_mut();
    if let Some(account) = journal.evm_state().get(&address) {
        return account.info.code_hash != KECCAK256_EMPTY && account.info.code_hash != B256::ZERO;
    }
    match journal.db_mut().basic(address) {
        Ok(Some(info)) => info.code_hash != KECCAK256_EMPTY && info.code_hash != B256::ZERO,
        Ok(None) => false,
        Err(_) => true,
    }
}

fn refused(gas_limit: u64) -> InterpreterResult {
    InterpreterResult::new(InstructionResult::Revert, Bytes::new(), Gas::new(gas_limit))
}

impl<CTX: ContextTr> Inspector<CTX> for GuardInspector
where
    CTX::Journal: JournalTr<State = EvmState>,
{
    #[inline(always)]
    fn step(&mut self, interp: &mut Interpreter, context: &mut CTX) {
        // Runs before every opcode: the opcode test comes first, since the
        // interpreter is about to read that byte anyway.
        let Some(kind) = ReadKind::of(interp.bytecode.opcode()) else {
            return;
        };
        if self.guard.is_none() {
            return;
        }
        // An empty stack underflows in the instruction itself.
        let Some(top) = interp.stack.data().last() else {
            return;
        };
        let read = AccountRead {
            depth: context.journal_ref().depth(),
            kind,
            reader: interp.input.target_address(),
            account: Address::from_word(B256::from(top.to_be_bytes::<32>())),
        };
        if !self.decide(|g| g.check_read(&read)) {
            interp.halt(InstructionResult::Revert);
        }
    }

    fn create_end(
        &mut self,
        _context: &mut CTX,
        inputs: &CreateInputs,
        outcome: &mut CreateOutcome,
    ) {
        if self.guard.is_some() && outcome.result.is_ok() {
            if let Some(address) = outcome.address {
                self.creations.push((address, inputs.caller()));
            }
        }
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let input = inputs.input.bytes(context);
        // Only empty call data is ambiguous (a transfer to a wallet, or a
        // contract's receive/fallback); looking code up for every frame
        // would cost each ERC-20 transfer a state read.
        let has_code =
            self.guard.is_some() && input.is_empty() && has_code(context, inputs.bytecode_address);
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
            has_code,
        };
        if self.admit(&frame) {
            None
        } else {
            Some(CallOutcome::new(
                refused(inputs.gas_limit),
                inputs.return_memory_offset.clone(),
            ))
        }
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
        if self.admit(&frame) {
            None
        } else {
            Some(CreateOutcome::new(refused(inputs.gas_limit()), None))
        }
    }
}
