//! One WebSocket connection: reads calls, answers them, delivers
//! subscriptions, and closes with a reason when it must.

use super::{
    subs::{id_json, Kind, Outbox, Stop, Subs},
    Slot,
};
use crate::{
    access::RequestCaller,
    answer, authenticate, in_context,
    jsonrpc::{self, code, parse_body, Body as RpcBody, Call, RpcError},
    methods::method_action,
    params::Params,
    rate_error,
    request::{self, RequestContext},
    AuthFailure, RpcState, PUBLIC_METHODS,
};
use access_control::Principal;
use alloy_primitives::U128;
use audit::{action, Outcome};
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use sequencer::PendingTx;
use serde_json::{json, Value};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::{broadcast, mpsc, oneshot};

/// How long a connection without a header credential has to send
/// `prividium_auth`.
pub(super) const AUTH_WINDOW: Duration = Duration::from_secs(10);

/// How long an answer may wait for room in the send queue.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// How long a notification may wait for room in the send queue: a burst
/// (a block of many logs) waits for a reader that keeps up; a reader that
/// stopped reading is cut off once this passes.
const DELIVERY_WAIT: Duration = Duration::from_secs(5);

/// How often the credential is checked again.
const RECHECK: Duration = Duration::from_secs(1);

/// Why the connection ends: the client left, or the node closes it.
enum End {
    Gone,
    Close(u16, String),
}

struct Conn {
    state: Arc<RpcState>,
    peer: SocketAddr,
    slot: Slot,
    principal: Option<Arc<Principal>>,
    /// `Bearer …`, as authenticated (header or `prividium_auth`).
    credential: Option<String>,
    subs: Subs,
    pending: Option<broadcast::Receiver<PendingTx>>,
    out: mpsc::Sender<Message>,
}

/// Serves `socket` until the client leaves or the node closes it.
pub(super) async fn run(
    state: Arc<RpcState>,
    peer: SocketAddr,
    socket: WebSocket,
    slot: Slot,
    principal: Option<Arc<Principal>>,
    credential: Option<String>,
) {
    let (sink, mut stream) = socket.split();
    let (out, queued) = mpsc::channel(state.limits.ws_send_queue.max(1));
    let (kill, killed) = oneshot::channel();
    let writer = tokio::spawn(write(sink, queued, killed));
    let mut heads = state.sequencer.subscribe();
    heads.mark_unchanged();
    let mut conn = Conn {
        subs: Subs::new(state.limits.max_subscriptions),
        state,
        peer,
        slot,
        principal,
        credential,
        pending: None,
        out,
    };
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let auth_deadline = tokio::time::sleep(AUTH_WINDOW);
    tokio::pin!(auth_deadline);
    let end = loop {
        let step = tokio::select! {
            m = stream.next() => match m {
                None | Some(Ok(Message::Close(_))) => Err(End::Gone),
                Some(Ok(Message::Text(text))) => conn.on_text(text.as_bytes()).await,
                Some(Ok(Message::Binary(_))) => Err(End::Close(
                    close_code::UNSUPPORTED,
                    "binary messages are not JSON-RPC: send text".into(),
                )),
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(read_error(&e, conn.state.limits.max_body_bytes)),
            },
            changed = heads.changed(), if conn.subs.wants_blocks() => match changed {
                Ok(()) => {
                    let head = heads.borrow_and_update().number;
                    conn.deliver_blocks(head).await
                }
                Err(_) => Err(End::Close(close_code::AWAY, "node shutting down".into())),
            },
            tx = next_pending(&mut conn.pending), if conn.subs.wants_pending() => match tx {
                Some(tx) => conn.deliver_pending(&tx).await,
                None => Ok(()),
            },
            _ = recheck.tick(), if conn.principal.is_some() => conn.recheck().await,
            _ = &mut auth_deadline, if conn.principal.is_none() => Err(End::Close(
                close_code::POLICY,
                format!("not authenticated within {} s: send prividium_auth first", AUTH_WINDOW.as_secs()),
            )),
        };
        if let Err(end) = step {
            break end;
        }
    };
    let frame = match end {
        End::Gone => None,
        End::Close(code, reason) => {
            tracing::debug!(peer = %conn.peer, code, %reason, "closing WebSocket");
            Some(CloseFrame {
                code,
                reason: reason.into(),
            })
        }
    };
    let _ = kill.send(frame);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// Writes queued messages until told to stop; then sends the close frame,
/// if any, without waiting long for a consumer that no longer reads.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut queued: mpsc::Receiver<Message>,
    mut killed: oneshot::Receiver<Option<CloseFrame>>,
) {
    let frame = loop {
        let next = tokio::select! {
            biased;
            k = &mut killed => break k.ok().flatten(),
            m = queued.recv() => m,
        };
        let Some(m) = next else { break None };
        tokio::select! {
            biased;
            k = &mut killed => break k.ok().flatten(),
            sent = sink.send(m) => if sent.is_err() { return },
        }
    };
    if let Some(f) = frame {
        let _ =
            tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(f)))).await;
    }
}

