//! The pass-through codec: portalgate's own HTTP/1.1 server side, for the
//! keep-alive HTTP/1.1 traffic that makes up most of a portal's requests.
//!
//! One task per client connection, as in nginx and HAProxy, parses each
//! head in place (httparse, no `HeaderMap`), has it judged once
//! ([`crate::proxy::judge::Judge::decide`]) and carries out the plan
//! itself:
//! - a forward: the rewritten head and the body go to a pooled upstream
//!   connection it drives itself (`exchange.rs`), and the response comes
//!   back, a small one in one write;
//! - an answer (explain, redirect, deny) or a rejection: written here, and
//!   the connection stays on this codec (after a 400 or 431 it closes:
//!   the request's framing cannot be trusted);
//! - a body-aware rule: the `Content-Length` body is read here (bounded),
//!   and the judgement goes on with it;
//! - a chunked upload: decoded here and sent on in the proxy's own chunks;
//!   `Expect: 100-continue` is answered here before a body is read.
//!
//! Heads it does not parse go to hyper, unchanged, before anything was sent
//! anywhere, and the connection stays with hyper: HTTP/1.0, a target that
//! is not plain origin-form, `Upgrade`, an `Expect` other than `100-continue`, more
//! than [`head::MAX_REQUEST_HEADERS`] fields ([`head::parse_request`]), and
//! HTTP/2's preface. Upstream responses are checked as strictly as requests
//! ([`head::parse_response`]): ambiguous framing is a 502, a chunked body
//! is passed through unchanged while [`chunked::Chunked`] finds its end,
//! and an upstream connection returns to the pool only after a complete,
//! well-framed response.

pub mod chunked;

mod exchange;
pub mod head;
mod now;
mod scratch;

use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use http::Method;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::account::{Cause, Finished};
use super::answer::Answer;
use super::inspect::{self, Inspected};
use super::judge::{Judgement, Plan};
use super::request_id::Id;
use super::{local, ConnInfo, Proxy, ProxyError};
use crate::head::HeadView;
use crate::policy::BodyView;
pub use crate::proxy::failure::RelayError;
pub use exchange::write_request_head;
use exchange::Rest;
use now::{Done, RequestFraming, Step};

/// Body bytes of an answered request that are read and dropped to keep the
/// connection; a longer body closes it instead.
const DISCARD_MAX: u64 = 1 << 20;

/// A client connection on the pass-through codec.
pub struct Client<I> {
    /// Bytes read from the client and not yet used.
    pub buf: BytesMut,
    /// The connection and its other buffers.
    pub conn: Conn<I>,
}

/// The connection side of a [`Client`], apart from the buffer its heads
/// are parsed from (which stays borrowed while a request is served).
pub struct Conn<I> {
    /// The connection.
    pub io: I,
    /// The connection's peer and whether it is TLS.
    pub info: ConnInfo,
    /// Bytes on their way out (to the upstream, then to the client).
    out: Vec<u8>,
    /// Bytes read from the upstream (and the client's body while sending).
    up_buf: BytesMut,
    /// A body read for a body-aware rule.
    body: Vec<u8>,
    /// Body bytes of an answered request still to drop.
    skip: u64,
    /// When the current request's response head was ready.
    answered: Option<Instant>,
    /// When the answer just written was ready, while no wait has come
    /// since: the clock reading the next request's deadline starts from
    /// (nginx, too, reads the clock once per turn of its event loop).
    written_at: Option<Instant>,
    /// The deadline of the current wait (request head, response head).
    deadline: crate::deadline::Deadline,
    /// When a wait for the upstream starts to watch the client as well.
    patience: crate::deadline::Deadline,
    /// When the next request's head must be complete.
    head_by: tokio::time::Instant,
    /// When an idle connection gives its buffers back.
    release_at: tokio::time::Instant,
    /// Bytes the client sent while a wait for the upstream watched it
    /// (the start of a pipelined request), kept for the next request.
    ahead: BytesMut,
    /// The server's drain flag, read when a response head is written: a
    /// response that goes out after the drain started announces the close.
    drain: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
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

/// How long a wait for the upstream goes before it also watches the
/// client: most responses come sooner, and then the client is not polled.
const PATIENCE: Duration = Duration::from_millis(500);

/// How many bytes a wait for the upstream keeps of what the client sends
/// meanwhile; past that the client is no longer watched.
const AHEAD_MAX: usize = 64 * 1024;

/// How long a connection waits for its next request with its buffers; a
/// connection idle for longer gives them back and waits for readability
/// alone, so that thousands of idle keep-alive connections cost little
/// more than their sockets (nginx frees its buffers the same way).
const KEEP_BUFFERS: Duration = Duration::from_secs(1);

/// A connection that can wait for its next bytes without a buffer, and,
/// where the socket is the stream (plain TCP), read and write at once
/// without a future: once readiness is known, a read or a write that
/// goes through `AsyncRead` and `AsyncWrite` asks for it again.
pub trait Readable {
    /// Ready when a read would not block (bytes, the end, or an error).
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()>;

