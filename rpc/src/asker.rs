//! The plain HTTPS routes beside JSON-RPC (the compliance API, proof files)
//! all start the same way: take the node's state, the peer and the headers,
//! run the answer as one request (its ids on every decision, `x-request-id`
//! on the response) and turn an early refusal into the response sent.
//! [`Asker`] is that start, so each route reads as its own steps only.

use super::{authenticate_http, http_error, in_request, RpcState};
use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{request::Parts, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use std::{future::Future, net::SocketAddr, sync::Arc};

/// Who asks, from where, of which node.
pub(crate) struct Asker {
    pub(crate) state: Arc<RpcState>,
    pub(crate) peer: SocketAddr,
    pub(crate) headers: HeaderMap,
}

/// A route's answer: `Err` is a refusal, sent as it is.
pub(crate) type Answer = Result<Response, Response>;

impl FromRequestParts<Arc<RpcState>> for Asker {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RpcState>,
    ) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            state: state.clone(),
            peer,
            headers: parts.headers.clone(),
        })
    }
}

impl Asker {
    /// Runs `work` as this request and sends what it answers or refuses.
    pub(crate) async fn answer(&self, work: impl Future<Output = Answer>) -> Response {
        in_request(self.peer, &self.headers, async {
            work.await.unwrap_or_else(|refusal| refusal)
        })
        .await
    }

    /// The authenticated caller; `Err` is the 401, 429 or 503 to send.
    pub(crate) async fn principal(&self) -> Result<Arc<access_control::Principal>, Response> {
        authenticate_http(&self.state, self.peer, &self.headers).await
    }
}

/// A JSON error body with `status` and nothing else to add.
pub(crate) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    http_error(status, message, Value::Null)
}
