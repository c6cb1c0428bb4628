//! The policy pre-check at admission: the transaction's call frames are put
//! to the submitter's guard against the produced head, so a denial is
//! answered at once instead of surfacing as a drop at block time. The guard
//! travels with the transaction and is asked again when the block is built,
//! against the state the transaction really runs on.
//!
//! A plain ether transfer to an account without code has exactly one frame,
//! known without running anything: the transaction's own call, at depth 0,
//! from the sender to the recipient, carrying the value and no data. For
//! such a transfer the frame is put to the guard directly: building an EVM
//! (context, journal, a commit into a state that is thrown away) cost more
//! than the policy question itself. Anything the EVM could turn into more
//! frames — call data, a creation, a recipient holding code (a contract or
//! a delegated wallet), an authorization list — is executed as before.

use crate::{hot::Hot, mempool::MempoolError, produce::next_context};
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_primitives::{Address, TxKind, B256, KECCAK256_EMPTY, U256};
use state_transition::{
    revm::state::AccountInfo, tx_env, BlockExecutor, ChainSpec, Frame, FrameKind, SharedGuard,
};

/// Puts `tx`'s frames to `guard` on top of `hot`, discarding any effects.
/// Only a denial is reported: nonce, balance and revert outcomes are for
/// the pool and the block to decide.
pub(crate) fn preflight(
    chain: &ChainSpec,
    hot: &Hot,
    tx: &TxEnvelope,
    sender: Address,
    guard: &SharedGuard,
) -> Result<(), MempoolError> {
    let denied = |d: state_transition::Denial| MempoolError::Denied {
        rule: d.rule,
        reason: d.reason,
    };
    if let Some(frame) = plain_transfer(hot, tx, sender) {
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

/// The one frame of `tx` when it is a plain transfer to an account without
/// code; `None` when only executing it can tell its frames.
fn plain_transfer<'a>(hot: &Hot, tx: &TxEnvelope, from: Address) -> Option<Frame<'a>> {
    let TxKind::Call(to) = tx.kind() else {
        return None;
    };
    if !tx.input().is_empty() || tx.authorization_list().is_some() {
        return None;
    }
    let no_code = |a: &AccountInfo| a.code_hash == KECCAK256_EMPTY || a.code_hash == B256::ZERO;
    if !hot.state.accounts.get(&to).is_none_or(no_code) {
        return None;
    }
    // The EVM refuses a sender that cannot pay the most the transaction
    // may cost, or that holds code, before any frame starts: such a
    // transaction is executed, so it is refused as before without a policy
    // question being asked (and audited).
    let sender = hot.state.accounts.get(&from)?;
    let most = U256::from(tx.gas_limit())
        .checked_mul(U256::from(tx.max_fee_per_gas()))?
        .checked_add(tx.value())?;
    if sender.balance < most || !no_code(sender) {
        return None;
    }
    Some(Frame {
        depth: 0,
        kind: FrameKind::Call,
        caller: from,
        target: to,
        code_address: to,
        value: tx.value(),
        input: &[],
        has_code: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{signed_call_from, signed_transfer_from, test_signer, TEST_CHAIN_ID};
    use alloy_primitives::{Bytes, U256};
    use parking_lot::Mutex;
    use state_transition::{
        revm::{
            primitives::hardfork::SpecId,
            state::{AccountInfo, Bytecode},
        },
        CallGuard, Denial, FeeMode, MemoryState, ParentBlock,
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
        // STOP: a contract that accepts ether and does nothing.
        let code = Bytes::from_static(&[0x00]);
        let bytecode = Bytecode::new_raw(code.clone());
        let hash = bytecode.hash_slow();
        state.accounts.insert(
            CONTRACT,
            AccountInfo {
                code_hash: hash,
                ..Default::default()
            },
        );
        state.codes.insert(hash, code);
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
        let sender = test_signer(0).address();
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
        let denied = preflight(chain, hot, tx, sender, &guard).is_err();
        let evm = through_evm.frames.lock().clone();
        let pre = admitted.frames.lock().clone();
        (evm, pre, denied)
    }

    /// The guard is asked exactly what the EVM would ask it, whether the
    /// frame is answered directly (a wallet) or by executing (a contract,
    /// call data), and a denial comes back as the guard's rule.
    #[test]
    fn admission_asks_the_guard_what_the_evm_would() {
        let (chain, hot) = setup();
        let key = test_signer(0);
        let cases = [
            (
                "transfer to a wallet",
                signed_transfer_from(&key, 0, WALLET, 5, 0),
                true,
                false,
            ),
            (
                "transfer to a new account",
                signed_transfer_from(&key, 0, Address::repeat_byte(7), 5, 0),
                true,
                false,
            ),
            (
                "transfer to a closed account",
                signed_transfer_from(&key, 0, DENIED, 5, 0),
                true,
                true,
            ),
            (
                "transfer to a contract",
                signed_transfer_from(&key, 0, CONTRACT, 5, 0),
                false,
                false,
            ),
            (
                "call with data",
                signed_call_from(&key, 0, WALLET, Bytes::from_static(&[1, 2]), 50_000),
                false,
                false,
            ),
        ];
        for (what, tx, direct, deny) in cases {
            assert_eq!(
                plain_transfer(&hot, &tx, key.address()).is_some(),
                direct,
                "{what}"
            );
            let (evm, pre, denied) = asked(&chain, &hot, &tx);
            assert_eq!(evm.len(), 1, "{what}: one frame");
            assert_eq!(pre, evm, "{what}");
            assert_eq!(denied, deny, "{what}");
        }
        // More than the sender holds: the EVM refuses it before any frame,
        // so the guard is not asked (the pool answers for the funds).
        let broke = signed_transfer_from(&key, 0, DENIED, 2_000_000_000_000_000_000, 0);
        assert!(plain_transfer(&hot, &broke, key.address()).is_none());
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
        match preflight(&chain, &hot, &tx, key.address(), &guard) {
            Err(MempoolError::Denied { rule, reason }) => {
                assert_eq!(rule, "no-entry");
                assert!(reason.contains("is closed"), "{reason}");
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}
