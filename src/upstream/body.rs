//! The request body on its way upstream: streamed and counted against the
//! configured limit, or already read whole (bounded) because a body-aware
//! rule had to inspect it.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Why the request body stopped while being forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardBodyError {
    /// More bytes arrived than `limits.max_request_body_bytes` allows.
    #[error("request body exceeds {0} bytes")]
    TooLarge(u64),
    /// Reading from the client failed.
    #[error("reading the request body failed: {0}")]
    Client(#[source] hyper::Error),
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
        }
    }

    /// A body that was read whole for inspection.
    pub fn buffered(bytes: Bytes) -> Self {
        ForwardBody {
            inner: None,
            buffered: (!bytes.is_empty()).then_some(bytes),
            limit: None,
            seen: 0,
        }
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
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(this.buffered.take().map(|b| Ok(Frame::data(b))));
        };
        match ready!(inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let (Some(limit), Some(data)) = (*this.limit, frame.data_ref()) {
                    *this.seen += data.len() as u64;
                    if *this.seen > limit {
                        return Poll::Ready(Some(Err(ForwardBodyError::TooLarge(limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(ForwardBodyError::Client(e)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
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
