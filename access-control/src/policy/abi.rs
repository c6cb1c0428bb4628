//! Registered contract ABIs: turn a 4-byte selector into a function name and
//! its static arguments, so policies can say `context.function == "transfer"`
//! and `context.args.from == context.signer`.
//!
//! Matching is by selector across every registered ABI (contract addresses
//! are not known before deployment). Only static argument types are decoded
//! (address, uintN, intN, bool); dynamic ones are skipped, not guessed.

use super::error::Problem;
use alloy_primitives::{keccak256, Address, U256};
use serde::Deserialize;
use sha2::Digest;
use std::{collections::HashMap, path::Path};

/// One function: name and argument (name, type) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Function name.
    pub name: String,
    /// Arguments in order.
    pub inputs: Vec<(String, String)>,
}

/// A decoded argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// An address.
    Address(Address),
    /// An unsigned integer.
    Uint(U256),
    /// A boolean.
    Bool(bool),
}

/// Selector → function, over every registered ABI.
#[derive(Debug, Clone, Default)]
pub struct AbiRegistry {
    functions: HashMap<[u8; 4], Function>,
}

#[derive(Deserialize)]
struct AbiItem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    inputs: Vec<AbiParam>,
}

#[derive(Deserialize)]
struct AbiParam {
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Accepts a bare ABI array or a compiler artifact with an `abi` field.
#[derive(Deserialize)]
#[serde(untagged)]
enum AbiFile {
    Bare(Vec<AbiItem>),
    Artifact { abi: Vec<AbiItem> },
}

impl AbiRegistry {
    /// Loads every `*.json` in `dir` (a missing directory is an empty registry).
    pub(crate) fn load_dir(dir: &Path, hasher: &mut sha2::Sha256) -> Result<Self, Vec<Problem>> {
        let mut reg = Self::default();
        let mut problems = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(reg);
        };
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let file = format!(
                "abi/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    hasher.update(&b);
                    serde_json::from_slice::<AbiFile>(&b).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(AbiFile::Bare(items) | AbiFile::Artifact { abi: items }) => reg.add(items),
                Err(message) => problems.push(Problem {
                    file,
                    line: None,
                    message: format!("not an ABI: {message}"),
                }),
            }
        }
        if problems.is_empty() {
            Ok(reg)
        } else {
            Err(problems)
        }
    }

    fn add(&mut self, items: Vec<AbiItem>) {
        for item in items.into_iter().filter(|i| i.kind == "function") {
            let types: Vec<&str> = item.inputs.iter().map(|p| p.kind.as_str()).collect();
            let sig = format!("{}({})", item.name, types.join(","));
            let selector: [u8; 4] = keccak256(sig.as_bytes())[..4].try_into().expect("4 bytes");
            self.functions.insert(
                selector,
                Function {
                    name: item.name,
                    inputs: item.inputs.into_iter().map(|p| (p.name, p.kind)).collect(),
                },
            );
        }
    }

    /// Number of known functions.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// True when no ABI is registered.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The function `calldata` calls, with its decodable arguments.
    pub fn decode(&self, calldata: &[u8]) -> Option<(&Function, Vec<(String, ArgValue)>)> {
        let selector: [u8; 4] = calldata.get(..4)?.try_into().ok()?;
        let f = self.functions.get(&selector)?;
        let mut args = Vec::new();
        for (i, (name, kind)) in f.inputs.iter().enumerate() {
            let Some(word) = calldata.get(4 + 32 * i..4 + 32 * (i + 1)) else {
                break;
            };
            let word = U256::from_be_slice(word);
            let value = match kind.as_str() {
                "address" => ArgValue::Address(Address::from_word(word.into())),
                "bool" => ArgValue::Bool(!word.is_zero()),
                k if k.starts_with("uint") || k.starts_with("int") => ArgValue::Uint(word),
                _ => continue,
            };
            // Unnamed arguments are addressed by position.
            let name = if name.is_empty() {
                format!("arg{i}")
            } else {
                name.trim_start_matches('_').to_owned()
            };
            args.push((name, value));
        }
        Some((f, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::hex;

    #[test]
    fn decodes_erc20_transfer_from_a_compiler_artifact() {
        let mut reg = AbiRegistry::default();
        let artifact = r#"{"abi":[{"type":"function","name":"transferFrom","inputs":[
            {"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"amount","type":"uint256"}]}]}"#;
        match serde_json::from_str::<AbiFile>(artifact).unwrap() {
            AbiFile::Artifact { abi } | AbiFile::Bare(abi) => reg.add(abi),
        }
        let from = Address::repeat_byte(0x11);
        let to = Address::repeat_byte(0x22);
        let mut data = hex::decode("23b872dd").unwrap();
        data.extend_from_slice(from.into_word().as_slice());
        data.extend_from_slice(to.into_word().as_slice());
        data.extend_from_slice(&U256::from(5u64).to_be_bytes::<32>());
        let (f, args) = reg.decode(&data).unwrap();
        assert_eq!(f.name, "transferFrom");
        assert_eq!(
            args,
            vec![
                ("from".into(), ArgValue::Address(from)),
                ("to".into(), ArgValue::Address(to)),
                ("amount".into(), ArgValue::Uint(U256::from(5u64))),
            ]
        );
        // Unknown selector, or too short: nothing decoded.
        assert!(reg.decode(&hex::decode("a9059cbb").unwrap()).is_none());
        assert!(reg.decode(&[0x23, 0xb8]).is_none());
    }
}