    /// Reads what is there now (`WouldBlock` when nothing is); `None`
    /// where the stream cannot (TLS: bytes go through its session).
    fn read_now(&self, _buf: &mut BytesMut) -> Option<io::Result<usize>> {
        None
    }

    /// Writes what fits now (`WouldBlock` when nothing does); `None`
    /// where the stream cannot.
    fn write_now(&self, _bytes: &[u8]) -> Option<io::Result<usize>> {
        None
    }
}

impl Readable for tokio::net::TcpStream {
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.poll_read_ready(cx).map(|_| ())
    }

    fn read_now(&self, buf: &mut BytesMut) -> Option<io::Result<usize>> {
        let room = buf.capacity() - buf.len();
        let mut got = 0;
        let read = self.try_io(tokio::io::Interest::READABLE, || {
            got = self.try_read_buf(buf)?;
            // Fewer bytes than there was room for: the socket is drained.
            // Said as `WouldBlock`, so that its readiness is cleared (as a
            // read through `AsyncRead` clears it): otherwise the wait for
            // the next request would find it ready and read nothing.
            if got > 0 && got < room {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        Some(match read {
            Err(e) if got == 0 => Err(e),
            _ => Ok(got),
        })
    }

    fn write_now(&self, bytes: &[u8]) -> Option<io::Result<usize>> {
        Some(self.try_write(bytes))
    }
}

impl Readable for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let (tcp, session) = self.get_ref();
        // Decrypted bytes already read from the socket: ready now.
        if !session.wants_read() {
            return std::task::Poll::Ready(());
        }
        tcp.poll_read_ready(cx).map(|_| ())
    }
}

impl<T: Readable + ?Sized> Readable for Box<T> {
    fn poll_readable(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        (**self).poll_readable(cx)
    }

    fn read_now(&self, buf: &mut BytesMut) -> Option<io::Result<usize>> {
        (**self).read_now(buf)
    }

    fn write_now(&self, bytes: &[u8]) -> Option<io::Result<usize>> {
        (**self).write_now(bytes)
    }
}

/// How a wait for the upstream ended.
enum Woke {
    /// The upstream read returned.
    Read(std::io::Result<usize>),
    /// The deadline passed.
    Deadline,
    /// The client closed its side or broke the connection.
    ClientGone,
}

/// How waiting for client bytes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Bytes arrived.
    Data,
    /// The client closed, the read failed, or the deadline passed.
    Gone,
}

impl<I: AsyncRead + AsyncWrite + Unpin + Readable> Client<I> {
    /// A client connection with empty buffers.
    pub fn new(io: I, info: ConnInfo) -> Self {
        Client {
            // Buffers are allocated when first used (an idle connection
            // gives them back: see `next_request`).
            buf: BytesMut::new(),
            conn: Conn {
                io,
                info,
                out: Vec::new(),
                up_buf: BytesMut::new(),
                body: Vec::new(),
                skip: 0,
                answered: None,
                written_at: None,
                deadline: crate::deadline::Deadline::new(),
                patience: crate::deadline::Deadline::new(),
                head_by: tokio::time::Instant::now(),
                release_at: tokio::time::Instant::now(),
                ahead: BytesMut::new(),
                drain: None,
            },
        }
    }

