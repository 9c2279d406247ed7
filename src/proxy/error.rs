//! The one place that maps failures to HTTP status codes.
//!
//! Every local error response is produced from a [`ProxyError`]; its
//! [`ProxyError::status`] is the whole error → status table, pinned by the
//! `status_table_is_pinned` test below.

use http::StatusCode;

use crate::upstream::UpstreamFailure;

/// Everything that makes the proxy answer a request itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The request is malformed or ambiguous; the text says how.
    #[error("malformed request: {0}")]
    BadRequest(&'static str),
    /// The path has no unambiguous canonical form.
    #[error("the request path is ambiguous: {0}")]
    AmbiguousPath(#[from] crate::canonical::PathRejection),
    /// The policy cannot judge the request safely (conflicting or malformed
    /// tenant ids, a body a body-aware rule cannot inspect).
    #[error("the request cannot be judged safely: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    /// The method cannot be proxied (CONNECT).
    #[error("method {0} is not supported by this proxy")]
    MethodNotAllowed(&'static str),
    /// The request target is longer than `limits.max_uri_bytes`.
    #[error("the request target is longer than {0} bytes")]
    UriTooLong(usize),
    /// Too many header fields, or too many header bytes.
    #[error("the request headers exceed the limit: {0}")]
    HeadersTooLarge(&'static str),
    /// The body is larger than `limits.max_request_body_bytes`.
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(u64),
    /// The client stopped sending the request body.
    #[error("the request body could not be read from the client")]
    ClientBody,
    /// The client sent nothing of its request body for
    /// `server.client_body_timeout`.
    #[error("the client did not send its request body in time")]
    ClientTimeout,
    /// The upstream could not be reached or broke the exchange.
    #[error("{}", upstream_text(*.0))]
    Upstream(UpstreamFailure),
    /// The upstream did not send a response head in time.
    #[error("the upstream did not answer within the response header timeout")]
    UpstreamTimeout,
    /// A rule needs the tenant's region and region discovery could not
    /// tell it (`on_failure = "refuse"`): never forwarded as if allowed.
    #[error(
        "the tenant's region could not be determined (region discovery: {}); try again later",
        .0.kind()
    )]
    RegionUnavailable(crate::discovery::LookupError),
}

fn upstream_text(f: UpstreamFailure) -> &'static str {
    match f {
        UpstreamFailure::Connect => "the upstream refused the connection or is unreachable",
        UpstreamFailure::ConnectTimeout => "the upstream did not accept a connection in time",
        UpstreamFailure::Tls => "the TLS handshake with the upstream failed",
        UpstreamFailure::Protocol => {
            "the upstream closed the connection or sent an invalid response"
        }
    }
}

impl ProxyError {
    /// The status code sent for this error: the single mapping table.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_)
            | ProxyError::AmbiguousPath(_)
            | ProxyError::Policy(_)
            | ProxyError::ClientBody => StatusCode::BAD_REQUEST,
            ProxyError::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ProxyError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Upstream(UpstreamFailure::ConnectTimeout) | ProxyError::UpstreamTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::RegionUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable machine-readable code, used in bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::AmbiguousPath(_) => "ambiguous_path",
            ProxyError::Policy(crate::policy::PolicyError::UninspectableBody { .. }) => {
                "uninspectable_body"
            }
            ProxyError::Policy(_) => "ambiguous_tenant",
            ProxyError::MethodNotAllowed(_) => "method_not_allowed",
            ProxyError::UriTooLong(_) => "uri_too_long",
            ProxyError::HeadersTooLarge(_) => "headers_too_large",
            ProxyError::BodyTooLarge(_) => "body_too_large",
            ProxyError::ClientBody => "client_body",
            ProxyError::ClientTimeout => "client_timeout",
            ProxyError::Upstream(UpstreamFailure::Connect) => "upstream_connect",
            ProxyError::Upstream(UpstreamFailure::ConnectTimeout) => "upstream_connect_timeout",
            ProxyError::Upstream(UpstreamFailure::Tls) => "upstream_tls",
            ProxyError::Upstream(UpstreamFailure::Protocol) => "upstream_protocol",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::RegionUnavailable(_) => "region_unavailable",
        }
    }

    /// Whether the fault lies on the upstream side (logged as a warning).
    pub fn is_upstream(&self) -> bool {
        matches!(self, ProxyError::Upstream(_) | ProxyError::UpstreamTimeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_is_pinned() {
        let table: &[(ProxyError, u16, &str)] = &[
            (ProxyError::BadRequest("x"), 400, "bad_request"),
            (
                ProxyError::AmbiguousPath(crate::canonical::PathRejection::Semicolon),
                400,
                "ambiguous_path",
            ),
            (ProxyError::ClientBody, 400, "client_body"),
            (ProxyError::ClientTimeout, 408, "client_timeout"),
            (
                ProxyError::Policy(crate::policy::PolicyError::RepeatedTenantSource("x".into())),
                400,
                "ambiguous_tenant",
            ),
            (
                ProxyError::Policy(crate::policy::PolicyError::UninspectableBody {
                    rule: "r".into(),
                }),
                400,
                "uninspectable_body",
            ),
            (
                ProxyError::MethodNotAllowed("CONNECT"),
                405,
                "method_not_allowed",
            ),
            (ProxyError::BodyTooLarge(1), 413, "body_too_large"),
            (ProxyError::UriTooLong(1), 414, "uri_too_long"),
            (ProxyError::HeadersTooLarge("x"), 431, "headers_too_large"),
            (
                ProxyError::Upstream(UpstreamFailure::Connect),
                502,
                "upstream_connect",
            ),
            (
                ProxyError::Upstream(UpstreamFailure::Tls),
                502,
                "upstream_tls",
            ),
            (
                ProxyError::Upstream(UpstreamFailure::Protocol),
                502,
                "upstream_protocol",
            ),
            (
                ProxyError::Upstream(UpstreamFailure::ConnectTimeout),
                504,
                "upstream_connect_timeout",
            ),
            (ProxyError::UpstreamTimeout, 504, "upstream_timeout"),
            (
                ProxyError::RegionUnavailable(crate::discovery::LookupError::Status(500)),
                503,
                "region_unavailable",
            ),
        ];
        for (err, status, code) in table {
            assert_eq!(err.status().as_u16(), *status, "{err:?}");
            assert_eq!(err.code(), *code, "{err:?}");
            assert!(!err.to_string().is_empty());
        }
    }
}
