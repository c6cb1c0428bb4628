use crate::{
    block::{BlockContext, ChainSpec, SealedHeader},
    diff::StateDiff,
    engine::Engine,
    error::{StateError, TxRejection},
    guard::{created_contracts, CreatedContract, Denial, GuardInspector, SharedGuard},
    overlay::BlockState,
    reader::StateReader,
    transfer::{self, TransferRules, TRANSFER_GAS},
    tx_env::tx_env,
};
use alloc::{string::ToString, vec::Vec};
use alloy_consensus::{
    proofs::{calculate_receipt_root, calculate_transaction_root},
    Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction, TxEnvelope, TxType,
};
use alloy_primitives::{keccak256, Address, Bloom, B256};
use revm::{
    context::{
        result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction},
        BlockEnv, CfgEnv, TxEnv,
    },
    primitives::hardfork::SpecId,
    ExecuteCommitEvm, ExecuteEvm, InspectEvm,
};

/// A transaction that made it into the block, with its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedTx {
    /// The signed transaction.
    pub tx: TxEnvelope,
    /// Recovered signer.
    pub sender: Address,
    /// Typed receipt (status, cumulative gas, logs, bloom).
    pub receipt: ReceiptEnvelope,
    /// Gas used by this transaction alone.
    pub gas_used: u64,
    /// Address of the contract a creation deployed (set even if it reverted, as geth does).
    pub contract_address: Option<Address>,
    /// Price actually paid per gas.
    pub effective_gas_price: u128,
    /// Contracts it created at any depth that survived it (sorted). Not part
    /// of the block record: derived again by any re-execution.
    pub created: Vec<CreatedContract>,
}

/// Everything a block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The environment it ran in.
    pub context: BlockContext,
    /// Sealed header (hash binds transactions, receipts and the output hash).
    pub header: SealedHeader,
    /// Included transactions in order.
    pub txs: Vec<ExecutedTx>,
    /// Net state changes.
    pub diff: StateDiff,
    /// Hash over receipts root, bloom, gas used, transactions root and diff
    /// hash: replay recomputes and compares it.
    pub output_hash: B256,
}

/// Executes transactions one by one into a block.
///
/// A rejected transaction leaves no trace; the caller decides whether that
/// drops the transaction (block building) or fails the block (replay).
pub struct BlockExecutor<R: StateReader> {
    engine: Engine<R>,
    context: BlockContext,
    txs: Vec<ExecutedTx>,
    cumulative_gas: u64,
    /// Set when plain transfers may skip the EVM (`transfer.rs`): blocks of
    /// the chain's own rules, not the custom environments of simulations
    /// and conformance tests.
    transfers: Option<TransferRules>,
    /// How many transactions took that path.
    transfers_applied: usize,
}

impl<R: StateReader> core::fmt::Debug for BlockExecutor<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockExecutor")
            .field("context", &self.context)
            .field("txs", &self.txs.len())
            .field("cumulative_gas", &self.cumulative_gas)
            .finish()
    }
}

impl<R: StateReader> BlockExecutor<R> {
    /// Starts a block of `chain` with `context` over `reader`.
    pub fn new(chain: &ChainSpec, context: BlockContext, reader: R) -> Self {
        let cfg = chain.cfg_env();
        let transfers = TransferRules::new(
            &cfg,
            context.base_fee,
            context.beneficiary,
            context.gas_limit,
        );
        let block_env = context.block_env();
        let mut exec = Self::with_env(cfg, block_env, context, reader);
        exec.transfers = transfers;
        exec
    }

    /// Starts a block with explicit revm environments (conformance tests use
    /// the fixtures' own block and fork settings).
    pub fn with_env(cfg: CfgEnv, block_env: BlockEnv, context: BlockContext, reader: R) -> Self {
        let state_clear = cfg.spec.is_enabled_in(SpecId::SPURIOUS_DRAGON);
        Self {
            engine: Engine::new(BlockState::new(reader, state_clear), cfg, block_env),
            context,
            txs: Vec::new(),
            cumulative_gas: 0,
            transfers: None,
            transfers_applied: 0,
        }
    }

    /// Executes every transaction through revm, plain transfers included:
    /// the reference the shortcut is tested against.
    pub fn without_transfer_shortcut(mut self) -> Self {
        self.transfers = None;
        self
    }

