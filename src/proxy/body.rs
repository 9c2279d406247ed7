//! The response body sent to the client: the upstream's stream or a local,
//! complete body. The request body sent upstream is
//! [`crate::upstream::body::ForwardBody`]. Both stream frame by frame;
//! nothing is buffered whole.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::upstream::Lease;

pin_project_lite::pin_project! {
    /// A response body: the upstream's stream or a local, complete body.
    #[project = ProxyBodyProj]
    #[allow(missing_docs)] // pin-project-lite takes no docs on variant fields
    pub enum ProxyBody {
        /// Streamed from the upstream; the lease returns the connection to
        /// the pool once the body has been read to the end.
        Upstream {
            #[pin] body: Incoming,
            lease: Option<Lease>,
        },
        /// Produced by the proxy, complete.
        Local {
            data: Option<Bytes>,
        },
    }
}

impl ProxyBody {
    /// A body streamed from the upstream. An empty body releases the
    /// connection at once: hyper never polls a body that is already at its end.
    pub fn upstream(body: Incoming, lease: Option<Lease>) -> Self {
        let lease = match lease {
            Some(l) if body.is_end_stream() => {
                l.release();
                None
            }
            other => other,
        };
        ProxyBody::Upstream { body, lease }
    }

    /// A complete local body.
    pub fn local(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        ProxyBody::Local {
            data: (!bytes.is_empty()).then_some(bytes),
        }
    }

    /// The bytes of a local body (`None` for a streamed one).
    pub fn local_bytes(&self) -> Option<&[u8]> {
        match self {
            ProxyBody::Local { data } => Some(data.as_deref().unwrap_or_default()),
            ProxyBody::Upstream { .. } => None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.project() {
            ProxyBodyProj::Upstream { mut body, lease } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
                match &frame {
                    Some(Ok(_)) if !body.is_end_stream() => {}
                    // Finished: the connection can carry the next request.
                    None | Some(Ok(_)) => {
                        if let Some(l) = lease.take() {
                            l.release();
                        }
                    }
                    // Broken: drop the lease, and with it the connection.
                    Some(Err(_)) => drop(lease.take()),
                }
                Poll::Ready(frame)
            }
            ProxyBodyProj::Local { data } => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
            ProxyBody::Local { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Local { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
