//! Filtered reads: what a caller may see of transactions, receipts, blocks
//! and logs. Hidden transactions are reported as not found (their existence
//! is itself private); partially visible ones lose their input.
//!
//! A caller without `view_all` gets every block-level figure computed over
//! what it sees, so nothing reveals that hidden transactions exist or how
//! large they are:
//! - a block's `gasUsed` is the sum of its visible transactions' gas,
//!   `transactionsRoot` / `receiptsRoot` are the roots of the transactions
//!   and receipts it is shown, `logsBloom` covers only the logs it sees, and
//!   `size` is omitted (it cannot be recomputed without the hidden bytes);
//! - `transactionIndex` counts visible transactions only, a receipt's
//!   `cumulativeGasUsed` sums visible transactions up to it, and `logIndex`
//!   counts the logs the caller sees in the block (a log it may see in a
//!   transaction it may not has no `transactionIndex`).
//!
//! `hash`, `parentHash`, `number`, `timestamp`, `gasLimit`, `baseFeePerGas`
//! and `extraData` stay as sealed: they are the chain's own and say nothing
//! of its transactions. (With the `eip1559` fee mode the base fee follows
//! block fullness; banks that need that hidden run the default `zero` mode.)

use super::{
    access::{RequestCaller, Visibility},
    convert::{rpc_block, rpc_receipt, rpc_tx},
    RpcState,
};
use alloy_consensus::TxReceipt as _;
use alloy_consensus::{
    proofs::{calculate_receipt_root, calculate_transaction_root},
    ReceiptEnvelope, ReceiptWithBloom, Signed, TxEnvelope,
};
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

/// One caller's view of one block: which transactions and logs it sees,
/// and their positions as it sees them.
pub(crate) struct BlockView<'a> {
    block: &'a StoredBlock,
    /// `None`: the caller sees everything.
    seen: Option<Seen>,
}

struct Seen {
    /// Per transaction of the block.
    visibility: Vec<Visibility>,
    /// Per transaction, per log: shown?
    logs: Vec<Vec<bool>>,
    /// Per transaction: visible ones before it.
    position: Vec<u64>,
    /// Per transaction: shown logs before it.
    first_log: Vec<u64>,
    /// Per transaction: gas of visible ones up to and including it.
    cumulative_gas: Vec<u64>,
}

fn bloom_of<'l>(logs: impl IntoIterator<Item = &'l alloy_primitives::Log>) -> Bloom {
    let mut b = Bloom::ZERO;
    for l in logs {
        b.accrue_log(l);
    }
    b
}

impl<'a> BlockView<'a> {
    /// Decides what `rc` sees of `block` (one question per transaction and
    /// log, summarized in the audit trail; none for `view_all`).
    pub(crate) fn new(state: &RpcState, rc: &RequestCaller, block: &'a StoredBlock) -> Self {
        if state.access.view_all(rc) {
            return Self { block, seen: None };
        }
        let visibility: Vec<Visibility> = block
            .txs
            .iter()
            .map(|t| state.access.tx_visibility(rc, t))
            .collect();
        let logs: Vec<Vec<bool>> = block
            .txs
            .iter()
            .map(|t| {
                t.receipt
                    .logs()
                    .iter()
                    .map(|l| state.access.log_visible(rc, l))
                    .collect()
            })
            .collect();
        let (mut position, mut first_log, mut cumulative_gas) =
            (Vec::new(), Vec::new(), Vec::new());
        let (mut pos, mut first, mut gas) = (0u64, 0u64, 0u64);
        for (i, t) in block.txs.iter().enumerate() {
            position.push(pos);
            first_log.push(first);
            if visibility[i] != Visibility::Hidden {
                pos += 1;
                gas += t.gas_used;
            }
            cumulative_gas.push(gas);
            first += logs[i].iter().filter(|s| **s).count() as u64;
        }
        Self {
            block,
            seen: Some(Seen {
                visibility,
                logs,
                position,
                first_log,
                cumulative_gas,
            }),
        }
    }

    /// How much of transaction `index` the caller sees.
    pub(crate) fn visibility(&self, index: usize) -> Visibility {
        match &self.seen {
            None => Visibility::Full,
            Some(s) => s.visibility[index],
        }
    }

    fn visible(&self, index: usize) -> bool {
        self.visibility(index) != Visibility::Hidden
    }

    fn log_shown(&self, index: usize, log: usize) -> bool {
        match &self.seen {
            None => true,
            Some(s) => s.logs[index][log],
        }
    }

    /// Position of transaction `index` among those the caller sees.
    fn position(&self, index: usize) -> u64 {
        match &self.seen {
            None => index as u64,
            Some(s) => s.position[index],
        }
    }

    /// Index of the first log of transaction `index` among the logs of the
    /// block the caller sees.
    fn first_log(&self, index: usize) -> u64 {
        match &self.seen {
            None => super::convert::first_log_index(self.block, index),
            Some(s) => s.first_log[index],
        }
    }

    /// Transactions the caller sees.
    pub(crate) fn tx_count(&self) -> usize {
        (0..self.block.txs.len())
            .filter(|i| self.visible(*i))
            .count()
    }

    /// The block's index of the transaction the caller sees at `position`.
    pub(crate) fn nth_visible(&self, position: usize) -> Option<usize> {
        (0..self.block.txs.len())
            .filter(|i| self.visible(*i))
            .nth(position)
    }

    /// Receipts of the transactions the caller sees, in block order.
    pub(crate) fn receipts(&self) -> Vec<TransactionReceipt> {
        (0..self.block.txs.len())
            .filter_map(|i| self.receipt(i))
            .collect()
    }

