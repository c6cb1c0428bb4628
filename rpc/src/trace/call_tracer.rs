//! geth's `callTracer`: the tree of call frames a transaction made, with
//! gas, input, output, and the error and revert reason of a failed frame.

use alloy_primitives::{Address, Bytes, U256, U64};
use serde::Serialize;
use state_transition::revm::{
    context::ContextTr,
    interpreter::{
        CallInputs, CallOutcome, CallScheme, CreateInputs, CreateOutcome, CreateScheme,
        InstructionResult, InterpreterResult,
    },
    Inspector,
};

/// One frame, as geth's callTracer writes it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Frame {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) from: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<U256>,
    pub(crate) gas: U64,
    pub(crate) gas_used: U64,
    pub(crate) input: Bytes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revert_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) calls: Vec<Frame>,
}

/// Builds the frame tree as the EVM enters and leaves frames.
#[derive(Debug, Default)]
pub(crate) struct CallTracer {
    /// Frames entered and not yet left, outermost first.
    open: Vec<Frame>,
    /// Frames deeper than the top one are not kept (`onlyTopCall`).
    only_top: bool,
    /// Depth of frames skipped under `only_top`.
    skipped: usize,
    root: Option<Frame>,
}

impl CallTracer {
    pub(crate) fn new(only_top: bool) -> Self {
        Self {
            only_top,
            ..Self::default()
        }
    }

    /// The transaction's top frame, once it has ended.
    pub(crate) fn take(&mut self) -> Option<Frame> {
        self.root.take()
    }

    fn enter(&mut self, frame: Frame) {
        if self.only_top && !self.open.is_empty() {
            self.skipped += 1;
        } else {
            self.open.push(frame);
        }
    }

    fn leave(&mut self, result: &InterpreterResult, created: Option<Address>) {
        if self.skipped > 0 {
            self.skipped -= 1;
            return;
        }
        let Some(mut frame) = self.open.pop() else {
            return;
        };
        frame.gas_used = U64::from(frame.gas.to::<u64>().saturating_sub(result.gas.remaining()));
        if let Some(address) = created {
            frame.to = Some(address);
        }
        if !result.output.is_empty() {
            frame.output = Some(result.output.clone());
        }
        if !result.result.is_ok() {
            frame.error = Some(error_text(result.result));
            if result.result.is_revert() {
                frame.revert_reason = crate::call::decode_revert_reason(&result.output);
            }
            // A failed creation deployed nothing.
            if frame.kind.starts_with("CREATE") {
                frame.to = None;
            }
        }
        match self.open.last_mut() {
            Some(parent) => parent.calls.push(frame),
            None => self.root = Some(frame),
        }
    }
}

/// geth's words for why a frame failed.
fn error_text(r: InstructionResult) -> String {
    use InstructionResult as I;
    match r {
        r if r.is_revert() => "execution reverted".into(),
        I::OutOfGas
        | I::MemoryOOG
        | I::MemoryLimitOOG
        | I::PrecompileOOG
        | I::InvalidOperandOOG => "out of gas".into(),
        I::OpcodeNotFound | I::InvalidFEOpcode => "invalid opcode".into(),
        I::StackUnderflow => "stack underflow".into(),
        I::StackOverflow => "stack limit reached".into(),
        I::CallTooDeep => "max call depth exceeded".into(),
        I::OutOfFunds => "insufficient balance for transfer".into(),
        I::CreateCollision => "contract address collision".into(),
        I::StateChangeDuringStaticCall => "write protection".into(),
        other => format!("{other:?}"),
    }
}

impl<CTX: ContextTr> Inspector<CTX> for CallTracer {
    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let (kind, to, value) = match inputs.scheme {
            CallScheme::Call => ("CALL", inputs.target_address, Some(inputs.value.get())),
            CallScheme::CallCode => (
                "CALLCODE",
                inputs.bytecode_address,
                Some(inputs.value.get()),
            ),
            CallScheme::DelegateCall => ("DELEGATECALL", inputs.bytecode_address, None),
            CallScheme::StaticCall => ("STATICCALL", inputs.target_address, None),
        };
        self.enter(Frame {
            kind,
            from: inputs.caller,
            to: Some(to),
            value,
            gas: U64::from(inputs.gas_limit),
            gas_used: U64::ZERO,
            input: inputs.input.bytes(context),
            output: None,
            error: None,
            revert_reason: None,
            calls: Vec::new(),
        });
        None
    }

    fn call_end(&mut self, _context: &mut CTX, _inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.leave(&outcome.result, None);
    }

    fn create(&mut self, _context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let kind = match inputs.scheme() {
            CreateScheme::Create2 { .. } => "CREATE2",
            _ => "CREATE",
        };
        self.enter(Frame {
            kind,
            from: inputs.caller(),
            to: None,
            value: Some(inputs.value()),
            gas: U64::from(inputs.gas_limit()),
            gas_used: U64::ZERO,
            input: inputs.init_code().clone(),
            output: None,
            error: None,
            revert_reason: None,
            calls: Vec::new(),
        });
        None
    }

    fn create_end(
        &mut self,
        _context: &mut CTX,
        _inputs: &CreateInputs,
        outcome: &mut CreateOutcome,
    ) {
        self.leave(&outcome.result, outcome.address);
    }
}
