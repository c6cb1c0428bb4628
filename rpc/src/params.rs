//! Positional parameter decoding with clear "invalid params" errors.

use super::jsonrpc::RpcError;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::Value;

/// Positional params; named params are not used by Ethereum methods.
pub(crate) struct Params(Vec<Value>);

impl Params {
    pub(crate) fn new(v: Value) -> Result<Self, RpcError> {
        match v {
            Value::Array(a) => Ok(Self(a)),
            _ => Err(RpcError::invalid_params(
                "expected positional (array) params",
            )),
        }
    }

    /// Required parameter `i`.
    pub(crate) fn req<T: DeserializeOwned>(&self, i: usize, name: &str) -> Result<T, RpcError> {
        let v = self.0.get(i).filter(|v| !v.is_null()).ok_or_else(|| {
            RpcError::invalid_params(format!("missing value for required argument {i} ({name})"))
        })?;
        // Read in place: a copy of each argument (a raw transaction's hex)
        // before decoding it was pure overhead.
        <T as Deserialize>::deserialize(v)
            .map_err(|e| RpcError::invalid_params(format!("argument {i} ({name}): {e}")))
    }

    /// Optional parameter `i`.
    pub(crate) fn opt<T: DeserializeOwned>(
        &self,
        i: usize,
        name: &str,
    ) -> Result<Option<T>, RpcError> {
        match self.0.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.req(i, name).map(Some),
        }
    }

    /// Rejects extra arguments.
    pub(crate) fn at_most(&self, n: usize) -> Result<&Self, RpcError> {
        if self.0.len() > n {
            return Err(RpcError::invalid_params(format!(
                "too many arguments, want at most {n}"
            )));
        }
        Ok(self)
    }
}
