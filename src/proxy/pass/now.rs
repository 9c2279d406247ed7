//! Policy answers written without a future of their own.
//!
//! Most requests the policy intercepts are answered from their head alone
//! (a redirect, an explanation, a denial). Once judged, such an answer is
//! rendered into the connection's output buffer and accounted here, in
//! plain code; [`super::Proxy::pass`] then only writes the buffer. A
//! request that needs more (forwarding, its body, a region lookup, a
//! rejection that closes the connection) goes on to the boxed
//! [`super::Proxy::serve`] with its judgement, so that nothing is judged
//! twice.

use std::future::Future;
use std::time::Instant;

use http::Method;
use tokio::io::{AsyncRead, AsyncWrite};

use super::head::{self, Parse, Room, MAX_REQUEST_HEADERS};
use super::{Conn, Next, Readable, RelayError, Served, DISCARD_MAX};
use crate::head::HeadView;
use crate::proxy::account::{Finished, Wait};
use crate::proxy::answer::Answer;
use crate::proxy::judge::{Facts, Plan};
use crate::proxy::request_id::Id;
use crate::proxy::Proxy;
use crate::proxy::ProxyError;

/// What the head says of the request's body and of the connection after
/// the response.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestFraming {
    /// A lone `Transfer-Encoding: chunked` (intake refuses any other).
    pub chunked: bool,
    /// `Expect: 100-continue` (the only expectation that reaches this
    /// codec): the client waits a while for a 100 before it sends a body.
    pub expect: bool,
    /// The `Content-Length` intake accepted (0 without one).
    pub length: u64,
    /// Body bytes already read with the head.
    pub in_buf: usize,
    /// The client asked to close, or the server drains.
    pub client_close: bool,
}

impl RequestFraming {
    /// The framing of the head in `view`, with `after_head` the bytes read
    /// after it.
    pub fn of<I>(view: &HeadView<'_>, after_head: &[u8], conn: &Conn<I>) -> RequestFraming {
        let length = super::content_length(view);
        RequestFraming {
            chunked: view.known.transfer_encoding[0].is_some(),
            expect: view.known.expect,
            length,
            in_buf: usize::try_from(length)
                .unwrap_or(usize::MAX)
                .min(after_head.len()),
            client_close: conn.draining()
                || (view.known.connection && view.fields.connection_lists("close")),
        }
    }

    /// Body bytes not read yet.
    pub fn unread(&self) -> u64 {
        self.length - self.in_buf as u64
    }

    /// Whether the connection closes after an answer that leaves `unread`
    /// body bytes unread: a chunked body's length is unknown, a client
    /// that expected a 100 may or may not send its body, and a long body
    /// costs more to drop than a new connection.
    pub fn closes_after_answer(&self, unread: u64) -> bool {
        self.client_close || unread > DISCARD_MAX || self.chunked || (self.expect && unread > 0)
    }
}

/// What became of a request whose head is complete.
pub(super) enum Step<'j, F> {
    /// Anything but an answer, served by this future
    /// ([`super::Proxy::serve`]).
    Serve(std::pin::Pin<Box<F>>),
    /// Nothing left to await but a write.
    Done(Done<'j>),
}

/// What [`super::Proxy::pass`] does after a request (none of it borrows
/// the connection).
// One per request, taken apart at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Done<'j> {
    /// Served by [`Step::Serve`].
    Served(Served),
    /// The answer is in the output buffer and accounted: write it, then
    /// go on with `next`, having used `used` bytes of the buffer.
    Answer {
        used: usize,
        next: Next,
        cut_short: CutShort,
        wait: Option<Wait<'j>>,
    },
    /// A head that is not complete yet: read on.
    Partial,
    /// A head this codec leaves to hyper.
    Handoff,
    /// A head that cannot be read.
    Refuse(ProxyError),
}

/// An answer rendered and accounted by [`Proxy::answer_now`].
struct Answered<'j> {
    used: usize,
    next: Next,
    status: u16,
    wait: Option<Wait<'j>>,
}

/// What the log says of an answer the client did not take.
pub(super) struct CutShort {
    request_id: Id,
    status: u16,
}

impl CutShort {
    /// Logs the failed write, as the accounting logs a client's failure.
    pub fn log(&self, method: &Method, error: &RelayError) {
        crate::proxy::account::log_cut_short(&self.request_id, Some(method), self.status, error);
    }
}

