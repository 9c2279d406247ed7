//! The HTTP/1.1 pass-through path: plain forwards without hyper.
//!
//! Most of a portal's traffic is keep-alive HTTP/1.1 requests that the
//! policy simply forwards. For those, handing each request from hyper's
//! server task to hyper's client task and back costs more CPU than the
//! forwarding itself, so this path does what nginx and HAProxy do: one task
//! per client connection parses the head, writes it to a pooled upstream
//! connection it drives itself, and copies the response back.
//!
//! It serves a request only when it is sure it may, and hands everything
//! else to hyper, unchanged, before anything was sent anywhere:
//! - only HTTP/1.1 in origin-form, without `Transfer-Encoding`, `Upgrade`
//!   or `Expect`, with at most [`head::MAX_REQUEST_HEADERS`] fields
//!   ([`head::parse_request`]);
//! - only when the proxy's own intake checks pass (the same
//!   `intake::check`: limits, framing, `Host`, canonical path);
//! - only when the policy forwards it with nothing to record: no enforcing
//!   rule other than `allow`, no report-only match, no body needed.
//!
//! Anything else (an answer, a rejection, a body-aware rule, a chunked or
//! `Expect: 100-continue` upload, a WebSocket, HTTP/2, HTTP/1.0) is served
//! by hyper through the full handler, which reads the same bytes again. The
//! connection then stays with hyper. The header rewriting, the metrics and
//! the sampled forward records are the handler's own functions, so both
//! paths forward the same headers and count the same way.
//!
//! Upstream responses are checked as strictly as requests
//! ([`head::parse_response`]): ambiguous framing is a 502, a chunked body
//! is passed through unchanged while [`chunked::Chunked`] finds its end,
//! and an upstream connection returns to the pool only after a complete,
//! well-framed response.

pub mod chunked;
mod exchange;
pub mod head;

use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderValue};
use http::{Response, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use self::head::{Parse, UnsplitFront};
use super::{intake, ConnInfo, Proxy, ProxyBody, X_REQUEST_ID};
use crate::policy::{Action, BodyView, Evaluation, RequestView};

/// A client connection on the pass-through path, with its buffers.
pub struct Client<I> {
    /// The connection.
    pub io: I,
    /// Bytes read from the client and not yet used.
    pub buf: BytesMut,
    /// The connection's peer and whether it is TLS.
    pub info: ConnInfo,
    /// Heads on their way out.
    out: Vec<u8>,
    /// Bytes read from the upstream.
    up_buf: BytesMut,
    /// The deadline of the current wait (request head, response head).
    timer: Pin<Box<Sleep>>,
}

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
    /// Give the connection, with the unread bytes in `buf`, to hyper.
    Handoff,
}

/// Why waiting for client bytes ended without any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Bytes arrived.
    Data,
    /// The client closed, the read failed, or the deadline passed.
    Gone,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Client<I> {
    /// A client connection with empty buffers.
    pub fn new(io: I, info: ConnInfo) -> Self {
        Client {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            info,
            out: Vec::with_capacity(4 * 1024),
            up_buf: BytesMut::with_capacity(16 * 1024),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Starts the deadline for the next request head.
    pub fn start_deadline(&mut self, within: Duration) {
        self.timer.as_mut().reset(Instant::now() + within);
    }

    /// Reads more client bytes, until the deadline.
    pub async fn read_more(&mut self) -> Idle {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8 * 1024);
        }
        tokio::select! {
            biased;
            r = self.io.read_buf(&mut self.buf) => match r {
                Ok(n) if n > 0 => Idle::Data,
                _ => Idle::Gone,
            },
            () = self.timer.as_mut() => Idle::Gone,
        }
    }

    async fn write_out(&mut self) -> std::io::Result<()> {
        self.io.write_all(&self.out).await?;
        self.io.flush().await
    }
}

