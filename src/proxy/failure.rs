//! Why a request failed, in one place for both codecs: [`RelayError`]
//! (the side and the cause of a broken forward), the mapping of upstream
//! errors to [`ProxyError`]s, and the throttled warnings of upstream
//! failures (also of a streamed body that broke after its head went out).
//!
//! Below the codecs and the accounting, which all read it; it imports
//! neither.

use std::io;

use super::error::ProxyError;
use super::pass::chunked::ChunkedError;
use super::request_id::Id;
use crate::telemetry::metrics::{Metrics, UpstreamErrorKind};
use crate::upstream::body::ForwardBodyError;
use crate::upstream::{UpstreamError, UpstreamFailure};

/// A malformed upstream response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    /// Not parseable as an HTTP/1.x response head.
    #[error("unparseable response head")]
    Syntax,
    /// Framing the proxy cannot pass on safely: both `Content-Length`
    /// and `Transfer-Encoding`, disagreeing lengths, or a transfer coding
    /// other than a lone `chunked`.
    #[error("ambiguous response framing")]
    Framing,
}

/// The longest upstream response head read.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Which side of the proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The upstream.
    Upstream,
}

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
    /// No response head within `response_header_timeout`, or the upstream
    /// took no request body bytes for as long.
    #[error("the upstream did not answer within the response header timeout")]
    Timeout,
    /// The upstream's response body broke (hyper's path: a malformed chunk,
    /// or the connection closed early).
    #[error("the upstream's response body broke: {0}")]
    UpstreamBody(#[source] hyper::Error),
    /// The upstream sent no body bytes for `upstream.read_timeout`.
    #[error("the upstream sent nothing of the response body for the read timeout")]
    ReadTimeout,
    /// Reading the request body from the client failed.
    #[error("reading the request body from the client failed: {0}")]
    ClientRead(#[source] io::Error),
    /// The client closed before its body was complete.
    #[error("the client closed the connection before its body was complete")]
    ClientClosed,
    /// The client's chunked body is malformed.
    #[error("the client sent a malformed chunked body")]
    ClientChunk,
    /// The client's chunked body is longer than the limit.
    #[error("the client's chunked body exceeds {0} bytes")]
    ClientBodyTooLarge(u64),
    /// The client sent nothing of its body for `server.client_body_timeout`.
    #[error("the client sent nothing of its request body for the client body timeout")]
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
            RelayError::Timeout | RelayError::ReadTimeout => ProxyError::UpstreamTimeout,
            RelayError::ClientTimeout => ProxyError::ClientTimeout,
            RelayError::ClientChunk => ProxyError::BadRequest("malformed chunked body"),
            RelayError::ClientBodyTooLarge(n) => ProxyError::BodyTooLarge(*n),
            RelayError::ClientRead(_) | RelayError::ClientClosed | RelayError::ClientWrite(_) => {
                ProxyError::ClientBody
            }
            _ => ProxyError::Upstream(UpstreamFailure::Protocol),
        }
    }
}

impl RelayError {
    /// The kind counted in `portalgate_upstream_errors_total` when the
    /// upstream is at fault; `None` for the client's failures.
    pub fn upstream_kind(&self) -> Option<UpstreamErrorKind> {
        Some(match self {
            RelayError::Connect(UpstreamError::Connect(f, _)) => match f {
                UpstreamFailure::Connect => UpstreamErrorKind::Connect,
                UpstreamFailure::ConnectTimeout => UpstreamErrorKind::ConnectTimeout,
                UpstreamFailure::Tls => UpstreamErrorKind::Tls,
                UpstreamFailure::Protocol => UpstreamErrorKind::Protocol,
            },
            RelayError::Timeout => UpstreamErrorKind::Timeout,
            RelayError::ReadTimeout => UpstreamErrorKind::ReadTimeout,
            RelayError::ClientRead(_)
            | RelayError::ClientClosed
            | RelayError::ClientTimeout
            | RelayError::ClientChunk
            | RelayError::ClientBodyTooLarge(_)
            | RelayError::ClientWrite(_) => return None,
            _ => UpstreamErrorKind::Protocol,
        })
    }
}

impl RelayError {
    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            RelayError::ClientRead(_)
            | RelayError::ClientClosed
            | RelayError::ClientWrite(_)
            | RelayError::ClientChunk
            | RelayError::ClientBodyTooLarge(_)
            | RelayError::ClientTimeout => Side::Client,
            _ => Side::Upstream,
        }
    }
}

/// Maps an upstream error to the proxy error it stands for; a failure of
/// the request body is the client's fault, not the upstream's.
pub(super) fn upstream_error(e: &UpstreamError) -> ProxyError {
    match e {
        UpstreamError::Connect(failure, _) => ProxyError::Upstream(*failure),
        UpstreamError::Exchange(err) => {
            for s in crate::upstream::pool::chain(err) {
                if let Some(b) = s.downcast_ref::<ForwardBodyError>() {
                    return match b {
                        ForwardBodyError::TooLarge(n) => ProxyError::BodyTooLarge(*n),
                        ForwardBodyError::Client(_) => ProxyError::ClientBody,
                        ForwardBodyError::Timeout => ProxyError::ClientTimeout,
                    };
                }
            }
            ProxyError::Upstream(UpstreamFailure::Protocol)
        }
    }
}

/// Upstream failures come in floods (an outage fails every request): at
/// most this many warning lines a second, then a count of the rest.
pub(super) static UPSTREAM_WARNINGS: crate::telemetry::throttle::Throttle =
    crate::telemetry::throttle::Throttle::new("failed upstream requests", 10);

/// Counts and logs a streamed response body that broke or stalled after
/// its head went out (hyper's path, where the request was accounted for
/// when its head was ready).
pub fn body_failed(metrics: &Metrics, request_id: &Id, error: &RelayError) {
    use crate::telemetry::metrics::UpstreamLabels;
    let Some(kind) = error.upstream_kind() else {
        return;
    };
    metrics
        .upstream_errors
        .get_or_create(&UpstreamLabels { kind })
        .inc();
    if UPSTREAM_WARNINGS.allow() {
        let cause = error.to_string();
        tracing::warn!(
            request_id = &*request_id.redacted(crate::telemetry::pseudonym::for_logs()),
            cause,
            "the response was cut short"
        );
    }
}
