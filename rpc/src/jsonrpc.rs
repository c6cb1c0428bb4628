//! JSON-RPC 2.0 envelopes and error codes.

use serde_json::{json, Value};

/// Standard and server error codes.
pub(crate) mod code {
    pub(crate) const PARSE: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL: i64 = -32603;
    /// Server errors: transaction rejected, state unavailable.
    pub(crate) const SERVER: i64 = -32000;
    /// Missing or invalid credentials.
    pub(crate) const UNAUTHORIZED: i64 = -32001;
    /// Authenticated, but a policy denies it (`data.rule` names the rule).
    pub(crate) const FORBIDDEN: i64 = -32003;
    /// Request exceeds a size limit.
    pub(crate) const LIMIT: i64 = -32005;
    /// The audit trail cannot take events: the request is refused rather
    /// than served unaudited.
    pub(crate) const AUDIT_UNAVAILABLE: i64 = -32011;
    /// EVM execution reverted (geth's code; clients decode `data`).
    pub(crate) const EXECUTION_REVERTED: i64 = 3;
}

/// An error returned to the caller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
    /// A policy denial, carrying the deciding rule id.
    pub(crate) fn forbidden(what: impl std::fmt::Display, rule: &str) -> Self {
        // An allow the audit trail could not record is refused as the
        // trail's outage, not as a policy's answer.
        if rule == access_control::policy::AUDIT_UNAVAILABLE {
            return Self {
                code: code::AUDIT_UNAVAILABLE,
                message: format!("audit log unavailable, request refused: {what}"),
                data: Some(json!({ "rule": rule })),
            };
        }
        Self {
            code: code::FORBIDDEN,
            message: format!("forbidden: {what} (rule {rule})"),
            data: Some(json!({ "rule": rule })),
        }
    }
    pub(crate) fn invalid_params(message: impl std::fmt::Display) -> Self {
        Self::new(code::INVALID_PARAMS, format!("invalid params: {message}"))
    }
    pub(crate) fn server(message: impl std::fmt::Display) -> Self {
        Self::new(code::SERVER, message.to_string())
    }
    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal RPC error");
        Self::new(code::INTERNAL, "internal error")
    }
    fn to_json(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            e["data"] = data.clone();
        }
        e
    }
}

/// A well-formed call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// `None` for notifications (no response is sent).
    pub(crate) id: Option<Value>,
    pub(crate) method: String,
    pub(crate) params: Value,
}

/// A malformed entry: the id to answer with and why (boxed: it is the cold path).
pub(crate) type Invalid = Box<(Value, RpcError)>;

/// The body after parsing: one entry, or a batch, each valid or not.
#[derive(Debug)]
pub(crate) enum Body {
    Single(Result<Call, Invalid>),
    Batch(Vec<Result<Call, Invalid>>),
}

/// Parses a request body. `Err` is a whole-body failure (parse error,
/// empty or oversized batch).
pub(crate) fn parse_body(bytes: &[u8], max_batch: usize) -> Result<Body, RpcError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| RpcError::new(code::PARSE, format!("parse error: {e}")))?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(RpcError::new(
                    code::INVALID_REQUEST,
                    "invalid request: empty batch",
                ));
            }
            if items.len() > max_batch {
                return Err(RpcError::new(
                    code::LIMIT,
                    format!(
                        "batch of {} requests exceeds limit of {max_batch}",
                        items.len()
                    ),
                ));
            }
            Ok(Body::Batch(items.into_iter().map(parse_call).collect()))
        }
        other => Ok(Body::Single(parse_call(other))),
    }
}

fn parse_call(value: Value) -> Result<Call, Invalid> {
    let invalid = |id: Value, why: &str| {
        Err(Box::new((
            id,
            RpcError::new(code::INVALID_REQUEST, format!("invalid request: {why}")),
        )))
    };
    let Value::Object(mut obj) = value else {
        return invalid(Value::Null, "not an object");
    };
    let id = obj.remove("id");
    let reply_id = match &id {
        None | Some(Value::Null) | Some(Value::Number(_)) | Some(Value::String(_)) => {
            id.clone().unwrap_or(Value::Null)
        }
        Some(_) => return invalid(Value::Null, "id must be a string, number or null"),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(reply_id, "jsonrpc must be \"2.0\"");
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return invalid(reply_id, "method must be a string");
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(p @ (Value::Array(_) | Value::Object(_))) => p,
        Some(_) => return invalid(reply_id, "params must be an array or object"),
    };
    Ok(Call { id, method, params })
}

pub(crate) fn success(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub(crate) fn failure(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error.to_json()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(body: &str) -> Result<Call, Invalid> {
        match parse_body(body.as_bytes(), 10).unwrap() {
            Body::Single(c) => c,
            Body::Batch(_) => panic!("expected single"),
        }
    }

    #[test]
    fn malformed_envelopes_get_spec_codes() {
        assert_eq!(parse_body(b"{not json", 10).unwrap_err().code, code::PARSE);
        assert_eq!(
            parse_body(b"[]", 10).unwrap_err().code,
            code::INVALID_REQUEST
        );
        let (id, e) = *single(r#"{"jsonrpc":"1.0","id":7,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (json!(7), code::INVALID_REQUEST));
        let (_, e) = *single(r#"{"jsonrpc":"2.0","id":1,"method":5}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
        let (_, e) = *single(r#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
        let big = format!(
            "[{}]",
            [r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#; 11].join(",")
        );
        assert_eq!(
            parse_body(big.as_bytes(), 10).unwrap_err().code,
            code::LIMIT
        );
    }

    #[test]
    fn notifications_have_no_id_and_params_default_to_empty() {
        let call = single(r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#).unwrap();
        assert!(call.id.is_none());
        assert_eq!(call.params, json!([]));
    }
}
