//! The few ABI encodings the benchmark needs.

use alloy_primitives::{keccak256, Address, Bytes, U256};

pub(super) fn selector(signature: &str) -> [u8; 4] {
    keccak256(signature.as_bytes())[..4]
        .try_into()
        .expect("4 bytes")
}

fn word_u256(v: U256) -> [u8; 32] {
    v.to_be_bytes()
}

fn word_addr(a: &Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

fn string_tail(s: &str) -> Vec<u8> {
    let mut out = word_u256(U256::from(s.len())).to_vec();
    let mut bytes = s.as_bytes().to_vec();
    bytes.resize(s.len().div_ceil(32) * 32, 0);
    out.extend(bytes);
    out
}

/// `constructor(string name, string symbol, uint256 supply)` arguments.
pub(super) fn token_constructor(name: &str, symbol: &str, supply: U256) -> Vec<u8> {
    let name_tail = string_tail(name);
    let mut out = Vec::new();
    out.extend(word_u256(U256::from(96)));
    out.extend(word_u256(U256::from(96 + name_tail.len())));
    out.extend(word_u256(supply));
    out.extend(name_tail);
    out.extend(string_tail(symbol));
    out
}

/// `transfer(address,uint256)`.
pub(super) fn transfer(to: &Address, amount: U256) -> Bytes {
    let mut out = selector("transfer(address,uint256)").to_vec();
    out.extend(word_addr(to));
    out.extend(word_u256(amount));
    out.into()
}

/// `mintBatch(address[],uint256)`.
pub(super) fn mint_batch(to: &[Address], each: U256) -> Bytes {
    let mut out = selector("mintBatch(address[],uint256)").to_vec();
    out.extend(word_u256(U256::from(64)));
    out.extend(word_u256(each));
    out.extend(word_u256(U256::from(to.len())));
    for a in to {
        out.extend(word_addr(a));
    }
    out.into()
}

/// `disperse(address[])`.
pub(super) fn disperse(to: &[Address]) -> Bytes {
    let mut out = selector("disperse(address[])").to_vec();
    out.extend(word_u256(U256::from(32)));
    out.extend(word_u256(U256::from(to.len())));
    for a in to {
        out.extend(word_addr(a));
    }
    out.into()
}

/// `setPrice(uint256,uint256)`.
pub(super) fn set_price(asset: u64, price: u64) -> Bytes {
    let mut out = selector("setPrice(uint256,uint256)").to_vec();
    out.extend(word_u256(U256::from(asset)));
    out.extend(word_u256(U256::from(price)));
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_the_erc20_standard() {
        assert_eq!(
            selector("transfer(address,uint256)"),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert_eq!(selector("balanceOf(address)"), [0x70, 0xa0, 0x82, 0x31]);
    }

    #[test]
    fn constructor_strings_are_padded_and_offset() {
        let enc = token_constructor("Bank", "BNK", U256::from(5));
        assert_eq!(enc.len(), 3 * 32 + 2 * 64);
        assert_eq!(U256::from_be_slice(&enc[32..64]), U256::from(160));
        assert_eq!(&enc[128..132], b"Bank");
    }
}
