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
use std::time::Duration;

use bytes::Buf;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::chunked::Chunked;
use super::head::{self, Framing};
use super::{local, make_room, Conn, Readable, Woke};
use crate::head::HeadView;
use crate::proxy::failure::{RelayError, MAX_RESPONSE_HEAD};
use crate::proxy::judge::Forward;
use crate::proxy::{Forwarder, Proxy, ProxyError};
use crate::upstream::headers::rewrite_request;
use crate::upstream::pool::{may_resend, UpstreamPool};
use crate::upstream::stream::Stream;

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
    /// Sends the request (`first`: the body bytes at hand, framed as they
    /// go upstream; `rest`: what is still to read from the client)
    /// still to read from the client) and relays the response.
    pub(super) async fn exchange<I: AsyncRead + AsyncWrite + Unpin + Readable>(
        &self,
        c: &mut Conn<I>,
        view: &HeadView<'_>,
        forward: &Forward<'_>,
        first: &[u8],
        rest: Rest,
        client_close: bool,
    ) -> Result<Done, Broken> {
        c.out.clear();
        write_request_head(&mut c.out, view, forward);
        c.out.extend_from_slice(first);
        let resend = may_resend(true, view.method, rest.is_none());
        let head_request = *view.method == http::Method::HEAD;
        let accept = view.known.accept.and_then(crate::head::text);
        let rid = forward.request_id.as_str();
        let (up, framing, upstream_keeps, status, keep_alive) = loop {
            let (mut up, pooled) = match self.forwarder.pool.stream().await {
                Ok(s) => s,
                Err(e) => return Err(fail(c, RelayError::Connect(e), accept, rid).await),
            };
            c.start_deadline(self.forwarder.upstream.response_header_timeout);
            let sending = Sending {
                rest: rest.clone(),
                limit: self.judge.limits().max_request_body_bytes,
                head_request,
                client_close,
            };
            match send(c, &mut up, sending, forward, &self.forwarder).await {
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
        let read_timeout = self.forwarder.upstream.read_timeout;
        match relay(c, up, framing, pool, read_timeout).await {
            Ok(()) => Ok(Done { status, keep_alive }),
            // Nothing was written: the client gets the error page.
            Err(Relayed::Unsent(error)) => Err(fail(c, error, accept, rid).await),
            Err(Relayed::Sent(error)) => Err(Broken {
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
    // The body goes on in the proxy's own chunks (see `Rest::Chunked`).
    if view.known.transfer_encoding[0].is_some() {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// What of a request body is still to read from the client.
#[derive(Debug, Clone)]
pub enum Rest {
    /// Nothing: the body was at hand (or there is none).
    None,
    /// This many bytes of a `Content-Length` body.
    Length(u64),
    /// The rest of a chunked body, read on from this decoder's state and
    /// sent on in chunks of the proxy's own.
    Chunked(Chunked),
}

impl Rest {
    /// Whether nothing of the body is left to read.
    pub(super) fn is_none(&self) -> bool {
        matches!(self, Rest::None | Rest::Length(0))
    }
}

/// Appends `data` as one chunk (nothing for no data).
pub fn frame_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if !data.is_empty() {
        use std::io::Write as _;
        let _ = write!(out, "{:x}\r\n", data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
}

/// The last chunk, which ends a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// What [`send`] sends besides `c.out`.
struct Sending {
    /// What of the body is still to read from the client.
    rest: Rest,
    /// `limits.max_request_body_bytes`, for a chunked body.
    limit: Option<u64>,
    /// Whether the request is `HEAD` (no response body).
    head_request: bool,
    /// Whether the client asked to close after this request.
    client_close: bool,
}

/// Writes `c.out` and the rest of the body, then reads the response head
/// (skipping 1xx) and writes the client's head into `c.out`. Gives the
/// body's framing, whether the upstream keeps the connection, the status,
/// and whether the client connection stays open.
///
/// The clocks: each wait for the client's body bytes is bounded by
/// `server.client_body_timeout` (the client's fault: 408), each write to
/// the upstream and the wait for the response head, which starts once the
/// request is sent whole (for a request sent in one write, when that write
/// starts), by `upstream.response_header_timeout` (504).
async fn send<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    up: &mut Stream,
    sending: Sending,
    forward: &Forward<'_>,
    forwarder: &Forwarder,
) -> Result<(Framing, bool, u16, bool), SendError> {
    let Sending {
        rest,
        limit,
        head_request,
        client_close,
    } = sending;
    let header_timeout = forwarder.upstream.response_header_timeout;
    // A request sent in one write (no body, or a body read with the head)
    // keeps the deadline set before that write: the same timeout, set
    // microseconds earlier, and one clock read less per request.
    let with_body = !matches!(rest, Rest::None);
    let timeout = || SendError::Other(RelayError::Timeout);
    tokio::select! {
        biased;
        r = write_all(up, &c.out) => r.map_err(|e| SendError::Stale(RelayError::UpstreamWrite(e)))?,
        () = c.deadline.passed() => return Err(timeout()),
    }
    match rest {
        Rest::None => {}
        Rest::Length(n) => send_length(c, up, n, forwarder).await?,
        Rest::Chunked(decoder) => send_chunked(c, up, decoder, limit, forwarder).await?,
    }
    // The response head is awaited from the end of the request.
    if with_body {
        c.deadline.set(header_timeout);
    }
    c.up_buf.clear();
    let mut received = false;
    loop {
        // In a block of its own: the room (4 KiB) is not kept across the
        // wait below, which would make every connection's task that much larger.
        {
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
                    let keep_client =
                        !(client_close || c.draining()) && h.framing != Framing::Close;
                    head::write_response(
                        &mut c.out,
                        &h,
                        forward.request_id.as_bytes(),
                        keep_client,
                    );
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
        }
        make_room(&mut c.up_buf);
        match c.wait_upstream(up).await {
            Woke::Read(Ok(n)) if n > 0 => received = true,
            Woke::Read(Ok(_)) if received => {
                return Err(SendError::Other(RelayError::UpstreamClosed))
            }
            Woke::Read(Ok(_)) => return Err(SendError::Stale(RelayError::UpstreamClosed)),
            Woke::Read(Err(e)) if received => {
                return Err(SendError::Other(RelayError::UpstreamRead(e)))
            }
            Woke::Read(Err(e)) => return Err(SendError::Stale(RelayError::UpstreamRead(e))),
            Woke::Deadline => return Err(timeout()),
            Woke::ClientGone => return Err(SendError::Other(RelayError::ClientClosed)),
        }
    }
}

/// Reads the next client bytes of the body into the emptied `c.up_buf`
/// (at most `want`), within `server.client_body_timeout`.
async fn read_client_body<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    want: u64,
    forwarder: &Forwarder,
) -> Result<usize, SendError> {
    c.up_buf.clear();
    make_room(&mut c.up_buf);
    let want = want.min(c.up_buf.capacity() as u64);
    let mut limited = (&mut c.io).take(want);
    c.deadline.set(forwarder.client_body_timeout);
    tokio::select! {
        biased;
        r = limited.read_buf(&mut c.up_buf) => match r {
            Ok(n) if n > 0 => Ok(n),
            Ok(_) => Err(SendError::Other(RelayError::ClientClosed)),
            Err(e) => Err(SendError::Other(RelayError::ClientRead(e))),
        },
        () = c.deadline.passed() => Err(SendError::Other(RelayError::ClientTimeout)),
    }
}

/// Writes `bytes` to the upstream within the response header timeout.
async fn write_upstream<I>(
    c: &mut Conn<I>,
    up: &mut Stream,
    bytes: &[u8],
    forwarder: &Forwarder,
) -> Result<(), SendError> {
    c.deadline.set(forwarder.upstream.response_header_timeout);
    tokio::select! {
        biased;
        r = write_all(up, bytes) => r.map_err(|e| SendError::Other(RelayError::UpstreamWrite(e))),
        () = c.deadline.passed() => Err(SendError::Other(RelayError::Timeout)),
    }
}

/// Sends the rest of a `Content-Length` body as it arrives.
async fn send_length<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    up: &mut Stream,
    mut rest: u64,
    forwarder: &Forwarder,
) -> Result<(), SendError> {
    while rest > 0 {
        let n = read_client_body(c, rest, forwarder).await?;
        let chunk = std::mem::take(&mut c.up_buf);
        let written = write_upstream(c, up, &chunk[..n], forwarder).await;
        c.up_buf = chunk;
        written?;
        rest -= n as u64;
    }
    Ok(())
}

/// Decodes the rest of a chunked body as it arrives and sends its data on
/// in chunks of the proxy's own, one per read (however small the client's
/// chunks), then the last chunk. Bytes after the body's end are the next
/// request's: they are kept in `c.ahead`.
async fn send_chunked<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    up: &mut Stream,
    mut decoder: Chunked,
    limit: Option<u64>,
    forwarder: &Forwarder,
) -> Result<(), SendError> {
    let mut data = Vec::new();
    let mut seen = decoder.data_seen();
    loop {
        let n = read_client_body(c, u64::MAX, forwarder).await?;
        data.clear();
        let end = decoder
            .decode(&c.up_buf[..n], &mut data)
            .map_err(|_| SendError::Other(RelayError::ClientChunk))?;
        seen += data.len() as u64;
        if let Some(max) = limit.filter(|&max| seen > max) {
            return Err(SendError::Other(RelayError::ClientBodyTooLarge(max)));
        }
        c.out.clear();
        frame_chunk(&mut c.out, &data);
        if let Some(end) = end {
            c.out.extend_from_slice(LAST_CHUNK);
            c.ahead.extend_from_slice(&c.up_buf[end..n]);
        }
        let out = std::mem::take(&mut c.out);
        let written = write_upstream(c, up, &out, forwarder).await;
        c.out = out;
        written?;
        if end.is_some() {
            return Ok(());
        }
    }
}

/// How a relay failed: before anything of the response was written to the
/// client (it can still get an error page) or after.
enum Relayed {
    Unsent(RelayError),
    Sent(RelayError),
}

/// Relays the response body. The upstream connection goes back to `pool`
/// (when the upstream keeps it) as soon as its response is read whole with
/// nothing after it: before the last write to the client, so that the
/// client's next request, on whichever worker, finds it idle.
///
/// Each wait for body bytes is bounded by `read_timeout` and ends early
/// when the client goes away; both connections are then released. The
/// head of a chunked response waits for the body's first bytes, so that a
/// malformed first chunk is still answered with a 502.
async fn relay<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    mut up: Stream,
    framing: Framing,
    pool: Option<&UpstreamPool>,
    read_timeout: Duration,
) -> Result<(), Relayed> {
    // `whole`: the response ends exactly at the end of `c.up_buf`.
    let give_back = |up: Stream, whole: bool| {
        if let (Some(pool), true) = (pool, whole) {
            pool.put_stream(up);
        }
    };
    match framing {
        Framing::Empty => {
            give_back(up, c.up_buf.is_empty());
            c.write_out().await.map_err(Relayed::Sent)
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
                return c.write_out().await.map_err(Relayed::Sent);
            }
            c.write_out().await.map_err(Relayed::Sent)?;
            loop {
                let n = read_body(c, &mut up, read_timeout)
                    .await
                    .map_err(Relayed::Sent)?;
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(n);
                left -= take as u64;
                if left == 0 {
                    give_back(up, n == take);
                    return write_client(c, take).await.map_err(Relayed::Sent);
                }
                write_client(c, take).await.map_err(Relayed::Sent)?;
            }
        }
        Framing::Chunked => {
            let mut scanner = Chunked::default();
            if c.up_buf.is_empty() {
                c.deadline.set(read_timeout);
                make_room(&mut c.up_buf);
                match c.wait_upstream(&mut up).await {
                    Woke::Read(Ok(n)) if n > 0 => {}
                    Woke::Read(Ok(_)) => return Err(Relayed::Unsent(RelayError::UpstreamClosed)),
                    Woke::Read(Err(e)) => return Err(Relayed::Unsent(RelayError::UpstreamRead(e))),
                    Woke::Deadline => return Err(Relayed::Unsent(RelayError::ReadTimeout)),
                    Woke::ClientGone => return Err(Relayed::Sent(RelayError::ClientClosed)),
                }
            }
            let mut end = scanner
                .scan(&c.up_buf)
                .map_err(|e| Relayed::Unsent(e.into()))?;
            let take = end.unwrap_or(c.up_buf.len());
            c.out.extend_from_slice(&c.up_buf[..take]);
            c.up_buf.advance(take);
            if end.is_some() {
                give_back(up, c.up_buf.is_empty());
                return c.write_out().await.map_err(Relayed::Sent);
            }
            c.write_out().await.map_err(Relayed::Sent)?;
            loop {
                read_body(c, &mut up, read_timeout)
                    .await
                    .map_err(Relayed::Sent)?;
                end = scanner
                    .scan(&c.up_buf)
                    .map_err(|e| Relayed::Sent(e.into()))?;
                let take = end.unwrap_or(c.up_buf.len());
                if end.is_some() {
                    give_back(up, take == c.up_buf.len());
                    return write_client(c, take).await.map_err(Relayed::Sent);
                }
                write_client(c, take).await.map_err(Relayed::Sent)?;
            }
        }
        Framing::Close => {
            c.out.extend_from_slice(&c.up_buf);
            c.up_buf.clear();
            c.write_out().await.map_err(Relayed::Sent)?;
            while read_upstream(c, &mut up, read_timeout)
                .await
                .map_err(Relayed::Sent)?
                > 0
            {
                let n = c.up_buf.len();
                write_client(c, n).await.map_err(Relayed::Sent)?;
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

/// Reads more from the upstream into the emptied `c.up_buf` within
/// `within`; `Ok(0)` when the upstream closed.
async fn read_upstream<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    up: &mut Stream,
    within: Duration,
) -> Result<usize, RelayError> {
    c.up_buf.clear();
    make_room(&mut c.up_buf);
    c.deadline.set(within);
    match c.wait_upstream(up).await {
        Woke::Read(r) => r.map_err(RelayError::UpstreamRead),
        Woke::Deadline => Err(RelayError::ReadTimeout),
        Woke::ClientGone => Err(RelayError::ClientClosed),
    }
}

/// Reads more of a delimited body: the upstream closing first is a failure.
async fn read_body<I: AsyncRead + AsyncWrite + Unpin + Readable>(
    c: &mut Conn<I>,
    up: &mut Stream,
    within: Duration,
) -> Result<usize, RelayError> {
    match read_upstream(c, up, within).await? {
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
async fn fail<I: AsyncRead + AsyncWrite + Unpin + Readable>(
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
