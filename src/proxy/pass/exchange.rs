//! One request on the pass-through path: write it to a pooled upstream
//! connection, read the response head, and relay the body.
//!
//! The request head and whatever of the body is already buffered go out in
//! one write, and a small response goes back in one write. A pooled
//! connection that turns out to be closed before any response byte arrives
//! is replaced and the request sent again, but only when that cannot
//! repeat an effect: an idempotent method whose body was sent from the
//! buffer. `upstream.response_header_timeout` bounds sending the request
//! and receiving the response head, as on hyper's path.

use bytes::Buf;
use http::{Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::chunked::Chunked;
use super::head::{self, Framing};
use super::{make_room, write_local, Client, Ready};
use crate::proxy::{local, upstream_error, Proxy, ProxyError};
use crate::upstream::stream::Stream;
use crate::upstream::UpstreamFailure;

/// The longest upstream response head read.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How an exchange ended.
pub(super) enum Outcome {
    /// The whole response went to the client.
    Done {
        /// Its status.
        status: u16,
        /// Whether the client connection can carry another request.
        keep_alive: bool,
    },
    /// The exchange stopped (an error page was sent if nothing else had
    /// been); the client connection closes. The status or error counts.
    Broken(Result<u16, ProxyError>),
}

/// Why sending a request or reading its response head failed.
enum SendError {
    /// The connection was closed before any response byte: on a pooled
    /// connection, the upstream had closed it while idle.
    Stale,
    /// The client's body stopped.
    Client,
    /// `response_header_timeout` passed.
    Timeout,
    /// An invalid or broken response.
    Protocol,
}

fn protocol() -> ProxyError {
    ProxyError::Upstream(UpstreamFailure::Protocol)
}

impl Proxy {
    /// Sends the request (its head in `c.out`; `ready.body_len` bytes of
    /// body, some perhaps in `c.buf`) and relays the response.
    pub(super) async fn exchange<I: AsyncRead + AsyncWrite + Unpin>(
        &self,
        c: &mut Client<I>,
        ready: &Ready,
    ) -> Outcome {
        let in_buf = usize::try_from(ready.body_len)
            .unwrap_or(usize::MAX)
            .min(c.buf.len());
        c.out.extend_from_slice(&c.buf[..in_buf]);
        c.buf.advance(in_buf);
        let rest = ready.body_len - in_buf as u64;
        let replayable = rest == 0 && is_idempotent(&ready.method);

        let (mut up, framing, upstream_keeps, status) = loop {
            let (mut up, pooled) = match self.pool.stream().await {
                Ok(s) => s,
                Err(e) => return fail(c, upstream_error(&e)).await,
            };
            c.start_deadline(self.upstream.response_header_timeout);
            match send(c, &mut up, rest, ready).await {
                Ok((framing, keeps, status)) => break (up, framing, keeps, status),
                Err(SendError::Stale) if pooled && replayable => continue,
                Err(SendError::Client) => return Outcome::Broken(Err(ProxyError::ClientBody)),
                Err(SendError::Timeout) => return fail(c, ProxyError::UpstreamTimeout).await,
                Err(SendError::Stale | SendError::Protocol) => return fail(c, protocol()).await,
            }
        };
        match relay(c, &mut up, framing).await {
            Ok(clean) => {
                if clean && upstream_keeps {
                    self.pool.put_stream(up);
                }
                Outcome::Done {
                    status,
                    keep_alive: ready.keeps_client(framing),
                }
            }
            Err(()) => Outcome::Broken(Ok(status)),
        }
    }
}

/// Writes `c.out` and the rest of the body, then reads the response head
/// (skipping 1xx) and writes the client's head into `c.out`, all before
/// `c.timer`. Gives the body's framing, whether the upstream keeps the
/// connection, and the status.
async fn send<I: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Client<I>,
    up: &mut Stream,
    mut rest: u64,
    ready: &Ready,
) -> Result<(Framing, bool, u16), SendError> {
    tokio::select! {
        biased;
        r = write_all(up, &c.out) => r.map_err(|()| SendError::Stale)?,
        () = c.timer.as_mut() => return Err(SendError::Timeout),
    }
    while rest > 0 {
        c.buf.clear();
        make_room(&mut c.buf);
        let n = tokio::select! {
            biased;
            r = c.io.read_buf(&mut c.buf) => match r {
                Ok(n) if n > 0 => n,
                _ => return Err(SendError::Client),
            },
            () = c.timer.as_mut() => return Err(SendError::Timeout),
        };
        let take = usize::try_from(rest).unwrap_or(usize::MAX).min(n);
        tokio::select! {
            biased;
            r = write_all(up, &c.buf[..take]) => r.map_err(|()| SendError::Protocol)?,
            () = c.timer.as_mut() => return Err(SendError::Timeout),
        }
        c.buf.advance(take);
        rest -= take as u64;
    }
    c.up_buf.clear();
    let mut received = false;
    loop {
        let mut fields = head::fields();
        match head::parse_response(&c.up_buf, &mut fields, ready.head_request) {
            Ok(Some((h, _))) if h.status == StatusCode::SWITCHING_PROTOCOLS => {
                return Err(SendError::Protocol)
            }
            // 1xx: interim; the final response follows.
            Ok(Some((h, len))) if h.status.is_informational() => {
                c.up_buf.advance(len);
                continue;
            }
            Ok(Some((h, len))) => {
                c.out.clear();
                head::write_response(&mut c.out, &h, &c.rid, ready.keeps_client(h.framing));
                let found = (h.framing, h.keep_alive, h.status.as_u16());
                c.answered = Some(std::time::Instant::now());
                c.up_buf.advance(len);
                return Ok(found);
            }
            Ok(None) if c.up_buf.len() > MAX_RESPONSE_HEAD => return Err(SendError::Protocol),
            Ok(None) => {}
            Err(_) => return Err(SendError::Protocol),
        }
        make_room(&mut c.up_buf);
        tokio::select! {
            biased;
            r = up.read_buf(&mut c.up_buf) => match r {
                Ok(n) if n > 0 => received = true,
                _ if received => return Err(SendError::Protocol),
                _ => return Err(SendError::Stale),
            },
            () = c.timer.as_mut() => return Err(SendError::Timeout),
        }
    }
}