impl Proxy {
    /// Serves the request that starts in `client.buf`, or says it is
    /// hyper's. `draining`: close the connection after this response.
    pub async fn pass<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        client: &mut Client<I>,
        draining: bool,
    ) -> Next {
        let max_head = self.limits.max_header_bytes + self.limits.max_uri_bytes + 1024;
        let (req, head) = loop {
            match head::parse_request(&mut client.buf) {
                Parse::Head(req, head) => break (req, head),
                Parse::Other => return Next::Handoff,
                // Over the limits: hyper answers with its 414/431.
                Parse::Partial if client.buf.len() > max_head => return Next::Handoff,
                Parse::Partial => {
                    if client.read_more().await == Idle::Gone {
                        return Next::Close;
                    }
                }
            }
        };
        let start = std::time::Instant::now();
        let checked = match intake::check(&req, &self.limits) {
            Ok(c) if !c.upgrade => c,
            _ => {
                client.buf.unsplit_front(head);
                return Next::Handoff;
            }
        };
        let (mut parts, ()) = req.into_parts();
        let raw_target = parts.uri.clone();
        if let Some(target) = checked.target.clone() {
            parts.uri = Uri::from(target);
        }
        if !self.plainly_forwarded(&parts, checked.host.as_ref()) {
            client.buf.unsplit_front(head);
            return Next::Handoff;
        }
        let rid = self.ids.for_request(parts.headers.get(&X_REQUEST_ID));
        let accept = parts.headers.get(header::ACCEPT).cloned();
        let user_agent = parts.headers.get(header::USER_AGENT).cloned();
        let close = draining || head::has_token(&parts.headers, "close");
        // intake checked it: one Content-Length of digits, within the limit.
        let body_len: u64 = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if self
            .upstream_headers(
                &mut parts.headers,
                &checked,
                client.info,
                &rid,
                Version::HTTP_11,
            )
            .is_err()
        {
            client.buf.unsplit_front(head);
            return Next::Handoff;
        }
        drop(head);

        let outcome = self
            .exchange(client, &parts, body_len, &rid, accept.as_ref(), close)
            .await;
        let (status, next) = match outcome {
            exchange::Outcome::Done { status, keep_alive } => (
                Ok(status),
                if keep_alive {
                    Next::KeepAlive
                } else {
                    Next::Close
                },
            ),
            exchange::Outcome::Broken(status) => (status, Next::Close),
        };
        self.count(
            start,
            &super::record::Trail::default(),
            status.as_ref().copied(),
        );
        if let Err(e) = &status {
            super::log_error(e, &rid, &parts.method);
        }
        if self.forwarded_every > 0 {
            let seen = super::record::Seen {
                start,
                method: parts.method.clone(),
                version: Version::HTTP_11,
                raw_target,
                user_agent,
                peer: client.info.peer.ip(),
            };
            let trail = super::record::Trail::default();
            if let Some(rec) = self.decision_record(&seen, &trail, &rid, status.as_ref().copied()) {
                self.log.record(rec).await;
            }
        }
        next
    }

    /// Whether the policy forwards this request with nothing to record and
    /// without looking at its body. Anything else, errors included, is for
    /// the full handler.
    fn plainly_forwarded(&self, parts: &http::request::Parts, host: Option<&HeaderValue>) -> bool {
        if self.rules.rules().is_empty() {
            return true;
        }
        let Ok((host, bearer_tid)) = self.policy_inputs(parts, host) else {
            return false;
        };
        let view = RequestView {
            method: &parts.method,
            host: host.as_deref(),
            path: parts.uri.path(),
            headers: &parts.headers,
            bearer_tid,
        };
        match self
            .rules
            .evaluate(&view, BodyView::NotRead, &self.directory)
        {
            Ok(Evaluation::Decided(d)) => {
                d.report_only.is_none() && d.enforced.is_none_or(|m| m.rule.action == Action::Allow)
            }
            _ => false,
        }
    }
}

/// Appends a complete local response (an error page) as HTTP/1.1, closing
/// the connection after it.
fn write_local(out: &mut Vec<u8>, resp: Response<ProxyBody>) {
    let (mut parts, body) = resp.into_parts();
    let bytes = body.local_bytes().unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    add_date(&mut parts.headers);
    head::write_response(out, parts.status, &parts.headers);
    out.extend_from_slice(bytes);
}

/// `Date`, as hyper's server adds it to responses that have none.
fn add_date(headers: &mut http::HeaderMap) {
    if !headers.contains_key(header::DATE) {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
        {
            headers.insert(header::DATE, v);
        }
    }
}
