//! Reading a disclosure file of either kind: the size bound, the JSON, and
//! the `format` field that says which kind it is.

use crate::{
    Disclosure, DisclosureError, PredicateDisclosure, FORMAT, MAX_FILE_BYTES, PREDICATE_FORMAT,
};

/// Either kind of disclosure file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyDisclosure {
    /// Reveals the value, with Merkle proofs.
    Exact(Disclosure),
    /// Reveals only a bound, with a zkVM proof.
    Predicate(PredicateDisclosure),
}

impl AnyDisclosure {
    /// Reads a disclosure file of either kind, refusing anything too large,
    /// malformed or of another version.
    pub fn parse(bytes: &[u8]) -> Result<Self, DisclosureError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(DisclosureError::Format(format!(
                "{} bytes, at most {MAX_FILE_BYTES}",
                bytes.len()
            )));
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| DisclosureError::Format(e.to_string()))?;
        let shape = |e: serde_json::Error| DisclosureError::Format(e.to_string());
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => Ok(Self::Exact(serde_json::from_value(value).map_err(shape)?)),
            Some(PREDICATE_FORMAT) => Ok(Self::Predicate(
                serde_json::from_value(value).map_err(shape)?,
            )),
            Some(other) => Err(DisclosureError::Format(format!(
                "format {other:?}, this build reads {FORMAT:?} and {PREDICATE_FORMAT:?}"
            ))),
            None => Err(DisclosureError::Format("no \"format\" field".into())),
        }
    }
}

impl Disclosure {
    /// Reads a (value-revealing) disclosure file, refusing anything too
    /// large, malformed, of another version or of the predicate kind.
    pub fn parse(bytes: &[u8]) -> Result<Self, DisclosureError> {
        match AnyDisclosure::parse(bytes)? {
            AnyDisclosure::Exact(d) => Ok(d),
            AnyDisclosure::Predicate(_) => Err(DisclosureError::Format(
                "a predicate disclosure, not one with a value".into(),
            )),
        }
    }
}