    /// How many of the transactions so far were plain transfers applied
    /// without the EVM.
    pub fn transfers_applied(&self) -> usize {
        self.transfers_applied
    }

    /// Makes room for `n` more transactions. Each executed transaction is
    /// several hundred bytes, and a vector grown by doubling copies every
    /// one it holds at each step: in the zkVM those copies (memcpy calls)
    /// cost about 340 cycles per transaction of a 100-transaction block.
    pub fn reserve(&mut self, n: usize) {
        self.txs.reserve(n);
    }

    /// Gas still available in this block.
    pub fn gas_left(&self) -> u64 {
        self.context.gas_limit.saturating_sub(self.cumulative_gas)
    }

    /// Transactions included so far.
    pub fn executed(&self) -> &[ExecutedTx] {
        &self.txs
    }

    /// The state as the next transaction will see it.
    pub fn state(&self) -> &BlockState<R> {
        self.engine.state()
    }

    /// Executes a signed transaction from `sender` and, if valid, includes it.
    pub fn execute(&mut self, tx: TxEnvelope, sender: Address) -> Result<&ExecutedTx, TxRejection> {
        self.execute_guarded(tx, sender, None)
    }

    /// Like [`execute`](Self::execute), but every call frame is first put to
    /// `guard`; a denied frame rejects the transaction with
    /// [`TxRejection::Denied`] and leaves no trace in the block.
    pub fn execute_guarded(
        &mut self,
        tx: TxEnvelope,
        sender: Address,
        guard: Option<&SharedGuard>,
    ) -> Result<&ExecutedTx, TxRejection> {
        if tx.gas_limit() > self.gas_left() {
            return Err(TxRejection::BlockGasExhausted);
        }
        let transferred = match &self.transfers {
            Some(rules) => transfer::apply(self.engine.state_mut(), rules, &tx, sender, guard)?,
            None => false,
        };
        let (success, gas_used, logs, created) = if transferred {
            self.transfers_applied += 1;
            (true, TRANSFER_GAS, Vec::new(), Vec::new())
        } else {
            let env = tx_env(&tx, sender)?;
            let (result, created) = match guard {
                None => {
                    let evm = self.engine.evm();
                    let out = evm.transact(env).map_err(rejection)?;
                    let created = created_contracts(&out.state, |_| None);
                    evm.commit(out.state);
                    (out.result, created)
                }
                Some(g) => self
                    .run_guarded(env, g)
                    .map_err(rejection)?
                    .map_err(TxRejection::Denied)?,
            };
            (
                result.is_success(),
                result.tx_gas_used(),
                result.into_logs(),
                created,
            )
        };
        self.cumulative_gas += gas_used;
        let receipt = Receipt {
            status: Eip658Value::Eip658(success),
            cumulative_gas_used: self.cumulative_gas,
            logs,
        };
        let with_bloom = ReceiptWithBloom::from(receipt);
        let receipt = match tx.tx_type() {
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(with_bloom),
            _ => ReceiptEnvelope::Legacy(with_bloom),
        };
        let contract_address = tx.kind().is_create().then(|| sender.create(tx.nonce()));
        let effective_gas_price = tx.effective_gas_price(Some(self.context.base_fee));
        self.txs.push(ExecutedTx {
            tx,
            sender,
            receipt,
            gas_used,
            contract_address,
            effective_gas_price,
            created,
        });
        Ok(self.txs.last().expect("just pushed"))
    }

    /// Executes a raw revm transaction environment and commits its effects.
    ///
    /// No receipt is recorded: this is the entry point for Ethereum's state
    /// tests, which describe transactions as environments, not signed bytes.
    pub fn transact_env(
        &mut self,
        env: TxEnv,
    ) -> Result<ExecutionResult<HaltReason>, EVMError<StateError, InvalidTransaction>> {
        self.engine.evm().transact_commit(env)
    }

    /// Executes `env` with every frame put to `guard`; commits only when no
    /// frame was denied.
    pub fn transact_env_guarded(
        &mut self,
        env: TxEnv,
        guard: &SharedGuard,
    ) -> Result<Result<ExecutionResult<HaltReason>, Denial>, EVMError<StateError, InvalidTransaction>>
    {
        Ok(self.run_guarded(env, guard)?.map(|(result, _)| result))
    }