    /// Transaction `index` as the caller may see it.
    pub(crate) fn tx(&self, index: usize) -> Option<Transaction> {
        let stored = &self.block.txs[index];
        let mut t = rpc_tx(self.block, index, stored);
        match self.visibility(index) {
            Visibility::Hidden => return None,
            Visibility::Full => {}
            Visibility::Partial => {
                let blanked = blank_input(&stored.envelope);
                t.inner =
                    alloy_consensus::transaction::Recovered::new_unchecked(blanked, stored.sender);
            }
        }
        t.transaction_index = Some(self.position(index));
        Some(t)
    }

    /// The logs of transaction `index` the caller sees, numbered as it sees
    /// them.
    pub(crate) fn logs(&self, index: usize) -> Vec<Log> {
        let tx = &self.block.txs[index];
        let tx_index = self.visible(index).then(|| self.position(index));
        let mut next = self.first_log(index);
        let mut out = Vec::new();
        for (i, log) in tx.receipt.logs().iter().enumerate() {
            if !self.log_shown(index, i) {
                continue;
            }
            out.push(Log {
                inner: log.clone(),
                block_hash: Some(self.block.hash),
                block_number: Some(self.block.header.number),
                block_timestamp: Some(self.block.header.timestamp),
                transaction_hash: Some(*tx.envelope.tx_hash()),
                transaction_index: tx_index,
                log_index: Some(next),
                removed: false,
            });
            next += 1;
        }
        out
    }

    /// The receipt of transaction `index`, with the logs and figures the
    /// caller may see.
    pub(crate) fn receipt(&self, index: usize) -> Option<TransactionReceipt> {
        if !self.visible(index) {
            return None;
        }
        let mut r = rpc_receipt(self.block, index);
        let Some(seen) = &self.seen else {
            return Some(r);
        };
        let cumulative = seen.cumulative_gas[index];
        let logs = self.logs(index);
        let bloom = bloom_of(logs.iter().map(|l| &l.inner));
        r.transaction_index = Some(self.position(index));
        let rewrite = |rwb: &mut ReceiptWithBloom<alloy_consensus::Receipt<Log>>| {
            rwb.receipt.cumulative_gas_used = cumulative;
            rwb.receipt.logs = logs;
            rwb.logs_bloom = bloom;
        };
        match &mut r.inner {
            ReceiptEnvelope::Legacy(x)
            | ReceiptEnvelope::Eip2930(x)
            | ReceiptEnvelope::Eip1559(x)
            | ReceiptEnvelope::Eip4844(x)
            | ReceiptEnvelope::Eip7702(x) => rewrite(x),
        }
        Some(r)
    }

    /// Transaction `index`'s receipt as the caller sees it, in consensus
    /// form (for the receipts root).
    fn consensus_receipt(&self, index: usize) -> ReceiptEnvelope {
        let stored = &self.block.txs[index];
        let logs: Vec<alloy_primitives::Log> =
            self.logs(index).into_iter().map(|l| l.inner).collect();
        let cumulative = match &self.seen {
            None => stored.receipt.cumulative_gas_used(),
            Some(s) => s.cumulative_gas[index],
        };
        let with_bloom = ReceiptWithBloom::new(
            alloy_consensus::Receipt {
                status: stored.receipt.status_or_post_state(),
                cumulative_gas_used: cumulative,
                logs,
            },
            Bloom::ZERO,
        );
        let with_bloom = ReceiptWithBloom {
            logs_bloom: bloom_of(&with_bloom.receipt.logs),
            ..with_bloom
        };
        match &stored.receipt {
            ReceiptEnvelope::Legacy(_) => ReceiptEnvelope::Legacy(with_bloom),
            ReceiptEnvelope::Eip2930(_) => ReceiptEnvelope::Eip2930(with_bloom),
            ReceiptEnvelope::Eip4844(_) => ReceiptEnvelope::Eip4844(with_bloom),
            ReceiptEnvelope::Eip7702(_) => ReceiptEnvelope::Eip7702(with_bloom),
            ReceiptEnvelope::Eip1559(_) => ReceiptEnvelope::Eip1559(with_bloom),
        }
    }

    /// The block with only the transactions the caller may see, and its
    /// figures computed over them (see the module docs).
    pub(crate) fn block(&self, root: Option<B256>, full: bool) -> Block {
        if self.seen.is_none() {
            return rpc_block(self.block, root, full);
        }
        let mut b = rpc_block(self.block, root, false);
        let indexes: Vec<usize> = (0..self.block.txs.len())
            .filter(|i| self.visible(*i))
            .collect();
        let txs: Vec<Transaction> = indexes.iter().filter_map(|i| self.tx(*i)).collect();
        let envelopes: Vec<&TxEnvelope> = txs.iter().map(|t| t.inner.inner()).collect();
        let receipts: Vec<ReceiptEnvelope> =
            indexes.iter().map(|i| self.consensus_receipt(*i)).collect();
        let receipt_refs: Vec<&ReceiptEnvelope> = receipts.iter().collect();
        let shown: Vec<Log> = (0..self.block.txs.len())
            .flat_map(|i| self.logs(i))
            .collect();
        let h = &mut b.header;
        h.inner.gas_used = indexes.iter().map(|i| self.block.txs[*i].gas_used).sum();
        h.inner.transactions_root = calculate_transaction_root(&envelopes);
        h.inner.receipts_root = calculate_receipt_root(&receipt_refs);
        h.inner.logs_bloom = bloom_of(shown.iter().map(|l| &l.inner));
        h.size = None;
        b.transactions = if full {
            BlockTransactions::Full(txs)
        } else {
            BlockTransactions::Hashes(txs.iter().map(|t| *t.inner.tx_hash()).collect())
        };
        b
    }
}
