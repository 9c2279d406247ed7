//! The response body sent to the client: the upstream's stream or a local,
//! complete body. The request body sent upstream is
//! [`crate::upstream::body::ForwardBody`]. Both stream frame by frame;
//! nothing is buffered whole.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::failure::RelayError;
use super::request_id::Id;
use crate::deadline::Deadline;
use crate::telemetry::metrics::Metrics;
use crate::upstream::Lease;

/// The error a streamed body ends with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// What watches a streamed upstream body: the wait for each frame is
/// bounded by `upstream.read_timeout`, and a body that breaks or stalls
/// after its head went out is counted and logged (the request's own
/// accounting ran when the head was ready).
pub struct BodyWatch {
    deadline: Deadline,
    within: Duration,
    armed: bool,
    metrics: Arc<Metrics>,
    request_id: Id,
}

impl BodyWatch {
    /// A watch with `within` between frames.
    pub fn new(within: Duration, metrics: Arc<Metrics>, request_id: Id) -> Box<Self> {
        Box::new(BodyWatch {
            deadline: Deadline::new(),
            within,
            armed: false,
            metrics,
            request_id,
        })
    }

    fn failed(&self, error: &RelayError) {
        super::failure::body_failed(&self.metrics, &self.request_id, error);
    }
}

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
            first: Option<Frame<Bytes>>,
            watch: Option<Box<BodyWatch>>,
        },
        /// Produced by the proxy, complete.
        Local {
            data: Option<Bytes>,
        },
    }
}

impl ProxyBody {
    /// A body streamed from the upstream, `first` its first frame when it
    /// was read before the head went out. An empty body releases the
    /// connection at once: hyper never polls a body that is already at its end.
    pub fn upstream(
        body: Incoming,
        lease: Option<Lease>,
        first: Option<Frame<Bytes>>,
        watch: Option<Box<BodyWatch>>,
    ) -> Self {
        let lease = match lease {
            Some(l) if body.is_end_stream() => {
                l.release();
                None
            }
            other => other,
        };
        ProxyBody::Upstream {
            body,
            lease,
            first,
            watch,
        }
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
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.project() {
            ProxyBodyProj::Upstream {
                mut body,
                lease,
                first,
                watch,
            } => {
                if let Some(frame) = first.take() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                let frame = match body.as_mut().poll_frame(cx) {
                    Poll::Ready(frame) => frame,
                    Poll::Pending => {
                        let Some(w) = watch.as_mut() else {
                            return Poll::Pending;
                        };
                        if !w.armed {
                            w.deadline.set(w.within);
                            w.armed = true;
                        }
                        ready!(w.deadline.poll_passed(cx));
                        // Stalled: drop the lease, and with it the connection.
                        drop(lease.take());
                        let error = RelayError::ReadTimeout;
                        w.failed(&error);
                        return Poll::Ready(Some(Err(error.into())));
                    }
                };
                if let Some(w) = watch.as_mut() {
                    w.armed = false;
                }
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
                Poll::Ready(frame.map(|f| {
                    f.map_err(|e| {
                        let error = RelayError::UpstreamBody(e);
                        if let Some(w) = watch.as_ref() {
                            w.failed(&error);
                        }
                        error.into()
                    })
                }))
            }
            ProxyBodyProj::Local { data } => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { body, first, .. } => first.is_none() && body.is_end_stream(),
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
