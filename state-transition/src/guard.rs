//! Call-frame guard: lets the host veto any call frame of a transaction.
//!
//! Policy decisions belong to the host (access control), but only the EVM
//! knows every inner CALL, DELEGATECALL, STATICCALL and CREATE a transaction
//! makes. The executor asks a [`CallGuard`] before each frame starts; one
//! denial rejects the whole transaction, because a contract could otherwise
//! catch the revert of a forbidden inner call and carry on.
//!
//! Replay and proving run without a guard: what is in the block log was
//! allowed when it was sequenced, and policies are not part of the state.

use alloc::{string::String, sync::Arc};
use alloy_primitives::{Address, Bytes, U256};
use revm::{
    context::ContextTr,
    context_interface::JournalTr,
    interpreter::{
        CallInputs, CallOutcome, CallScheme, CreateInputs, CreateOutcome, Gas, InstructionResult,
        InterpreterResult,
    },
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
}

/// A guard shared between the submitter and the block producer.
pub type SharedGuard = Arc<dyn CallGuard>;

/// revm inspector that consults a [`CallGuard`] at every frame start.
#[derive(Default)]
pub struct GuardInspector {
    guard: Option<SharedGuard>,
    denial: Option<Denial>,
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
        }
    }

    /// The first denial seen, if any.
    pub fn take_denial(&mut self) -> Option<Denial> {
        self.denial.take()
    }

    /// Checks a frame; on the first denial, records it. Later frames are
    /// refused too (without re-asking) so the transaction unwinds quickly.
    fn admit(&mut self, frame: &Frame<'_>) -> bool {
        if self.denial.is_some() {
            return false;
        }
        let Some(guard) = &self.guard else {
            return true;
        };
        match guard.check(frame) {
            Ok(()) => true,
            Err(d) => {
                self.denial = Some(d);
                false
            }
        }
    }
}

fn refused(gas_limit: u64) -> InterpreterResult {
    InterpreterResult::new(InstructionResult::Revert, Bytes::new(), Gas::new(gas_limit))
}

impl<CTX: ContextTr> Inspector<CTX> for GuardInspector {
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
        };
        if self.admit(&frame) {
            None
        } else {
            Some(CreateOutcome::new(refused(inputs.gas_limit()), None))
        }
    }
}