/// Relays the response body after the head in `c.out`. `Ok(clean)`: the
/// response went out whole, and `clean` says the upstream sent nothing
/// after it. `Err`: a side failed; both connections are closed.
async fn relay<I: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Client<I>,
    up: &mut Stream,
    framing: Framing,
) -> Result<bool, ()> {
    match framing {
        Framing::Empty => {
            c.write_out().await?;
            Ok(c.up_buf.is_empty())
        }
        Framing::Length(n) => {
            let mut left = n;
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(c.up_buf.len());
            c.out.extend_from_slice(&c.up_buf[..take]);
            c.up_buf.advance(take);
            left -= take as u64;
            c.write_out().await?;
            while left > 0 {
                let n = read_body(c, up).await?;
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(n);
                write_all(&mut c.io, &c.up_buf[..take]).await?;
                c.up_buf.advance(take);
                left -= take as u64;
            }
            Ok(c.up_buf.is_empty())
        }
        Framing::Chunked => {
            let mut scanner = Chunked::default();
            let mut end = scanner.scan(&c.up_buf).map_err(drop)?;
            let take = end.unwrap_or(c.up_buf.len());
            c.out.extend_from_slice(&c.up_buf[..take]);
            c.up_buf.advance(take);
            c.write_out().await?;
            while end.is_none() {
                read_body(c, up).await?;
                end = scanner.scan(&c.up_buf).map_err(drop)?;
                let take = end.unwrap_or(c.up_buf.len());
                write_all(&mut c.io, &c.up_buf[..take]).await?;
                c.up_buf.advance(take);
            }
            Ok(c.up_buf.is_empty())
        }
        Framing::Close => {
            c.out.extend_from_slice(&c.up_buf);
            c.up_buf.clear();
            c.write_out().await?;
            while read_upstream(c, up).await? > 0 {
                write_all(&mut c.io, &c.up_buf).await?;
            }
            Ok(false)
        }
    }
}

/// Reads more from the upstream into the emptied `c.up_buf`; `Ok(0)` when
/// the upstream closed.
async fn read_upstream<I>(c: &mut Client<I>, up: &mut Stream) -> Result<usize, ()> {
    c.up_buf.clear();
    make_room(&mut c.up_buf);
    up.read_buf(&mut c.up_buf).await.map_err(drop)
}

/// Reads more of a delimited body: the upstream closing first is a failure.
async fn read_body<I>(c: &mut Client<I>, up: &mut Stream) -> Result<usize, ()> {
    match read_upstream(c, up).await? {
        0 => Err(()),
        n => Ok(n),
    }
}

/// Writes all of `bytes` and flushes (TLS).
pub(super) async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), ()> {
    w.write_all(bytes).await.map_err(drop)?;
    w.flush().await.map_err(drop)
}

/// Answers with the error page for `err` and closes.
async fn fail<I: AsyncRead + AsyncWrite + Unpin>(c: &mut Client<I>, err: ProxyError) -> Outcome {
    let rid = c.rid_value();
    let accept = std::str::from_utf8(&c.accept)
        .ok()
        .filter(|a| !a.is_empty());
    c.out.clear();
    write_local(&mut c.out, local::error_response(&err, accept, &rid));
    c.answered = Some(std::time::Instant::now());
    if c.write_out().await.is_ok() {
        c.linger().await;
    }
    Outcome::Broken(Err(err))
}

/// Methods that can be sent twice without a second effect (RFC 9110 §9.2.2).
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}
