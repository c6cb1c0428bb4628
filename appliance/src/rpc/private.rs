//! Filtered reads: what a caller may see of transactions, receipts, blocks
//! and logs. Hidden transactions are reported as not found (their existence
//! is itself private); partially visible ones lose their input.

use super::{
    access::{RequestCaller, Visibility},
    convert::{rpc_block, rpc_receipt, rpc_tx},
    RpcState,
};
use alloy_consensus::{Signed, TxEnvelope};
use alloy_primitives::{Bloom, Bytes, B256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Log, Transaction, TransactionReceipt};
use sequencer::StoredBlock;

/// The transaction with its input removed, same hash and signature.
fn blank_input(envelope: &TxEnvelope) -> TxEnvelope {
    fn strip<T: Clone + alloy_consensus::transaction::RlpEcdsaEncodableTx>(
        s: &Signed<T>,
        clear: impl FnOnce(&mut T),
    ) -> Signed<T> {
        let hash = *s.hash();
        let mut tx = s.tx().clone();
        clear(&mut tx);
        Signed::new_unchecked(tx, *s.signature(), hash)
    }
    match envelope {
        TxEnvelope::Legacy(s) => strip(s, |t| t.input = Bytes::new()).into(),
        TxEnvelope::Eip2930(s) => strip(s, |t| t.input = Bytes::new()).into(),
        TxEnvelope::Eip1559(s) => strip(s, |t| t.input = Bytes::new()).into(),
        other => other.clone(),
    }
}

/// Transaction `index` of `block` as the caller may see it.
pub(crate) fn tx(
    state: &RpcState,
    rc: &RequestCaller,
    block: &StoredBlock,
    index: usize,
) -> Option<Transaction> {
    let stored = &block.txs[index];
    match state.access.tx_visibility(rc, stored) {
        Visibility::Hidden => None,
        Visibility::Full => Some(rpc_tx(block, index, stored)),
        Visibility::Partial => {
            let mut t = rpc_tx(block, index, stored);
            let blanked = blank_input(&stored.envelope);
            t.inner =
                alloy_consensus::transaction::Recovered::new_unchecked(blanked, stored.sender);
            Some(t)
        }
    }
}

/// The receipt of transaction `index`, keeping only the logs the caller may see.
pub(crate) fn receipt(
    state: &RpcState,
    rc: &RequestCaller,
    block: &StoredBlock,
    index: usize,
) -> Option<TransactionReceipt> {
    if state.access.tx_visibility(rc, &block.txs[index]) == Visibility::Hidden {
        return None;
    }
    let mut r = rpc_receipt(block, index);
    if state.access.view_all(rc) {
        return Some(r);
    }
    let filter = |rwb: &mut alloy_consensus::ReceiptWithBloom<alloy_consensus::Receipt<Log>>| {
        let before = rwb.receipt.logs.len();
        rwb.receipt
            .logs
            .retain(|l| state.access.log_visible(rc, &l.inner));
        if rwb.receipt.logs.len() != before {
            // A bloom over hidden logs would leak their addresses and topics.
            rwb.logs_bloom = Bloom::ZERO;
        }
    };
    match &mut r.inner {
        alloy_consensus::ReceiptEnvelope::Legacy(x)
        | alloy_consensus::ReceiptEnvelope::Eip2930(x)
        | alloy_consensus::ReceiptEnvelope::Eip1559(x)
        | alloy_consensus::ReceiptEnvelope::Eip4844(x)
        | alloy_consensus::ReceiptEnvelope::Eip7702(x) => filter(x),
    }
    Some(r)
}

/// A block with only the transactions the caller may see; logsBloom zeroed
/// unless the caller sees everything.
pub(crate) fn block(
    state: &RpcState,
    rc: &RequestCaller,
    block: &StoredBlock,
    root: Option<B256>,
    full: bool,
) -> Block {
    let mut b = rpc_block(block, root, false);
    if state.access.view_all(rc) {
        return if full {
            rpc_block(block, root, true)
        } else {
            b
        };
    }
    b.header.inner.logs_bloom = Bloom::ZERO;
    let visible: Vec<Transaction> = (0..block.txs.len())
        .filter_map(|i| tx(state, rc, block, i))
        .collect();
    b.transactions = if full {
        BlockTransactions::Full(visible)
    } else {
        BlockTransactions::Hashes(visible.iter().map(|t| *t.inner.tx_hash()).collect())
    };
    b
}

/// Number of transactions of `block` the caller may see.
pub(crate) fn tx_count(state: &RpcState, rc: &RequestCaller, block: &StoredBlock) -> usize {
    if state.access.view_all(rc) {
        return block.txs.len();
    }
    block
        .txs
        .iter()
        .filter(|t| state.access.tx_visibility(rc, t) != Visibility::Hidden)
        .count()
}
