//! Stored chain data → Ethereum JSON-RPC objects.

use alloy_consensus::{
    transaction::Recovered, ReceiptEnvelope, ReceiptWithBloom, Transaction as _,
};
use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};
use sequencer::{StoredBlock, StoredTx};

/// A transaction with its position.
pub(crate) fn rpc_tx(block: &StoredBlock, index: usize, tx: &StoredTx) -> Transaction {
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope.clone(), tx.sender),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.effective_gas_price),
        block_timestamp: Some(block.header.timestamp),
    }
}

/// Logs of one transaction, numbered from `first_log_index` within the block.
pub(crate) fn rpc_logs(block: &StoredBlock, index: usize, first_log_index: u64) -> Vec<Log> {
    let tx = &block.txs[index];
    tx.receipt
        .logs()
        .iter()
        .enumerate()
        .map(|(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(block.hash),
            block_number: Some(block.header.number),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(*tx.envelope.tx_hash()),
            transaction_index: Some(index as u64),
            log_index: Some(first_log_index + i as u64),
            removed: false,
        })
        .collect()
}

/// Index of the first log of transaction `index` within its block.
pub(crate) fn first_log_index(block: &StoredBlock, index: usize) -> u64 {
    block.txs[..index]
        .iter()
        .map(|t| t.receipt.logs().len() as u64)
        .sum()
}

pub(crate) fn rpc_receipt(block: &StoredBlock, index: usize) -> TransactionReceipt {
    let tx = &block.txs[index];
    let logs = rpc_logs(block, index, first_log_index(block, index));
    let with_bloom = |r: &ReceiptWithBloom| ReceiptWithBloom {
        receipt: alloy_consensus::Receipt {
            status: r.receipt.status,
            cumulative_gas_used: r.receipt.cumulative_gas_used,
            logs: logs.clone(),
        },
        logs_bloom: r.logs_bloom,
    };
    let inner = match &tx.receipt {
        ReceiptEnvelope::Legacy(r) => ReceiptEnvelope::Legacy(with_bloom(r)),
        ReceiptEnvelope::Eip2930(r) => ReceiptEnvelope::Eip2930(with_bloom(r)),
        ReceiptEnvelope::Eip4844(r) => ReceiptEnvelope::Eip4844(with_bloom(r)),
        ReceiptEnvelope::Eip7702(r) => ReceiptEnvelope::Eip7702(with_bloom(r)),
        ReceiptEnvelope::Eip1559(r) => ReceiptEnvelope::Eip1559(with_bloom(r)),
    };
    TransactionReceipt {
        inner,
        transaction_hash: *tx.envelope.tx_hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        gas_used: tx.gas_used,
        effective_gas_price: tx.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender,
        to: tx.envelope.to(),
        contract_address: tx.contract_address,
    }
}

/// A block; `state_root` is the derived root recorded for it (the hashed
/// header commits to the output hash instead, see `SealedHeader`).
pub(crate) fn rpc_block(block: &StoredBlock, state_root: Option<B256>, full: bool) -> Block {
    let mut header = block.header.clone();
    if let Some(root) = state_root {
        header.state_root = root;
    }
    let size = alloy_rlp::Encodable::length(&block.header)
        + block
            .txs
            .iter()
            .map(|t| t.envelope.eip2718_encoded_length())
            .sum::<usize>();
    let transactions = if full {
        BlockTransactions::Full(
            block
                .txs
                .iter()
                .enumerate()
                .map(|(i, t)| rpc_tx(block, i, t))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(block.txs.iter().map(|t| *t.envelope.tx_hash()).collect())
    };
    Block {
        header: Header {
            hash: block.hash,
            inner: header,
            total_difficulty: Some(U256::ZERO),
            size: Some(U256::from(size)),
        },
        uncles: Vec::new(),
        transactions,
        withdrawals: None,
    }
}