impl Proxy {
    /// Parses the complete head at the start of `buf` (its fields in
    /// `room`, its method in `method`), judges it and answers it when the
    /// policy does; anything else is handed back as the boxed future that
    /// serves it, with the judgement, so that nothing is judged twice.
    pub(super) fn take<'j, 'f, I: AsyncRead + AsyncWrite + Unpin + Readable>(
        &'j self,
        buf: &'f [u8],
        room: &'f mut Room<'f, MAX_REQUEST_HEADERS>,
        method: &'f mut Method,
        conn: &'f mut Conn<I>,
    ) -> Step<'j, impl Future<Output = Served> + use<'j, 'f, I>>
    where
        'j: 'f,
    {
        let start = Instant::now();
        let (req, head_len) = match head::parse_request(buf, room) {
            Parse::Head(req, len) => (req, len),
            Parse::Other => return Step::Done(Done::Handoff),
            Parse::Partial => return Step::Done(Done::Partial),
            Parse::Invalid => {
                let refused = ProxyError::BadRequest("malformed request head");
                return Step::Done(Done::Refuse(refused));
            }
        };
        let httparse::Request {
            method: name,
            path,
            headers,
            ..
        } = req;
        let (Some(parsed), Some(target)) = (
            name.and_then(|m| Method::from_bytes(m.as_bytes()).ok()),
            path,
        ) else {
            return Step::Done(Done::Handoff);
        };
        *method = parsed;
        let method: &'f Method = method;
        let view = HeadView::of_raw(method, target, headers);
        // Kept whole and borrowed from: the judgement is a few hundred
        // bytes, and taking it apart would copy them.
        let mut judgement = self.judge.decide(&view, &conn.info);
        let Plan::Answer(answer) = &judgement.plan else {
            return Step::Serve(crate::proxy::boxed(|| {
                self.serve(buf, head_len, view, judgement, start, conn)
            }));
        };
        let answered = self.answer_now(
            buf,
            head_len,
            &view,
            answer,
            &judgement.request_id,
            &mut judgement.facts,
            start,
            conn,
        );
        Step::Done(Done::Answer {
            used: answered.used,
            next: answered.next,
            cut_short: CutShort {
                request_id: judgement.request_id,
                status: answered.status,
            },
            wait: answered.wait,
        })
    }

    /// Renders and accounts the policy's `answer` to the request whose
    /// head (`view`) is the first `head_len` bytes of `buf`.
    #[allow(clippy::too_many_arguments)]
    fn answer_now<'j, I>(
        &'j self,
        buf: &[u8],
        head_len: usize,
        view: &HeadView<'_>,
        answer: &Answer<'_>,
        request_id: &Id,
        facts: &mut Facts<'j>,
        start: Instant,
        conn: &mut Conn<I>,
    ) -> Answered<'j> {
        let framing = RequestFraming::of(view, &buf[head_len..], conn);
        let unread = framing.unread();
        let close = framing.closes_after_answer(unread);
        let status = answer.status.as_u16();
        conn.render(answer, *view.method == Method::HEAD, close);
        conn.skip = if close { 0 } else { unread };
        let wait = self.accounts.finish(Finished {
            start,
            answered: conn.answered.take().unwrap_or_else(Instant::now),
            method: Some(view.method),
            version: http::Version::HTTP_11,
            target: view.target,
            user_agent: view.known.user_agent,
            peer: conn.info.peer.ip(),
            request_id,
            facts,
            outcome: Ok(status),
            cause: None,
        });
        Answered {
            used: head_len + framing.in_buf,
            next: if close { Next::Close } else { Next::KeepAlive },
            status,
            wait,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A connection's task holds the future of its current request for
    /// its whole life, idle or not: the request's own state (head,
    /// judgement, exchange, a few KiB) must stay out of it, in the box
    /// `take` hands back.
    #[tokio::test]
    async fn the_request_state_stays_out_of_the_connection_task() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
        let config = crate::config::load(&dir).expect("the demo configuration loads");
        let proxy = crate::proxy::Proxy::new(
            &config,
            std::sync::Arc::new(crate::telemetry::decision_log::DecisionLog::disabled()),
            Default::default(),
            1,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let info = crate::proxy::ConnInfo {
            peer: addr,
            tls: false,
        };
        let mut client = super::super::Client::new(stream, info);
        let pass = proxy.pass(&mut client);
        let size = std::mem::size_of_val(&pass);
        // 392 bytes in a debug build when this was written (208 before
        // the judgement moved here, 1,312 with the head judged inline).
        assert!(size <= 512, "the pass future is {size} bytes");
    }
}
