//! Responses the proxy writes itself, rendered in the negotiated format.

use http::StatusCode;

use super::answer::template::escape;
use super::answer::Answer;
use super::error::ProxyError;
use super::negotiate::{negotiate, Format};

/// The answer for `err`: a short body naming the problem and the request id.
pub fn error_response(err: &ProxyError, accept: Option<&str>, rid: &str) -> Answer<'static> {
    let status = err.status();
    let detail = err.to_string();
    let (content_type, body) = match negotiate(accept) {
        Format::Json => (
            "application/problem+json",
            serde_json::json!({
                "type": "about:blank",
                "title": reason(status),
                "status": status.as_u16(),
                "detail": detail,
                "code": err.code(),
                "request_id": rid,
            })
            .to_string()
                + "\n",
        ),
        Format::Html => ("text/html; charset=utf-8", html(status, &detail, rid)),
        Format::Text => (
            "text/plain; charset=utf-8",
            format!(
                "{} {}\n{detail}\nrequest id: {rid}\n",
                status.as_u16(),
                reason(status)
            ),
        ),
    };
    let mut a = Answer::new(status, body.into_bytes());
    a.field("content-type", content_type.as_bytes());
    a.field("cache-control", &b"no-store"[..]);
    a.field("x-request-id", rid.as_bytes().to_vec());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Lookup failures are not cached: the next try looks up again.
        a.field("retry-after", &b"5"[..]);
    }
    // The connection's framing may not be trustworthy after these; after
    // an upstream failure the client starts afresh (and a half-sent body
    // is never read as the next request). The same on both codecs.
    a.close = status == StatusCode::BAD_REQUEST
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        || err.is_upstream();
    a
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn html(status: StatusCode, detail: &str, rid: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{code} {reason}</title></head>\n<body><main>\
         <h1>{code} {reason}</h1><p>{detail}</p>\
         <p><small>Request id: <code>{rid}</code></small></p></main></body></html>\n",
        code = status.as_u16(),
        reason = escape(reason(status)),
        detail = escape(detail),
        rid = escape(rid),
    )
}
