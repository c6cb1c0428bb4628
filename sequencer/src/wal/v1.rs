//! Block log record format, version 1. Frozen: once released, this file
//! does not change; a new format is a new module and version byte. The
//! golden fixture in `tests.rs` guards it.
#![cfg_attr(rustfmt, rustfmt::skip)]

use super::BlockRecord;
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, Bytes, B256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use state_transition::BlockContext;

pub(super) const VERSION: u8 = 1;

#[derive(RlpEncodable, RlpDecodable)]
struct RecordV1 {
    number: u64,
    timestamp: u64,
    parent_hash: B256,
    beneficiary: Address,
    gas_limit: u64,
    base_fee: u64,
    prevrandao: B256,
    transactions: Vec<Bytes>,
    output_hash: B256,
    block_hash: B256,
}

pub(super) fn encode(record: &BlockRecord, out: &mut Vec<u8>) {
    let c = &record.context;
    RecordV1 {
        number: record.number,
        timestamp: c.timestamp,
        parent_hash: c.parent_hash,
        beneficiary: c.beneficiary,
        gas_limit: c.gas_limit,
        base_fee: c.base_fee,
        prevrandao: c.prevrandao,
        transactions: record.transactions.iter().map(|t| Bytes::from(t.encoded_2718())).collect(),
        output_hash: record.output_hash,
        block_hash: record.block_hash,
    }
    .encode(out);
}

pub(super) fn decode(mut body: &[u8]) -> Result<BlockRecord, String> {
    let r = RecordV1::decode(&mut body).map_err(|e| format!("undecodable v1 record: {e}"))?;
    if !body.is_empty() {
        return Err("trailing bytes after v1 record".into());
    }
    let transactions = r
        .transactions
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            TxEnvelope::decode_2718(&mut raw.as_ref())
                .map_err(|e| format!("transaction {i} undecodable: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BlockRecord {
        number: r.number,
        context: BlockContext {
            number: r.number,
            timestamp: r.timestamp,
            parent_hash: r.parent_hash,
            beneficiary: r.beneficiary,
            gas_limit: r.gas_limit,
            base_fee: r.base_fee,
            prevrandao: r.prevrandao,
        },
        transactions,
        output_hash: r.output_hash,
        block_hash: r.block_hash,
    })
}
