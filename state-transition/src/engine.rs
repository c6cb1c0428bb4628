//! revm, built when a block first needs it.
//!
//! Building revm's EVM sets up its precompile table, which in the zkVM
//! costs more than the rest of an empty batch (about 50K cycles for the
//! table's maps and copies, once per program run). A block of plain
//! transfers (`transfer.rs`) or an empty block never runs the EVM, so the
//! executor keeps the block's state bare until a transaction does.

use crate::{guard::GuardInspector, overlay::BlockState, reader::StateReader};
use revm::{
    context::{BlockEnv, CfgEnv},
    handler::{MainnetContext, MainnetEvm},
    Context, MainBuilder, MainContext,
};

/// The EVM a block's transactions run in.
pub(crate) type Evm<R> = MainnetEvm<MainnetContext<BlockState<R>>, GuardInspector>;

/// A block's state, inside the EVM once one was needed.
// One engine per block, moved once when the EVM is built: boxing the EVM
// would buy nothing but an allocation per block and an indirection per call.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Engine<R: StateReader> {
    /// No transaction has needed the EVM yet.
    Bare {
        state: BlockState<R>,
        cfg: CfgEnv,
        block: BlockEnv,
    },
    /// The EVM owns the state.
    Built(Evm<R>),
    /// Only while moving from one to the other.
    Moving,
}

impl<R: StateReader> Engine<R> {
    pub(crate) fn new(state: BlockState<R>, cfg: CfgEnv, block: BlockEnv) -> Self {
        Self::Bare { state, cfg, block }
    }

    /// The block's state as the next transaction will see it.
    pub(crate) fn state(&self) -> &BlockState<R> {
        match self {
            Self::Bare { state, .. } => state,
            Self::Built(evm) => &evm.ctx.journaled_state.database,
            Self::Moving => unreachable!("the engine is only moving inside evm()"),
        }
    }

    /// The block's state, to change it without the EVM.
    pub(crate) fn state_mut(&mut self) -> &mut BlockState<R> {
        match self {
            Self::Bare { state, .. } => state,
            Self::Built(evm) => &mut evm.ctx.journaled_state.database,
            Self::Moving => unreachable!("the engine is only moving inside evm()"),
        }
    }

    /// The EVM, built over the block's state on first use.
    pub(crate) fn evm(&mut self) -> &mut Evm<R> {
        if let Self::Bare { .. } = self {
            let Self::Bare { state, cfg, block } = core::mem::replace(self, Self::Moving) else {
                unreachable!("matched just above")
            };
            *self = Self::Built(
                Context::mainnet()
                    .with_db(state)
                    .with_block(block)
                    .with_cfg(cfg)
                    .build_mainnet_with_inspector(GuardInspector::default()),
            );
        }
        match self {
            Self::Built(evm) => evm,
            _ => unreachable!("built just above"),
        }
    }

    /// The block's state, once the block is done.
    pub(crate) fn into_state(self) -> BlockState<R> {
        match self {
            Self::Bare { state, .. } => state,
            Self::Built(evm) => evm.ctx.journaled_state.database,
            Self::Moving => unreachable!("the engine is only moving inside evm()"),
        }
    }
}
