//! The request body on its way upstream: streamed and counted against the
//! configured limit, or already read whole (bounded) because a body-aware
//! rule had to inspect it.
//!
//! A streamed body may be watched ([`ForwardBody::watched`]): each wait for
//! the client's next bytes is bounded by `server.client_body_timeout`, and
//! the end of the body is signalled, so that the response header timeout
//! starts when the request has been sent whole, not while the client is
//! still uploading.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use crate::deadline::Deadline;

/// Data frames are joined up to this many bytes while more are ready: an
/// upload in tiny chunks costs one upstream write per batch, not per chunk.
const COALESCE_MAX: usize = 64 * 1024;

/// Why the request body stopped while being forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardBodyError {
    /// More bytes arrived than `limits.max_request_body_bytes` allows.
    #[error("request body exceeds {0} bytes")]
    TooLarge(u64),
    /// Reading from the client failed.
    #[error("reading the request body failed: {0}")]
    Client(#[source] hyper::Error),
    /// The client sent nothing for `server.client_body_timeout`.
    #[error("the client sent nothing of its request body for the client body timeout")]
    Timeout,
}

/// The clock and the end signal of a watched body.
struct Watch {
    deadline: Deadline,
    within: Duration,
    armed: bool,
    done: Option<oneshot::Sender<()>>,
}

pin_project_lite::pin_project! {
    /// The client's request body on its way upstream: streamed and counted
    /// against the configured limit, or already read whole (bounded) because
    /// a body-aware rule had to inspect it.
    pub struct ForwardBody {
        #[pin]
        inner: Option<Incoming>,
        buffered: Option<Bytes>,
        limit: Option<u64>,
        seen: u64,
        watch: Option<Box<Watch>>,
        // What was read while joining data frames (trailers, an error),
        // given at the next poll.
        held: Option<Result<Frame<Bytes>, ForwardBodyError>>,
    }
}

impl ForwardBody {
    /// Streams `inner`, failing once more than `limit` bytes have passed.
    pub fn new(inner: Incoming, limit: Option<u64>) -> Self {
        ForwardBody {
            inner: Some(inner),
            buffered: None,
            limit,
            seen: 0,
            watch: None,
            held: None,
        }
    }

    /// A body that was read whole for inspection.
    pub fn buffered(bytes: Bytes) -> Self {
        ForwardBody {
            inner: None,
            buffered: (!bytes.is_empty()).then_some(bytes),
            limit: None,
            seen: 0,
            watch: None,
            held: None,
        }
    }

    /// Bounds each wait for the client's bytes by `within`; the receiver
    /// resolves when the body has been read to its end (or was dropped).
    pub fn watched(mut self, within: Duration) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        self.watch = Some(Box::new(Watch {
            deadline: Deadline::new(),
            within,
            armed: false,
            done: Some(tx),
        }));
        (self, rx)
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = ForwardBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ForwardBodyError>>> {
        let this = self.project();
        if let Some(held) = this.held.take() {
            return Poll::Ready(Some(held));
        }
        let Some(mut inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(this.buffered.take().map(|b| Ok(Frame::data(b))));
        };
        let first = match inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                let Some(w) = this.watch.as_mut() else {
                    return Poll::Pending;
                };
                if !w.armed {
                    w.deadline.set(w.within);
                    w.armed = true;
                }
                ready!(w.deadline.poll_passed(cx));
                return Poll::Ready(Some(Err(ForwardBodyError::Timeout)));
            }
        };
        if let Some(w) = this.watch.as_mut() {
            w.armed = false;
        }
        let frame = match first {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(ForwardBodyError::Client(e)))),
            None => {
                signal_done(this.watch);
                return Poll::Ready(None);
            }
        };
        let frame = match frame.into_data() {
            // Join the data frames that are ready now: the tiny chunks of a
            // chunked upload arrive many to a read.
            Ok(data) => {
                let mut joined: Option<BytesMut> = None;
                while data.len() + joined.as_ref().map_or(0, BytesMut::len) < COALESCE_MAX
                    && !inner.is_end_stream()
                {
                    let next = match inner.as_mut().poll_frame(cx) {
                        Poll::Ready(Some(Ok(next))) => next,
                        // After this batch.
                        Poll::Ready(Some(Err(e))) => {
                            *this.held = Some(Err(ForwardBodyError::Client(e)));
                            break;
                        }
                        // Pending (the waker is registered), or the end.
                        _ => break,
                    };
                    match next.into_data() {
                        Ok(more) => joined
                            .get_or_insert_with(|| BytesMut::from(&data[..]))
                            .extend_from_slice(&more),
                        // Trailers go out after this batch.
                        Err(trailers) => {
                            *this.held = Some(Ok(trailers));
                            break;
                        }
                    }
                }
                let data = joined.map_or(data, BytesMut::freeze);
                if let Some(limit) = *this.limit {
                    *this.seen += data.len() as u64;
                    if *this.seen > limit {
                        return Poll::Ready(Some(Err(ForwardBodyError::TooLarge(limit))));
                    }
                }
                Frame::data(data)
            }
            Err(frame) => frame,
        };
        if this.held.is_none() && inner.is_end_stream() {
            signal_done(this.watch);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        if self.held.is_some() {
            return false;
        }
        match &self.inner {
            Some(i) => i.is_end_stream(),
            None => self.buffered.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(i) => i.size_hint(),
            None => SizeHint::with_exact(self.buffered.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// Signals the end of a watched body.
fn signal_done(watch: &mut Option<Box<Watch>>) {
    if let Some(tx) = watch.as_mut().and_then(|w| w.done.take()) {
        let _ = tx.send(());
    }
}