    /// Watches the server's drain flag (see [`Conn`]).
    pub fn watch_drain(&mut self, drain: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.conn.drain = Some(drain);
    }

    /// Starts the deadline for the next request head (and the second
    /// after which [`Client::next_request`] gives the buffers back).
    pub fn start_deadline(&mut self, within: Duration) {
        // An answer written at once a moment ago serves as the reading.
        let now = self
            .conn
            .written_at
            .take()
            .map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
        self.conn.head_by = now + within;
        self.conn.release_at = now + KEEP_BUFFERS;
        self.conn.deadline.set_at(self.conn.head_by);
    }

    /// Reads more client bytes, until the deadline.
    pub async fn read_more(&mut self) -> Idle {
        self.conn.read_into(&mut self.buf).await
    }

    /// Waits for the start of the next request (the buffer is empty),
    /// until the deadline set by [`Client::start_deadline`]. The wait needs
    /// no buffer: one is allocated when bytes arrive, and a second after
    /// the deadline was set the connection's other buffers are freed too,
    /// so an idle connection holds none.
    pub async fn next_request(&mut self) -> Idle {
        // One timer for both ends of the wait: first the release of the
        // buffers, then the deadline (an earlier time than the timer is
        // armed for re-arms it, which a connection busier than once a
        // second never makes it do).
        let mut kept = self.conn.release_at < self.conn.head_by;
        if kept {
            self.conn.deadline.set_at(self.conn.release_at);
        }
        loop {
            let conn = &mut self.conn;
            let readable = tokio::select! {
                biased;
                () = std::future::poll_fn(|cx| conn.io.poll_readable(cx)) => true,
                () = conn.deadline.passed() => false,
            };
            if readable {
                break;
            }
            if !kept {
                return Idle::Gone;
            }
            kept = false;
            self.release_buffers();
            self.conn.deadline.set_at(self.conn.head_by);
        }
        // The rest of the head has until the deadline.
        self.conn.deadline.set_at(self.conn.head_by);
        // Readable: read at once where the stream can.
        head_room(&mut self.buf);
        match self.conn.io.read_now(&mut self.buf) {
            Some(Ok(0)) => return Idle::Gone,
            Some(Ok(_)) => return Idle::Data,
            Some(Err(e)) if e.kind() != io::ErrorKind::WouldBlock => return Idle::Gone,
            // Readiness that was stale, or a stream that cannot: wait.
            Some(Err(_)) | None => {}
        }
        self.conn.read_into(&mut self.buf).await
    }

    /// Frees every buffer of an idle connection.
    fn release_buffers(&mut self) {
        self.buf = BytesMut::new();
        let c = &mut self.conn;
        c.out = Vec::new();
        c.up_buf = BytesMut::new();
        c.body = Vec::new();
        c.ahead = BytesMut::new();
    }

    /// The connection and the bytes read from it but not used.
    pub fn into_parts(self) -> (I, BytesMut) {
        (self.conn.io, self.buf)
    }

    /// Drops the body bytes of the previous (answered) request; false when
    /// the client went away first.
    async fn discard(&mut self) -> bool {
        while self.conn.skip > 0 {
            if self.buf.is_empty() && self.read_more().await == Idle::Gone {
                return false;
            }
            let n = self
                .buf
                .len()
                .min(usize::try_from(self.conn.skip).unwrap_or(usize::MAX));
            self.buf.advance(n);
            self.conn.skip -= n as u64;
        }
        true
    }
}

impl<I> Conn<I> {
    /// Renders an answer into `out`, the thread's answer buffer when the
    /// connection has none ([`scratch`]), announcing the close when
    /// `close`, and notes when it was ready.
    fn render(&mut self, a: &Answer<'_>, head_only: bool, close: bool) {
        let now = Instant::now();
        scratch::lend(&mut self.out);
        self.out.clear();
        a.write_http1(&mut self.out, head_only, !close, crate::clock::wall(now));
        self.answered = Some(now);
        self.written_at = Some(now);
    }

