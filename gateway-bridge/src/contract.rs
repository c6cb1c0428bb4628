//! The settlement contract's ABI and bytecode, from the artifact that
//! `contracts/compile.sh gateway-bridge/contracts` writes (checked in, so
//! building needs no Solidity compiler).

use alloy_primitives::Bytes;

alloy_sol_types::sol!(
    #[derive(Debug, PartialEq, Eq)]
    PrividiumSettlement,
    "contracts/out/PrividiumSettlement.json"
);

const ARTIFACT: &str = include_str!("../contracts/out/PrividiumSettlement.json");

/// The contract's creation code (constructor takes no arguments).
pub fn creation_code() -> Bytes {
    #[derive(serde::Deserialize)]
    struct Artifact {
        bytecode: Bytes,
    }
    // The artifact is compiled into the binary and checked by a unit test,
    // so this cannot fail at run time.
    serde_json::from_str::<Artifact>(ARTIFACT)
        .map(|a| a.bytecode)
        .unwrap_or_default()
}

/// Human-readable form of a revert from the contract: its custom error when
/// the data decodes as one, else the raw bytes.
pub fn describe_revert(data: &[u8]) -> String {
    use alloy_sol_types::SolInterface;
    match PrividiumSettlement::PrividiumSettlementErrors::abi_decode(data) {
        Ok(e) => format!("{e:?}"),
        Err(_) if data.is_empty() => "reverted without a reason".into(),
        Err(_) => format!("reverted with 0x{}", alloy_primitives::hex::encode(data)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::SolError;

    #[test]
    fn artifact_has_creation_code_and_errors_decode() {
        assert!(creation_code().len() > 1_000);
        let e = PrividiumSettlement::NotNextBatch {
            expected: 3,
            got: 5,
        };
        let text = describe_revert(&e.abi_encode());
        assert!(
            text.contains("NotNextBatch") && text.contains('5'),
            "{text}"
        );
        assert_eq!(describe_revert(&[]), "reverted without a reason");
    }
}