    #[allow(clippy::type_complexity)]
    fn run_guarded(
        &mut self,
        env: TxEnv,
        guard: &SharedGuard,
    ) -> Result<
        Result<(ExecutionResult<HaltReason>, Vec<CreatedContract>), Denial>,
        EVMError<StateError, InvalidTransaction>,
    > {
        let evm = self.engine.evm();
        evm.set_inspector(GuardInspector::new(guard.clone()));
        let outcome = evm.inspect_one_tx(env);
        let denial = evm.inspector.take_denial();
        let inspector = core::mem::take(&mut evm.inspector);
        let result = match outcome {
            Ok(r) => r,
            Err(e) => {
                let _ = evm.finalize();
                return Err(e);
            }
        };
        if let Some(d) = denial {
            let _ = evm.finalize();
            return Ok(Err(d));
        }
        let state = evm.finalize();
        let created = created_contracts(&state, |a| inspector.creator_of(a));
        evm.commit(state);
        Ok(Ok((result, created)))
    }

    /// Seals the block: roots, bloom, output hash and header.
    pub fn finish(self) -> BlockOutcome {
        let diff = self.engine.into_state().into_diff();
        let receipts: Vec<&ReceiptEnvelope> = self.txs.iter().map(|t| &t.receipt).collect();
        let envelopes: Vec<&TxEnvelope> = self.txs.iter().map(|t| &t.tx).collect();
        let receipts_root = calculate_receipt_root(&receipts);
        let transactions_root = calculate_transaction_root(&envelopes);
        let mut logs_bloom = Bloom::ZERO;
        for r in &receipts {
            logs_bloom.accrue_bloom(r.logs_bloom());
        }
        let output_hash = output_hash(
            receipts_root,
            transactions_root,
            &logs_bloom,
            self.cumulative_gas,
            diff.hash(),
        );
        let header = SealedHeader::seal(
            &self.context,
            transactions_root,
            receipts_root,
            logs_bloom,
            self.cumulative_gas,
            output_hash,
        );
        BlockOutcome {
            context: self.context,
            header,
            txs: self.txs,
            diff,
            output_hash,
        }
    }
}

fn output_hash(
    receipts_root: B256,
    transactions_root: B256,
    bloom: &Bloom,
    gas_used: u64,
    diff_hash: B256,
) -> B256 {
    let mut buf = Vec::with_capacity(32 * 3 + 256 + 8);
    buf.extend_from_slice(receipts_root.as_slice());
    buf.extend_from_slice(transactions_root.as_slice());
    buf.extend_from_slice(bloom.as_slice());
    buf.extend_from_slice(&gas_used.to_be_bytes());
    buf.extend_from_slice(diff_hash.as_slice());
    keccak256(&buf)
}

fn rejection(err: EVMError<StateError, InvalidTransaction>) -> TxRejection {
    match err {
        EVMError::Database(e) => TxRejection::State(e),
        EVMError::Transaction(invalid) => match invalid {
            InvalidTransaction::NonceTooLow { tx, state } => TxRejection::NonceTooLow {
                expected: state,
                got: tx,
            },
            InvalidTransaction::NonceTooHigh { tx, state } => TxRejection::NonceTooHigh {
                expected: state,
                got: tx,
            },
            InvalidTransaction::LackOfFundForMaxFee { .. }
            | InvalidTransaction::OverflowPaymentInTransaction => TxRejection::InsufficientFunds,
            InvalidTransaction::CallGasCostMoreThanGasLimit { .. }
            | InvalidTransaction::GasFloorMoreThanGasLimit { .. } => {
                TxRejection::IntrinsicGasTooLow
            }
            InvalidTransaction::GasPriceLessThanBasefee => TxRejection::FeeTooLow,
            InvalidTransaction::InvalidChainId | InvalidTransaction::MissingChainId => {
                TxRejection::WrongChainId
            }
            InvalidTransaction::CallerGasLimitMoreThanBlock => TxRejection::BlockGasExhausted,
            other => TxRejection::Invalid(other.to_string()),
        },
        other => TxRejection::Invalid(other.to_string()),
    }
}