    /// Whether the server has started draining.
    fn draining(&self) -> bool {
        self.drain
            .as_ref()
            .is_some_and(|d| d.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin + Readable> Conn<I> {
    fn start_deadline(&mut self, within: Duration) {
        self.deadline.set(within);
    }

    /// Reads more client bytes into `buf`, until the deadline.
    async fn read_into(&mut self, buf: &mut BytesMut) -> Idle {
        head_room(buf);
        tokio::select! {
            biased;
            r = self.io.read_buf(buf) => match r {
                Ok(n) if n > 0 => Idle::Data,
                _ => Idle::Gone,
            },
            () = self.deadline.passed() => Idle::Gone,
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
        let mut scratch = BytesMut::with_capacity(16 * 1024);
        while discarded < 1 << 20 {
            scratch.clear();
            if self.read_into(&mut scratch).await == Idle::Gone {
                break;
            }
            discarded += scratch.len();
        }
    }

    /// Reads from the upstream into `up_buf`, until the deadline. After
    /// [`PATIENCE`] the client is watched too: its close ends the wait
    /// (nginx's check for a client that went away), and what it sends
    /// meanwhile is kept in `ahead`, up to [`AHEAD_MAX`].
    async fn wait_upstream(&mut self, up: &mut crate::upstream::stream::Stream) -> Woke {
        self.patience.set(PATIENCE);
        let mut watching = false;
        loop {
            tokio::select! {
                biased;
                r = up.read_buf(&mut self.up_buf) => return Woke::Read(r),
                () = self.deadline.passed() => return Woke::Deadline,
                () = self.patience.passed(), if !watching => watching = true,
                r = self.io.read_buf(&mut self.ahead), if watching && self.ahead.len() < AHEAD_MAX => {
                    if !matches!(r, Ok(n) if n > 0) {
                        return Woke::ClientGone;
                    }
                }
            }
        }
    }

    /// Tells a client that sent `Expect: 100-continue` to send its body (a
    /// failure shows when the body is read).
    async fn continue_100(&mut self) {
        let _ = exchange::write_all(&mut self.io, b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }

    /// Writes `out` to the client: at once where the stream can take it
    /// all (plain TCP), through `AsyncWrite` for the rest.
    async fn write_out(&mut self) -> Result<(), RelayError> {
        // Only an answer written without a wait leaves its reading for the
        // next deadline (see `written_at`); anything else reads the clock.
        let written_at = self.written_at.take();
        let done = match self.io.write_now(&self.out) {
            Some(Ok(n)) => n,
            Some(Err(e)) if e.kind() != io::ErrorKind::WouldBlock => {
                return Err(RelayError::ClientWrite(e));
            }
            Some(Err(_)) | None => 0,
        };
        match self.out.get(done..) {
            Some(rest) if !rest.is_empty() => exchange::write_all(&mut self.io, rest)
                .await
                .map_err(RelayError::ClientWrite),
            _ => {
                self.written_at = written_at;
                Ok(())
            }
        }
    }

    /// Writes an answer; keeps the connection unless `close`.
    async fn answer(
        &mut self,
        a: &Answer<'_>,
        head_only: bool,
        close: bool,
    ) -> Result<(), RelayError> {
        self.render(a, head_only, close);
        self.write_answer().await
    }

    /// Writes the answer [`Conn::render`] left in `out`, then gives the
    /// buffer to the thread for its next answer ([`scratch`]).
    async fn write_answer(&mut self) -> Result<(), RelayError> {
        self.write_out().await?;
        scratch::give_back(&mut self.out);
        Ok(())
    }
}

/// How one request ended, for the caller's bookkeeping of the buffer.
struct Served {
    /// Bytes of the client buffer used (head and body).
    used: usize,
    next: Next,
}

impl Proxy {
    /// Serves the request that starts in `client.buf`, or says it is
    /// hyper's. Once the server drains (the flag given to
    /// [`Client::watch_drain`]), the connection closes after the response.
    pub async fn pass<I: AsyncRead + AsyncWrite + Unpin + Readable>(
        &self,
        client: &mut Client<I>,
    ) -> Next {
        if !client.discard().await {
            return Next::Close;
        }
        // The head is parsed where it is judged (`take`): a head that is
        // not complete yet comes back as `Partial`, and the loop reads on.
        // The parse's room and the method live in one turn of the loop;
        // nothing of them is kept across the read.
        let served = loop {
            // The head's fields and its method, on the heap and here: the
            // judgement borrows them. Nothing else of the request is kept
            // in this future (it is part of every connection's task):
            // `take` judges in plain code and hands back an answer to
            // write, or the boxed future that serves the rest.
            let mut room = Box::new(head::room());
            let mut method = Method::GET;
            // Taken apart in this statement: the step's type borrows the
            // connection, which the answer's write below needs.
            let done = match self.take(&client.buf, &mut room, &mut method, &mut client.conn) {
                Step::Serve(serve) => Done::Served(serve.await),
                Step::Done(done) => done,
            };
            let served = match done {
                Done::Served(served) => {
                    // Whatever it wrote, it may have waited since.
                    client.conn.written_at = None;
                    served
                }
                Done::Partial => {
                    if client.buf.len() > self.judge.limits().max_head_bytes() {
                        let refused = ProxyError::HeadersTooLarge("request head too large");
                        return Box::pin(self.refuse(&mut client.conn, refused)).await;
                    }
                    if client.read_more().await == Idle::Gone {
                        return Next::Close;
                    }
                    continue;
                }
                Done::Handoff => return Next::Handoff,
                Done::Refuse(refused) => {
                    return Box::pin(self.refuse(&mut client.conn, refused)).await;
                }
                Done::Answer {
                    used,
                    next,
                    cut_short,
                    wait,
                } => {
                    let next = match client.conn.write_answer().await {
                        Ok(()) => next,
                        Err(e) => {
                            cut_short.log(&method, &e);
                            Next::Close
                        }
                    };
                    if let Some(wait) = wait {
                        wait.await;
                        client.conn.written_at = None;
                    }
                    Served { used, next }
                }
            };
            break served;
        };
        client.buf.advance(served.used.min(client.buf.len()));
        if !client.conn.ahead.is_empty() {
            client.buf.extend_from_slice(&client.conn.ahead);
            client.conn.ahead.clear();
        }
        served.next
    }

    /// Answers a request head that cannot be read (400, or 431 when it
    /// does not end within [`crate::config::Limits::max_head_bytes`]) with
    /// an error page, and closes: where the next request would start is
    /// unknown.
    async fn refuse<I: AsyncRead + AsyncWrite + Unpin + Readable>(
        &self,
        conn: &mut Conn<I>,
        err: ProxyError,
    ) -> Next {
        let start = Instant::now();
        let request_id = Id::new();
        let answer = local::error_response(&err, None, request_id.as_str());
        if conn.answer(&answer, false, true).await.is_ok() {
            conn.linger().await;
        }
        let wait = self.accounts.finish(Finished {
            start,
            answered: conn.answered.take().unwrap_or_else(Instant::now),
            method: None,
            version: http::Version::HTTP_11,
            target: "",
            user_agent: None,
            peer: conn.info.peer.ip(),
            request_id: &request_id,
            facts: &mut Default::default(),
            outcome: Err(&err),
            cause: None,
        });
        if let Some(wait) = wait {
            wait.await;
        }
        Next::Close
    }

    /// Serves a request whose head is at the start of `buf` (`head_len`
    /// bytes) and was judged, when it is not simply answered
    /// ([`Proxy::answer_now`]).
    async fn serve<'j, 'b, I: AsyncRead + AsyncWrite + Unpin + Readable>(
        &'j self,
        buf: &'b [u8],
        head_len: usize,
        view: HeadView<'b>,
        mut judgement: Judgement<'j, 'b>,
        start: Instant,
        conn: &mut Conn<I>,
    ) -> Served {
        let method = view.method;
        let target = view.target;
        let info = conn.info;
        // Boxed, here and below: a region lookup is rare, and inline its
        // state would be copied with every request's future.
        if matches!(judgement.plan, Plan::Discover(_)) {
            let settle = self
                .judge
                .settle(judgement, &view, BodyView::NotRead, &info);
            judgement = Box::pin(settle).await;
        }
        let after_head = &buf[head_len..];
        let framing = RequestFraming::of(&view, after_head, conn);
        let RequestFraming {
            chunked,
            expect,
            length,
            in_buf,
            client_close,
        } = framing;
        if chunked && matches!(judgement.plan, Plan::ReadBody(_)) {
            // A chunked body for a body-aware rule: hyper reads it.
            return Served {
                used: 0,
                next: Next::Handoff,
            };
        }
        // A body-aware rule: read the body (bounded) and go on with it.
        let mut body_read = false;
        let mut failure = None;
        if let Plan::ReadBody(pending) = judgement.plan {
            let request_id = judgement.request_id;
            let inspected = if inspect::readable(view.fields, self.judge.max_inspect()) {
                if expect && (after_head.len() as u64) < length {
                    conn.continue_100().await;
                }
                match read_body(conn, after_head, length, self.forwarder.client_body_timeout).await
                {
                    Ok(()) => {
                        body_read = true;
                        inspect::parse(bytes::Bytes::copy_from_slice(&conn.body))
                    }
                    Err(e) => {
                        failure = Some(e);
                        Inspected::Unreadable
                    }
                }
            } else {
                Inspected::Unreadable
            };
            judgement = match (&failure, &inspected) {
                (Some(e), _) => Judgement {
                    request_id,
                    plan: Plan::Reject(e.proxy_error()),
                    facts: Default::default(),
                },
                (None, inspected) => {
                    let body = match inspected {
                        Inspected::Json(_, json) => BodyView::Json(json),
                        Inspected::Unreadable => BodyView::Unreadable,
                    };
                    let resumed = self.judge.resume(pending, &view, body, &info);
                    if matches!(resumed.plan, Plan::Discover(_)) {
                        Box::pin(self.judge.settle(resumed, &view, body, &info)).await
                    } else {
                        resumed
                    }
                }
            };
        }
        let Judgement {
            request_id,
            plan,
            mut facts,
        } = judgement;
        let head_only = *method == Method::HEAD;
        // Body bytes of this request in `buf` (also when the body was read
        // apart for a rule: it began with them), and those still unread.
        let unread = if body_read { 0 } else { framing.unread() };
        let mut used = head_len + in_buf;
        // A chunked body to forward: what is at hand decoded now, and sent
        // on in the proxy's own chunks.
        let mut plan = plan;
        let mut framed = Vec::new();
        let mut rest = Rest::Length(unread);
        if let (true, Plan::Forward(_)) = (chunked, &plan) {
            let mut decoder = chunked::Chunked::default();
            let mut data = Vec::new();
            match decoder.decode(after_head, &mut data) {
                Err(_) => plan = Plan::Reject(ProxyError::BadRequest("malformed chunked body")),
                Ok(_) if limit_exceeded(self, data.len()) => {
                    plan = Plan::Reject(ProxyError::BodyTooLarge(
                        self.judge.limits().max_request_body_bytes.unwrap_or(0),
                    ))
                }
                Ok(end) => {
                    exchange::frame_chunk(&mut framed, &data);
                    match end {
                        Some(end) => {
                            framed.extend_from_slice(exchange::LAST_CHUNK);
                            used = head_len + end;
                            rest = Rest::None;
                        }
                        None => {
                            used = buf.len();
                            rest = Rest::Chunked(decoder);
                        }
                    }
                }
            }
        }
        let (outcome, next) = match plan {
            Plan::Forward(forward) => {
                // A body read apart moves out of `conn`, which the exchange uses.
                let read_apart = std::mem::take(&mut conn.body);
                if expect && !rest.is_none() {
                    conn.continue_100().await;
                }
                let first = if body_read {
                    &read_apart[..]
                } else if chunked {
                    &framed[..]
                } else {
                    &after_head[..in_buf]
                };
                let result = self
                    .exchange(conn, &view, &forward, first, rest, client_close)
                    .await;
                match result {
                    Ok(done) => (
                        Ok(done.status),
                        if done.keep_alive {
                            Next::KeepAlive
                        } else {
                            Next::Close
                        },
                    ),
                    Err(broken) => {
                        failure = Some(broken.error);
                        (broken.status, Next::Close)
                    }
                }
            }
            Plan::Answer(answer) => {
                let rest = unread;
                let close = framing.closes_after_answer(rest);
                let next = match conn.answer(&answer, head_only, close).await {
                    Ok(()) if !close => {
                        conn.skip = rest;
                        Next::KeepAlive
                    }
                    Ok(()) => Next::Close,
                    Err(e) => {
                        failure = Some(e);
                        Next::Close
                    }
                };
                (Ok(answer.status.as_u16()), next)
            }
            Plan::Reject(err) => {
                let accept = view.known.accept.and_then(crate::head::text);
                let answer = local::error_response(&err, accept, request_id.as_str());
                let rest = unread;
                let close = answer.close || framing.closes_after_answer(rest);
                match conn.answer(&answer, head_only, close).await {
                    Ok(()) if close => {
                        conn.linger().await;
                        used = buf.len();
                    }
                    Ok(()) => conn.skip = rest,
                    Err(e) => failure = Some(e),
                }
                (
                    Err(err),
                    if close || failure.is_some() {
                        Next::Close
                    } else {
                        Next::KeepAlive
                    },
                )
            }
            Plan::ReadBody(_) | Plan::Discover(_) => {
                let err = left_pending(&plan);
                let answer = local::error_response(&err, None, request_id.as_str());
                let _ = conn.answer(&answer, head_only, true).await;
                (Err(err), Next::Close)
            }
        };
        let cause = failure.as_ref().map(|e| Cause {
            side: e.side(),
            error: e,
        });
        let wait = self.accounts.finish(Finished {
            start,
            answered: conn.answered.take().unwrap_or_else(Instant::now),
            method: Some(method),
            version: http::Version::HTTP_11,
            target,
            user_agent: view.known.user_agent,
            peer: info.peer.ip(),
            request_id: &request_id,
            facts: &mut facts,
            outcome: outcome.as_ref().copied(),
            cause,
        });
        if let Some(wait) = wait {
            wait.await;
        }
        Served { used, next }
    }
}

/// Whether `n` body bytes are over `limits.max_request_body_bytes`.
fn limit_exceeded(proxy: &Proxy, n: usize) -> bool {
    proxy
        .judge
        .limits()
        .max_request_body_bytes
        .is_some_and(|max| n as u64 > max)
}

/// The `Content-Length` intake accepted (0 without one).
fn content_length(view: &HeadView<'_>) -> u64 {
    view.known.content_length[0]
        .and_then(head::digits)
        .unwrap_or(0)
}

/// Reads a `length`-byte body into `conn.body`: what `have` holds of it,
/// then the rest from the client, each wait within `within`.
async fn read_body<I: AsyncRead + Unpin>(
    conn: &mut Conn<I>,
    have: &[u8],
    length: u64,
    within: Duration,
) -> Result<(), RelayError> {
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    conn.body.clear();
    let first = have.len().min(length);
    conn.body.extend_from_slice(&have[..first]);
    while conn.body.len() < length {
        let want = (length - conn.body.len()) as u64;
        let mut limited = (&mut conn.io).take(want);
        conn.deadline.set(within);
        let read = tokio::select! {
            biased;
            r = limited.read_buf(&mut conn.body) => r,
            () = conn.deadline.passed() => return Err(RelayError::ClientTimeout),
        };
        match read {
            Ok(0) => return Err(RelayError::ClientClosed),
            Ok(_) => {}
            Err(e) => return Err(RelayError::ClientRead(e)),
        }
    }
    Ok(())
}

/// Leaves room to read a request head into: 4 KiB to start with (most
/// heads are smaller), growing as a longer head needs.
fn head_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(buf.len().max(4 * 1024));
    }
}

/// Leaves at least 4 KiB to read into, growing by 16 KiB when needed (a
/// buffer emptied with `clear` keeps its room).
fn make_room(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < 4 * 1024 {
        buf.reserve(16 * 1024);
    }
}

/// The refusal of a judgement still pending after its body was read and
/// its lookups were made (it cannot be: every resume with a body decides,
/// and [`crate::proxy::judge::Judge::settle`] ends every lookup), failing closed.
pub(crate) fn left_pending(plan: &Plan<'_, '_>) -> ProxyError {
    match plan {
        Plan::Discover(_) => ProxyError::RegionUnavailable(crate::discovery::LookupError::Busy),
        _ => ProxyError::ClientBody,
    }
}

#[cfg(test)]
mod tests {
    use super::{Client, Readable};
    use crate::proxy::answer::Answer;
    use crate::proxy::ConnInfo;
    use bytes::BytesMut;
    use std::task::{Context, Poll, Waker};
    use tokio::io::AsyncWriteExt;

    /// A read at once takes what is there, and a read that drained the
    /// socket leaves it not ready (the next wait does not read again to
    /// find nothing); the end reads as 0. A write at once writes it all.
    #[tokio::test]
    async fn a_read_at_once_that_drains_the_socket_clears_its_readiness() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let mut buf = BytesMut::with_capacity(4096);
        let mut noop = Context::from_waker(Waker::noop());

        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        server.readable().await.expect("readable");
        assert_eq!(server.read_now(&mut buf).map(|r| r.ok()), Some(Some(16)));
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
        assert!(server.poll_readable(&mut noop).is_pending());
        let nothing = server
            .read_now(&mut buf)
            .expect("a TCP stream reads at once");
        assert_eq!(
            nothing.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock)
        );

        client.write_all(b"Host: a\r\n\r\n").await.expect("write");
        server.readable().await.expect("readable");
        assert_eq!(server.read_now(&mut buf).map(|r| r.ok()), Some(Some(11)));

        assert_eq!(
            server
                .write_now(b"HTTP/1.1 204 No Content\r\n\r\n")
                .map(|r| r.ok()),
            Some(Some(27))
        );
        let mut answer = [0u8; 27];
        tokio::io::AsyncReadExt::read_exact(&mut client, &mut answer)
            .await
            .expect("the answer");

        client.shutdown().await.expect("shutdown");
        server.readable().await.expect("readable at the end");
        assert_eq!(server.read_now(&mut buf).map(|r| r.ok()), Some(Some(0)));
        assert!(matches!(server.poll_readable(&mut noop), Poll::Ready(())));
    }

    /// An answer written whole leaves its connection without an output
    /// buffer, and the next answer on the thread, on another connection,
    /// is rendered into the same buffer; each client reads its own answer.
    #[tokio::test]
    async fn a_written_answer_leaves_its_buffer_to_the_next_answer_on_the_thread() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut conns = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..2 {
            clients.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
            let (server, peer) = listener.accept().await.expect("accept");
            conns.push(Client::new(server, ConnInfo { peer, tls: false }).conn);
        }
        // Whatever this thread's spare held before, it is empty now.
        super::scratch::lend(&mut Vec::new());
        // The longer answer first: the shorter one then fits in the
        // buffer as it is (a longer one would move it as it grew).
        let answers = [
            Answer::new(http::StatusCode::FORBIDDEN, b"the first, longer".to_vec()),
            Answer::new(http::StatusCode::NOT_FOUND, b"second".to_vec()),
        ];
        let mut used = None;
        for ((conn, client), answer) in conns.iter_mut().zip(&mut clients).zip(&answers) {
            conn.render(answer, false, false);
            let at = conn.out.as_ptr();
            assert_eq!(*used.get_or_insert(at), at, "the thread's one buffer");
            let want = conn.out.clone();
            // The buffer came cleared: this answer alone, whole.
            let lines = want.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
            assert_eq!(lines, 1, "{}", String::from_utf8_lossy(&want));
            assert!(want.ends_with(&answer.body_bytes()));
            conn.write_answer().await.expect("written");
            assert_eq!(conn.out.capacity(), 0, "given back to the thread");
            let mut got = vec![0u8; want.len()];
            tokio::io::AsyncReadExt::read_exact(client, &mut got)
                .await
                .expect("the answer");
            assert_eq!(got, want);
        }
    }
}
