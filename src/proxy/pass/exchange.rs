//! One forward on the pass-through codec: write the rewritten head and the
//! body to a pooled upstream connection, read the response head, and relay
//! the body.
//!
//! The request head and whatever of the body is already buffered go out in
//! one write, and a small response goes back in one write. A pooled
//! connection that turns out to be closed before any response byte arrives
//! is replaced and the request sent again only as
//! [`crate::upstream::pool::may_resend`] allows: an idempotent method whose
//! body was sent from the buffer. `upstream.response_header_timeout` bounds
//! sending the request and receiving the response head, as on hyper's path.
//! Every failure is a [`RelayError`] naming the side and the cause.

use std::io;

use bytes::Buf;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::chunked::{Chunked, ChunkedError};
use super::head::{self, BadResponse, Framing};
use super::{local, make_room, Conn};
use crate::head::HeadView;
use crate::proxy::handler::upstream_error;
use crate::proxy::judge::Forward;
use crate::proxy::{Proxy, ProxyError};
use crate::upstream::headers::rewrite_request;
use crate::upstream::pool::{may_resend, UpstreamPool};
use crate::upstream::stream::Stream;
use crate::upstream::{UpstreamError, UpstreamFailure};

/// The longest upstream response head read.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Why a forward on this codec failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// No upstream connection could be made.
    #[error("connecting to the upstream failed: {0}")]
    Connect(#[source] UpstreamError),
    /// Writing the request to the upstream failed.
    #[error("writing the request to the upstream failed: {0}")]
    UpstreamWrite(#[source] io::Error),
    /// Reading the response from the upstream failed.
    #[error("reading the response from the upstream failed: {0}")]
    UpstreamRead(#[source] io::Error),
    /// The upstream closed the connection before the response was complete.
    #[error("the upstream closed the connection before the response was complete")]
    UpstreamClosed,
    /// The response head could not be read or framed safely.
    #[error("the upstream sent an invalid response head: {0}")]
    BadResponse(#[from] BadResponse),
    /// The response head did not end within the limit.
    #[error("the upstream response head is longer than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLarge,
    /// A `101 Switching Protocols` that was not asked for.
    #[error("the upstream switched protocols unasked")]
    UnaskedSwitch,
    /// The chunked response body is malformed.
    #[error("the upstream sent a malformed chunked body")]
    BadChunk(#[from] ChunkedError),
    /// No response head within `response_header_timeout`.
    #[error("the upstream did not answer within the response header timeout")]
    Timeout,
    /// Reading the request body from the client failed.
    #[error("reading the request body from the client failed: {0}")]
    ClientRead(#[source] io::Error),
    /// The client closed before its body was complete.
    #[error("the client closed the connection before its body was complete")]
    ClientClosed,
    /// The client did not send its body in time.
    #[error("the client did not send its body in time")]
    ClientTimeout,
    /// Writing the response to the client failed.
    #[error("writing the response to the client failed: {0}")]
    ClientWrite(#[source] io::Error),
}

impl RelayError {
    /// The proxy error this stands for, and with it the status from the
    /// one table ([`ProxyError::status`]).
    pub fn proxy_error(&self) -> ProxyError {
        match self {
            RelayError::Connect(e) => upstream_error(e),
            RelayError::Timeout => ProxyError::UpstreamTimeout,
            RelayError::ClientRead(_)
            | RelayError::ClientClosed
            | RelayError::ClientTimeout
            | RelayError::ClientWrite(_) => ProxyError::ClientBody,
            _ => ProxyError::Upstream(UpstreamFailure::Protocol),
        }
    }
}

/// A forward that went through.
pub(super) struct Done {
    /// The status sent.
    pub status: u16,
    /// Whether the client connection can carry another request.
    pub keep_alive: bool,
}

/// A forward that failed: the status that was sent (its head went out
/// before the failure) or the error answered, and the cause.
/// The client connection closes after it.
pub(super) struct Broken {
    pub status: Result<u16, ProxyError>,
    pub error: RelayError,
}

/// Why sending failed, and whether the request may be sent again.
enum SendError {
    /// The connection was closed before any response byte: on a pooled
    /// connection, the upstream had closed it while idle.
    Stale(RelayError),
    Other(RelayError),
}

impl Proxy {
    /// Sends the request (`first`: the body bytes at hand, `rest`: those
    /// still to read from the client) and relays the response.
    pub(super) async fn exchange<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        c: &mut Conn<I>,
        view: &HeadView<'_>,
        forward: &Forward<'_>,
        first: &[u8],
        rest: u64,
        client_close: bool,
    ) -> Result<Done, Broken> {
        c.out.clear();
        write_request_head(&mut c.out, view, forward);
        c.out.extend_from_slice(first);
        let resend = may_resend(true, view.method, rest == 0);
        let head_request = *view.method == http::Method::HEAD;
        let accept = view.known.accept.and_then(crate::head::text);
        let rid = forward.request_id.as_str();
        let (up, framing, upstream_keeps, status, keep_alive) = loop {
            let (mut up, pooled) = match self.forwarder.pool.stream().await {
                Ok(s) => s,
                Err(e) => return Err(fail(c, RelayError::Connect(e), accept, rid).await),
            };
            c.start_deadline(self.forwarder.upstream.response_header_timeout);
            match send(c, &mut up, rest, head_request, forward, client_close).await {
                Ok(found) => break (up, found.0, found.1, found.2, found.3),
                Err(SendError::Stale(_)) if pooled && resend => continue,
                Err(SendError::Stale(e) | SendError::Other(e)) => {
                    return Err(match e.proxy_error() {
                        ProxyError::ClientBody => Broken {
                            status: Err(ProxyError::ClientBody),
                            error: e,
                        },
                        _ => fail(c, e, accept, rid).await,
                    })
                }
            }
        };
        let pool = upstream_keeps.then_some(&self.forwarder.pool);
        match relay(c, up, framing, pool).await {
            Ok(()) => Ok(Done { status, keep_alive }),
            Err(error) => Err(Broken {
                status: Ok(status),
                error,
            }),
        }
    }
}

/// The request line and the one rewrite of the head, as bytes.
pub fn write_request_head(out: &mut Vec<u8>, view: &HeadView<'_>, forward: &Forward<'_>) {
    out.extend_from_slice(view.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(forward.path.as_str().as_bytes());
    if let Some(q) = forward.query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    rewrite_request(view.fields, &forward.rewrite(), out);
    out.extend_from_slice(b"\r\n");
}

/// Writes `c.out` and the rest of the body, then reads the response head
/// (skipping 1xx) and writes the client's head into `c.out`, all before
/// `c.deadline`. Gives the body's framing, whether the upstream keeps the
/// connection, the status, and whether the client connection stays open.
async fn send<I: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<I>,
    up: &mut Stream,
    mut rest: u64,
    head_request: bool,
    forward: &Forward<'_>,
    client_close: bool,
) -> Result<(Framing, bool, u16, bool), SendError> {
    let timeout = || SendError::Other(RelayError::Timeout);
    tokio::select! {
        biased;
        r = write_all(up, &c.out) => r.map_err(|e| SendError::Stale(RelayError::UpstreamWrite(e)))?,
        () = c.deadline.passed() => return Err(timeout()),
    }
    while rest > 0 {
        c.up_buf.clear();
        make_room(&mut c.up_buf);
        let want = rest.min(c.up_buf.capacity() as u64);
        let mut limited = (&mut c.io).take(want);
        let n = tokio::select! {
            biased;
            r = limited.read_buf(&mut c.up_buf) => match r {
                Ok(n) if n > 0 => n,
                Ok(_) => return Err(SendError::Other(RelayError::ClientClosed)),
                Err(e) => return Err(SendError::Other(RelayError::ClientRead(e))),
            },
            () = c.deadline.passed() => return Err(timeout()),
        };
        tokio::select! {
            biased;
            r = write_all(up, &c.up_buf[..n]) => r.map_err(|e| SendError::Other(RelayError::UpstreamWrite(e)))?,
            () = c.deadline.passed() => return Err(timeout()),
        }
        rest -= n as u64;
    }
    c.up_buf.clear();
    let mut received = false;
    loop {
        let mut room = head::room();
        match head::parse_response(&c.up_buf, &mut room, head_request) {
            Ok(Some((h, _))) if h.status == StatusCode::SWITCHING_PROTOCOLS => {
                return Err(SendError::Other(RelayError::UnaskedSwitch))
            }
            // 1xx: interim; the final response follows.
            Ok(Some((h, len))) if h.status.is_informational() => {
                c.up_buf.advance(len);
                continue;
            }
            Ok(Some((h, len))) => {
                c.out.clear();
                // Read now: a drain that started while the upstream worked
                // is announced in this response.
                let keep_client = !(client_close || c.draining()) && h.framing != Framing::Close;
                head::write_response(&mut c.out, &h, forward.request_id.as_bytes(), keep_client);
                let found = (h.framing, h.keep_alive, h.status.as_u16(), keep_client);
                c.answered = Some(std::time::Instant::now());
                c.up_buf.advance(len);
                return Ok(found);
            }
            Ok(None) if c.up_buf.len() > MAX_RESPONSE_HEAD => {
                return Err(SendError::Other(RelayError::HeadTooLarge))
            }
            Ok(None) => {}
            Err(e) => return Err(SendError::Other(e.into())),
        }
        make_room(&mut c.up_buf);
        tokio::select! {
            biased;
            r = up.read_buf(&mut c.up_buf) => match r {
                Ok(n) if n > 0 => received = true,
                Ok(_) if received => return Err(SendError::Other(RelayError::UpstreamClosed)),
                Ok(_) => return Err(SendError::Stale(RelayError::UpstreamClosed)),
                Err(e) if received => return Err(SendError::Other(RelayError::UpstreamRead(e))),
                Err(e) => return Err(SendError::Stale(RelayError::UpstreamRead(e))),
            },
            () = c.deadline.passed() => return Err(timeout()),
        }
    }
}

/// Relays the response body. The upstream connection goes back to `pool`
/// (when the upstream keeps it) as soon as its response is read whole with
/// nothing after it: before the last write to the client, so that the
/// client's next request, on whichever worker, finds it idle.
async fn relay<I: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<I>,
    mut up: Stream,
    framing: Framing,
    pool: Option<&UpstreamPool>,
) -> Result<(), RelayError> {
    // `whole`: the response ends exactly at the end of `c.up_buf`.
    let give_back = |up: Stream, whole: bool| {
        if let (Some(pool), true) = (pool, whole) {
            pool.put_stream(up);
        }
    };
    match framing {
        Framing::Empty => {
            give_back(up, c.up_buf.is_empty());
            c.write_out().await
        }
        Framing::Length(n) => {
            let mut left = n;
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(c.up_buf.len());
            c.out.extend_from_slice(&c.up_buf[..take]);
            c.up_buf.advance(take);
            left -= take as u64;
            if left == 0 {
                give_back(up, c.up_buf.is_empty());
                return c.write_out().await;
            }
            c.write_out().await?;
            loop {
                let n = read_body(c, &mut up).await?;
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(n);
                left -= take as u64;
                if left == 0 {
                    give_back(up, n == take);
                    return write_client(c, take).await;
                }
                write_client(c, take).await?;
            }
        }
        Framing::Chunked => {
            let mut scanner = Chunked::default();
            let mut end = scanner.scan(&c.up_buf)?;
            let take = end.unwrap_or(c.up_buf.len());
            c.out.extend_from_slice(&c.up_buf[..take]);
            c.up_buf.advance(take);
            if end.is_some() {
                give_back(up, c.up_buf.is_empty());
                return c.write_out().await;
            }
            c.write_out().await?;
            loop {
                read_body(c, &mut up).await?;
                end = scanner.scan(&c.up_buf)?;
                let take = end.unwrap_or(c.up_buf.len());
                if end.is_some() {
                    give_back(up, take == c.up_buf.len());
                    return write_client(c, take).await;
                }
                write_client(c, take).await?;
            }
        }
        Framing::Close => {
            c.out.extend_from_slice(&c.up_buf);
            c.up_buf.clear();
            c.write_out().await?;
            while read_upstream(c, &mut up).await? > 0 {
                let n = c.up_buf.len();
                write_client(c, n).await?;
            }
            Ok(())
        }
    }
}

/// Writes the first `n` bytes of `c.up_buf` to the client and drops them.
async fn write_client<I: AsyncWrite + Unpin>(c: &mut Conn<I>, n: usize) -> Result<(), RelayError> {
    write_all(&mut c.io, &c.up_buf[..n])
        .await
        .map_err(RelayError::ClientWrite)?;
    c.up_buf.advance(n);
    Ok(())
}

/// Reads more from the upstream into the emptied `c.up_buf`; `Ok(0)` when
/// the upstream closed.
async fn read_upstream<I>(c: &mut Conn<I>, up: &mut Stream) -> Result<usize, RelayError> {
    c.up_buf.clear();
    make_room(&mut c.up_buf);
    up.read_buf(&mut c.up_buf)
        .await
        .map_err(RelayError::UpstreamRead)
}

/// Reads more of a delimited body: the upstream closing first is a failure.
async fn read_body<I>(c: &mut Conn<I>, up: &mut Stream) -> Result<usize, RelayError> {
    match read_upstream(c, up).await? {
        0 => Err(RelayError::UpstreamClosed),
        n => Ok(n),
    }
}

/// Writes all of `bytes` and flushes (TLS).
pub(super) async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

/// Answers with the error page for `error` (negotiated by `accept`) and
/// closes, as every answer to an upstream failure does (`local`).
async fn fail<I: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<I>,
    error: RelayError,
    accept: Option<&str>,
    request_id: &str,
) -> Broken {
    let err = error.proxy_error();
    let answer = local::error_response(&err, accept, request_id);
    if c.answer(&answer, false, true).await.is_ok() {
        c.linger().await;
    }
    Broken {
        status: Err(err),
        error,
    }
}
