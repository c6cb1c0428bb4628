//! Byte layouts of the derived store's records.

use crate::stored::{StoredBlock, StoredTx};
use alloy_consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use state_transition::revm::state::AccountInfo;

pub(crate) const META_CHAIN_ID: &[u8] = b"chain_id";
pub(crate) const META_DERIVED_HEIGHT: &[u8] = b"derived_height";
/// The first block whose state the trie nodes can be walked from.
pub(crate) const META_HISTORY_FROM: &[u8] = b"history_from";

pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

pub(crate) fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

pub(crate) fn encode_account(info: &AccountInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(72);
    out.extend_from_slice(&info.nonce.to_be_bytes());
    out.extend_from_slice(&info.balance.to_be_bytes::<32>());
    out.extend_from_slice(info.code_hash.as_slice());
    out
}

pub(crate) fn decode_account(bytes: &[u8]) -> Option<AccountInfo> {
    if bytes.len() != 72 {
        return None;
    }
    Some(AccountInfo {
        nonce: u64::from_be_bytes(bytes[..8].try_into().ok()?),
        balance: U256::from_be_slice(&bytes[8..40]),
        code_hash: B256::from_slice(&bytes[40..72]),
        // Code is fetched by hash; revm's default would claim "empty code".
        code: None,
        account_id: None,
    })
}

#[derive(RlpEncodable, RlpDecodable)]
struct TxRlp {
    envelope: Bytes,
    sender: Address,
    receipt: Bytes,
    gas_used: u64,
    contract_address: Bytes,
    effective_gas_price: u128,
}

#[derive(RlpEncodable, RlpDecodable)]
struct BlockRlp {
    header: Header,
    hash: B256,
    txs: Vec<TxRlp>,
}

pub(crate) fn encode_block(block: &StoredBlock) -> Vec<u8> {
    let rlp = BlockRlp {
        header: block.header.clone(),
        hash: block.hash,
        txs: block
            .txs
            .iter()
            .map(|t| TxRlp {
                envelope: t.envelope.encoded_2718().into(),
                sender: t.sender,
                receipt: t.receipt.encoded_2718().into(),
                gas_used: t.gas_used,
                contract_address: t
                    .contract_address
                    .map(|a| Bytes::copy_from_slice(a.as_slice()))
                    .unwrap_or_default(),
                effective_gas_price: t.effective_gas_price,
            })
            .collect(),
    };
    let mut out = Vec::new();
    rlp.encode(&mut out);
    out
}

pub(crate) fn decode_block(mut bytes: &[u8]) -> Result<StoredBlock, String> {
    let rlp = BlockRlp::decode(&mut bytes).map_err(|e| e.to_string())?;
    let txs = rlp
        .txs
        .into_iter()
        .map(|t| {
            Ok(StoredTx {
                envelope: TxEnvelope::decode_2718(&mut t.envelope.as_ref())
                    .map_err(|e| e.to_string())?,
                sender: t.sender,
                receipt: ReceiptEnvelope::decode_2718(&mut t.receipt.as_ref())
                    .map_err(|e| e.to_string())?,
                gas_used: t.gas_used,
                contract_address: match t.contract_address.len() {
                    0 => None,
                    20 => Some(Address::from_slice(&t.contract_address)),
                    n => return Err(format!("contract address of {n} bytes")),
                },
                effective_gas_price: t.effective_gas_price,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(StoredBlock {
        header: rlp.header,
        hash: rlp.hash,
        txs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_round_trips_and_rejects_wrong_length() {
        let info = AccountInfo {
            nonce: 7,
            balance: U256::from(123456789u64),
            code_hash: B256::repeat_byte(3),
            code: None,
            account_id: None,
        };
        assert_eq!(decode_account(&encode_account(&info)), Some(info));
        assert_eq!(decode_account(&[0u8; 71]), None);
    }
}