async fn next_pending(rx: &mut Option<broadcast::Receiver<PendingTx>>) -> Option<PendingTx> {
    let Some(rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(tx) => return Some(tx),
            // A subscriber that fell this far behind misses the oldest.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// A read error's close: 1009 for a message over the limit, else 1002.
fn read_error(e: &axum::Error, limit: usize) -> End {
    let too_big = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tungstenite::Error>())
        .is_some_and(|t| matches!(t, tungstenite::Error::Capacity(_)));
    if too_big {
        End::Close(close_code::SIZE, format!("message exceeds {limit} bytes"))
    } else {
        End::Close(close_code::PROTOCOL, "malformed WebSocket frame".into())
    }
}

impl Conn {
    /// Queues the answer `v` for the client. Answers wait for room (the
    /// socket is not read meanwhile, so a client sending faster than it
    /// reads is slowed down, not cut off), but not forever.
    async fn send(&self, v: &Value) -> Result<(), End> {
        let msg = Message::Text(v.to_string().into());
        match tokio::time::timeout(REPLY_WAIT, self.out.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => Err(End::Close(
                close_code::POLICY,
                format!(
                    "slow consumer: answers not read for {} s",
                    REPLY_WAIT.as_secs()
                ),
            )),
        }
    }

    fn request_context(&self) -> RequestContext {
        RequestContext::new(self.peer.ip(), None)
    }

    fn caller(&self) -> Option<RequestCaller> {
        self.principal
            .as_ref()
            .map(|p| RequestCaller::new(self.state.access.caller(p.clone())))
    }

    /// One text message: a call or a batch, answered in one message.
    async fn on_text(&mut self, bytes: &[u8]) -> Result<(), End> {
        let state = self.state.clone();
        let parsed = match parse_body(bytes, state.limits.max_batch) {
            Ok(p) => p,
            Err(e) => return self.send(&jsonrpc::failure(Value::Null, &e)).await,
        };
        let (calls, single) = match parsed {
            RpcBody::Single(c) => (vec![c], true),
            RpcBody::Batch(cs) => (cs, false),
        };
        let mut waited = false;
        if let Some(p) = &self.principal {
            if let Err((refusal, report)) = state.access.rate.admit(p, calls.len() as u64) {
                if let Some(r) = report {
                    crate::access_events::record_rate_report(&state.access.trail, &r);
                }
                let (err, _) = rate_error(&refusal);
                let out: Vec<Value> = calls
                    .into_iter()
                    .filter_map(|c| match c {
                        Ok(c) => c.id.map(|id| jsonrpc::failure(id, &err)),
                        Err(bad) => Some(jsonrpc::failure(bad.0, &err)),
                    })
                    .collect();
                return self.reply(out, single).await;
            }
            waited = crate::audit_backpressure(&state.access.trail, p, calls.len() as u64).await;
        }
        if waited {
            // The credential may have been revoked while this waited (the
            // periodic recheck runs on this same loop, which the wait held).
            self.recheck().await?;
        }
        let ctx = self.request_context();
        let mut out = Vec::with_capacity(calls.len());
        for call in calls {
            let answered = match call {
                Ok(c) if is_local(&c.method) => {
                    let id = c.id.clone();
                    let result = in_context(ctx.clone(), self.local(c)).await;
                    id.map(|id| match result {
                        Ok(v) => jsonrpc::success(id, v),
                        Err(e) => jsonrpc::failure(id, &e),
                    })
                }
                Ok(c)
                    if self.principal.is_none() && !PUBLIC_METHODS.contains(&c.method.as_str()) =>
                {
                    c.id.map(|id| jsonrpc::failure(id, &unauthenticated()))
                }
                other => {
                    let rc = self.caller();
                    in_context(ctx.clone(), answer(&state, rc.as_ref(), other)).await
                }
            };
            out.extend(answered);
        }
        self.reply(out, single).await
    }

    async fn reply(&self, out: Vec<Value>, single: bool) -> Result<(), End> {
        match (single, out.len()) {
            (_, 0) => Ok(()),
            (true, _) => self.send(&out[0]).await,
            (false, _) => self.send(&Value::Array(out)).await,
        }
    }

    /// The calls the connection answers itself.
    async fn local(&mut self, call: Call) -> Result<Value, RpcError> {
        let p = Params::new(call.params)?;
        if call.method == "prividium_auth" {
            return self.authenticate(&p).await;
        }
        let rc = self.caller().ok_or_else(unauthenticated)?;
        let access = &self.state.access;
        if let Some(action) = method_action(&call.method) {
            access.check_method(&rc, action)?;
        }
        match call.method.as_str() {
            "eth_subscribe" => {
                let kind = Kind::parse(&p)?;
                access.check_method(&rc, kind.action())?;
                if matches!(kind, Kind::Pending) && self.pending.is_none() {
                    self.pending = Some(self.state.sequencer.pending_feed());
                }
                let id = self.subs.add(kind, self.state.sequencer.head().number)?;
                Ok(id_json(id))
            }
            _ => {
                let id: U128 = p.at_most(1)?.req(0, "subscription id")?;
                let removed = self.subs.remove(id.to::<u128>());
                if !self.subs.wants_pending() {
                    self.pending = None;
                }
                Ok(Value::Bool(removed))
            }
        }
    }

    /// `prividium_auth`: the token (with or without `Bearer `) a browser
    /// could not put in a header.
    async fn authenticate(&mut self, p: &Params) -> Result<Value, RpcError> {
        if self.principal.is_some() {
            return Err(RpcError::invalid_params(
                "this connection is already authenticated",
            ));
        }
        let token: String = p.at_most(1)?.req(0, "token")?;
        let token = token.strip_prefix("Bearer ").unwrap_or(&token).trim();
        let header = format!("Bearer {token}");
        let principal = match authenticate(&self.state, Some(&header), self.peer, 1).await {
            Ok(p) => p,
            Err(AuthFailure::Refused(why)) => {
                return Err(RpcError::new(
                    code::UNAUTHORIZED,
                    format!("unauthorized: {why}"),
                ))
            }
            Err(AuthFailure::Unaudited(why)) => {
                return Err(RpcError::new(
                    code::AUDIT_UNAVAILABLE,
                    format!("audit log unavailable, request refused: {why}"),
                ))
            }
            Err(AuthFailure::Limited(r)) => return Err(rate_error(&r).0),
        };
        if !self.slot.claim(&principal.key()) {
            return Err(RpcError::new(
                code::LIMIT,
                format!(
                    "at most {} WebSocket connections per principal",
                    self.state.limits.max_ws_per_principal
                ),
            ));
        }
        let who = principal.to_string();
        self.principal = Some(principal);
        self.credential = Some(header);
        Ok(json!({ "principal": who }))
    }

    /// The credential still holds (not revoked, not expired)?
    async fn recheck(&mut self) -> Result<(), End> {
        let Some(header) = &self.credential else {
            return Ok(());
        };
        let access = &self.state.access;
        if let Err(why) = access
            .authn
            .authenticate(Some(header), Some(self.peer.ip()))
            .await
        {
            if let Some(p) = &self.principal {
                let event = request::by(p, action::AUTH_FAILED, Outcome::Deny).details(json!({
                    "reason": why.to_string(),
                    "transport": "websocket",
                    "closed": true,
                }));
                let _ = access.trail.record(event);
            }
            return Err(End::Close(
                close_code::POLICY,
                format!("credential no longer valid: {why}"),
            ));
        }
        Ok(())
    }

    /// Delivers blocks up to `head`; one audited round.
    async fn deliver_blocks(&mut self, head: u64) -> Result<(), End> {
        let Some(rc) = self.caller() else {
            return Ok(());
        };
        let ctx = self.request_context();
        ctx.reads.method("eth_subscription");
        let state = self.state.clone();
        let out = Outbox {
            queue: &self.out,
            wait: DELIVERY_WAIT,
        };
        let delivered = in_context(ctx, self.subs.blocks(&state, &rc, head, &out)).await;
        match delivered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(stop)) => Err(stopped(stop, state.limits.ws_send_queue)),
            Err(e) => {
                tracing::warn!(error = %e.message, "subscription delivery failed");
                Ok(())
            }
        }
    }

    async fn deliver_pending(&mut self, tx: &PendingTx) -> Result<(), End> {
        let Some(rc) = self.caller() else {
            return Ok(());
        };
        let out = Outbox {
            queue: &self.out,
            wait: DELIVERY_WAIT,
        };
        self.subs
            .pending(&rc, tx, &out)
            .await
            .map_err(|stop| stopped(stop, self.state.limits.ws_send_queue))
    }
}

fn stopped(stop: Stop, queue: usize) -> End {
    match stop {
        Stop::Gone => End::Gone,
        Stop::Slow => End::Close(
            close_code::POLICY,
            format!(
                "slow consumer: {queue} messages unread for {} s",
                DELIVERY_WAIT.as_secs()
            ),
        ),
    }
}

fn is_local(method: &str) -> bool {
    matches!(
        method,
        "prividium_auth" | "eth_subscribe" | "eth_unsubscribe"
    )
}

fn unauthenticated() -> RpcError {
    RpcError::new(
        code::UNAUTHORIZED,
        "unauthorized: authenticate first (Authorization header at connect, or prividium_auth)",
    )
}
