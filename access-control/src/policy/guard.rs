//! The policy engine as the EVM's call guard: every frame of a transaction
//! (inner calls included) is a `call`, `read`, `transfer` or `deploy`
//! decision about the caller, in-process, with no network hop.

use super::{AccountFacts, Circumstances, FrameFacts, PolicyEngine, Resource};
use crate::principal::Caller;
use alloy_primitives::{Address, U256};
use state_transition::{CallGuard, Denial, Frame, FrameKind};
use std::sync::Arc;

/// Facts about addresses (which are contracts, who deployed them).
pub trait AccountDirectory: Send + Sync {
    /// What is known about `address`.
    fn account(&self, address: &Address) -> AccountFacts;
}

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
}

impl std::fmt::Debug for PolicyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyGuard")
            .field("principal", &self.caller.principal.key())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Precompiles are plumbing (hashing, signature recovery), not resources.
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
        }
    }

    /// The action and resource a frame amounts to.
    fn classify(&self, frame: &Frame<'_>) -> (&'static str, Resource) {
        if frame.kind == FrameKind::Create {
            return ("deploy", Resource::Node);
        }
        // A delegate call runs another contract's code: that code is what
        // is being used, so it is the resource.
        let subject = match frame.kind {
            FrameKind::DelegateCall | FrameKind::CallCode => frame.code_address,
            _ => frame.target,
        };
        let resource = Resource::Account(self.directory.account(&subject));
        let action = match self.mode {
            ExecMode::Read => "read",
            ExecMode::Write if frame.input.is_empty() => "transfer",
            ExecMode::Write => "call",
        };
        (action, resource)
    }
}

impl CallGuard for PolicyGuard {
    fn check(&self, frame: &Frame<'_>) -> Result<(), Denial> {
        if frame.kind != FrameKind::Create && is_precompile(&frame.code_address) {
            return Ok(());
        }
        // Read-only frames moving no value inside a write are views (e.g. a
        // token asking an oracle); they still need a `read` permit.
        let (mut action, resource) = self.classify(frame);
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
