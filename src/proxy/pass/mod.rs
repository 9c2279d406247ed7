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
//! - only when it plainly passes the intake checks ([`plain::plain`], a
//!   strict subset of `intake::check`: limits, framing, `Host`, canonical
//!   path);
//! - only when the policy forwards it with nothing to record: no enforcing
//!   rule other than `allow`, no report-only match, no body needed.
//!
//! Anything else (an answer, a rejection, a body-aware rule, a chunked or
//! `Expect: 100-continue` upload, a WebSocket, HTTP/2, HTTP/1.0) is served
//! by hyper through the full handler, which reads the same bytes again. The
//! connection then stays with hyper. The forwarding headers come from the
//! same `forwarding_values` as on hyper's path, and the metrics and sampled
//! forward records from the same `count` and `decision_record`, so both
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
pub mod plain;

use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::header::{self, HeaderValue};
use http::{Response, Uri, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use self::head::Parse;
use super::{ConnInfo, Proxy, ProxyBody, ProxyError};
use crate::policy::{Action, BodyView, Evaluation, RequestView};
use crate::upstream::headers::Hop;

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
    /// The current request's id.
    rid: Vec<u8>,
    /// The current request's `Accept` value (for an error page).
    accept: Vec<u8>,
    /// When the current request's response head was ready.
    answered: Option<std::time::Instant>,
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

/// How waiting for client bytes ended.
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
            rid: Vec::with_capacity(64),
            accept: Vec::with_capacity(64),
            answered: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Starts the deadline for the next request head.
    pub fn start_deadline(&mut self, within: Duration) {
        self.timer.as_mut().reset(Instant::now() + within);
    }

    /// Reads more client bytes, until the deadline.
    pub async fn read_more(&mut self) -> Idle {
        make_room(&mut self.buf);
        tokio::select! {
            biased;
            r = self.io.read_buf(&mut self.buf) => match r {
                Ok(n) if n > 0 => Idle::Data,
                _ => Idle::Gone,
            },
            () = self.timer.as_mut() => Idle::Gone,
        }
    }

    /// Closes after an error page the way nginx's lingering close does:
    /// send FIN, then read and discard what the client is still sending
    /// (a bounded amount, for a bounded time), so that closing with unread
    /// bytes does not reset the connection before the client has read the
    /// answer.
    async fn linger(&mut self) {
        let _ = self.io.shutdown().await;
        self.start_deadline(Duration::from_secs(2));
        let mut discarded = 0;
        while discarded < 1 << 20 {
            self.buf.clear();
            if self.read_more().await == Idle::Gone {
                break;
            }
            discarded += self.buf.len();
        }
    }

    /// The request id as a header value.
    fn rid_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.rid).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }

    async fn write_out(&mut self) -> Result<(), ()> {
        exchange::write_all(&mut self.io, &self.out).await
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
        let (ready, start) = loop {
            let refused = match self.prepare(client, draining) {
                Parse::Head(ready, _) => break (ready, std::time::Instant::now()),
                Parse::Other => return Next::Handoff,
                Parse::Invalid => ProxyError::BadRequest("malformed request head"),
                Parse::Partial if client.buf.len() > self.limits.max_head_bytes() => {
                    ProxyError::HeadersTooLarge("request head too large")
                }
                Parse::Partial => {
                    if client.read_more().await == Idle::Gone {
                        return Next::Close;
                    }
                    continue;
                }
            };
            return self.refuse(client, refused).await;
        };
        let outcome = self.exchange(client, &ready).await;
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
        let trail = super::record::Trail::default();
        // Until the response head, as on hyper's path.
        let answered = client
            .answered
            .take()
            .unwrap_or_else(std::time::Instant::now);
        self.count(answered - start, &trail, status.as_ref().copied());
        if let Err(e) = &status {
            super::log_error(e, &client.rid_value(), Some(&ready.method));
        }
        if let Some((raw_target, user_agent)) = ready.sampled {
            let seen = super::record::Seen {
                start,
                method: ready.method,
                version: Version::HTTP_11,
                raw_target,
                user_agent,
                peer: client.info.peer.ip(),
            };
            let rid = client.rid_value();
            if let Some(rec) = self.decision_record(&seen, &trail, &rid, status.as_ref().copied()) {
                self.log.record(rec).await;
            }
        }
        next
    }

    /// Answers a request head that cannot be read (400, or 431 when it
    /// does not end within [`crate::config::Limits::max_head_bytes`]) with
    /// an error page, and closes: where the next request would start is
    /// unknown.
    async fn refuse<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        client: &mut Client<I>,
        err: ProxyError,
    ) -> Next {
        let start = std::time::Instant::now();
        self.ids.fill(None, &mut client.rid);
        let rid = client.rid_value();
        client.out.clear();
        write_local(
            &mut client.out,
            super::local::error_response(&err, None, &rid),
        );
        if client.write_out().await.is_ok() {
            client.linger().await;
        }
        self.count(start.elapsed(), &super::record::Trail::default(), Err(&err));
        super::log_error(&err, &rid, None);
        Next::Close
    }

    /// Judges the head at the start of `client.buf`. When it is complete
    /// and a plain forward, writes the upstream head into `client.out` and
    /// the request id into `client.rid`, and removes the head from the
    /// buffer. [`Parse::Other`] leaves everything for the full handler.
    fn prepare<I>(&self, client: &mut Client<I>, draining: bool) -> Parse<Ready> {
        let mut fields = head::fields();
        let (req, len) = match head::parse_request(&client.buf, &mut fields) {
            Parse::Head(req, len) => (req, len),
            Parse::Partial => return Parse::Partial,
            Parse::Other => return Parse::Other,
            Parse::Invalid => return Parse::Invalid,
        };
        let Some(plain) = plain::plain(&req, &self.limits) else {
            return Parse::Other;
        };
        if !self.rules.rules().is_empty()
            && (self.rules.may_match(&plain.path)
                || (self.rules.needs_bearer_tid() && plain.authorization))
            && !self.plainly_forwarded(&plain, req.headers)
        {
            return Parse::Other;
        }
        let upstream_host = if self.upstream.preserve_host {
            plain.host
        } else {
            self.upstream.authority.as_str()
        };
        let hop = Hop {
            peer: client.info.peer.ip(),
            trusted: self.forwarding.is_trusted(client.info.peer.ip()),
            proto: if client.info.tls { "https" } else { "http" },
            host: Some(plain.host),
        };
        self.ids.fill(plain.request_id, &mut client.rid);
        client.accept.clear();
        client
            .accept
            .extend_from_slice(plain.accept.unwrap_or_default());
        client.out.clear();
        plain::write_upstream_head(
            &mut client.out,
            &req,
            &plain,
            upstream_host,
            &hop,
            &client.rid,
        );
        let sampled = (self.forwarded_every > 0).then(|| {
            let target = req.path.unwrap_or("/");
            let user_agent = req
                .headers
                .iter()
                .find(|h| head::is(h, &header::USER_AGENT))
                .and_then(|h| HeaderValue::from_bytes(h.value).ok());
            (Uri::try_from(target).unwrap_or_default(), user_agent)
        });
        let ready = Ready {
            head_request: plain.method == http::Method::HEAD,
            method: plain.method,
            body_len: plain.body_len,
            close: draining || plain.close,
            sampled,
        };
        client.buf.advance(len);
        Parse::Head(ready, len)
    }

    /// Whether the policy forwards this request with nothing to record and
    /// without looking at its body. Anything else, errors included, is for
    /// the full handler.
    fn plainly_forwarded(&self, plain: &plain::Plain<'_>, fields: &[httparse::Header<'_>]) -> bool {
        let mut headers = http::HeaderMap::with_capacity(fields.len());
        for f in fields {
            let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(f.name.as_bytes()),
                HeaderValue::from_bytes(f.value),
            ) else {
                return false;
            };
            headers.append(name, value);
        }
        let Ok((host, bearer_tid)) = self.policy_inputs(&headers, Some(plain.host)) else {
            return false;
        };
        let view = RequestView {
            method: &plain.method,
            host: host.as_deref(),
            path: &plain.path,
            headers: &headers,
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

/// A request judged plain, its upstream head written.
struct Ready {
    method: http::Method,
    head_request: bool,
    body_len: u64,
    /// Close the client connection after the response.
    close: bool,
    /// The raw target and `User-Agent`, when this request's forward is
    /// sampled into the decision log.
    sampled: Option<(Uri, Option<HeaderValue>)>,
}

impl Ready {
    /// Whether the client connection carries another request after a
    /// response framed by `framing`.
    fn keeps_client(&self, framing: head::Framing) -> bool {
        !self.close && framing != head::Framing::Close
    }
}

/// Leaves at least 4 KiB to read into, growing by 16 KiB when needed (a
/// buffer emptied with `clear` keeps its room).
fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 4 * 1024 {
        buf.reserve(16 * 1024);
    }
}

/// Appends a complete local response (an error page) as HTTP/1.1, closing
/// the connection after it.
fn write_local(out: &mut Vec<u8>, resp: Response<ProxyBody>) {
    let (parts, body) = resp.into_parts();
    let bytes = body.local_bytes().unwrap_or_default();
    head::status_line(out, parts.status);
    for (name, value) in &parts.headers {
        head::field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    head::field(out, b"content-length", bytes.len().to_string().as_bytes());
    head::field(out, b"connection", b"close");
    head::date(out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
}
