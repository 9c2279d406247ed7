//! Responses the proxy writes itself, rendered in the negotiated format.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::error::ProxyError;
use super::negotiate::{negotiate, Format};

/// The response for `err`: a short body naming the problem and the request id.
pub fn error_response(
    err: &ProxyError,
    accept: Option<&str>,
    request_id: &HeaderValue,
) -> Response<ProxyBody> {
    let status = err.status();
    let rid = request_id.to_str().unwrap_or("");
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
    let mut resp = Response::new(ProxyBody::local(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(super::X_REQUEST_ID.clone(), request_id.clone());
    if status == StatusCode::BAD_REQUEST || status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
        // The connection's framing may not be trustworthy after these.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
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

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
