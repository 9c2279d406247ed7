//! Whether a request head read in place is plainly within the proxy's
//! intake rules, and its head towards the upstream.
//!
//! [`plain`] is a strict subset of `intake::check`: it accepts a request
//! only when every check clearly passes, and says nothing about anything
//! else: such a request goes to the full handler, which runs the real
//! checks and gives the real answer. So this path never needs its own error
//! answers, and a doubt always ends at the full handler.
//!
//! [`write_upstream_head`] writes what the handler sets on hyper's path:
//! hop-by-hop fields dropped, `Host`, the forwarding headers (the same
//! [`forwarding_values`] as `apply_forwarding`), `Via`, `X-Request-Id`.

use std::borrow::Cow;

use http::header;
use http::Method;

use super::head::{field, is, joined, via_and_request_id, Hops};
use crate::canonical::canonical_path;
use crate::config::Limits;
use crate::proxy::X_REQUEST_ID;
use crate::upstream::headers::{
    forwarding_values, Hop, HostValue, FORWARDED, X_FORWARDED_FOR, X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
};

/// What the pass-through path needs of a plain request.
#[derive(Debug)]
pub struct Plain<'b> {
    /// The method.
    pub method: Method,
    /// The canonical path.
    pub path: Cow<'b, str>,
    /// The query, as sent.
    pub query: Option<&'b str>,
    /// The `Host` value.
    pub host: &'b str,
    /// The body's length (`Content-Length`, or 0).
    pub body_len: u64,
    /// The client asked to close the connection after this request.
    pub close: bool,
    /// The first `X-Request-Id` value.
    pub request_id: Option<&'b [u8]>,
    /// The first `Accept` value.
    pub accept: Option<&'b [u8]>,
    /// Whether an `Authorization` field was sent.
    pub authorization: bool,
}

/// The request, if it plainly passes intake; `None`: for the full handler.
pub fn plain<'b>(req: &httparse::Request<'_, 'b>, limits: &Limits) -> Option<Plain<'b>> {
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let target = req.path?;
    if method == Method::CONNECT
        || target.len() > limits.max_uri_bytes
        || !target.bytes().all(plain_target_byte)
        || req.headers.len() > limits.max_headers
    {
        return None;
    }
    let mut bytes = 0;
    let (mut host, mut hosts) = (None, 0);
    let (mut body_len, mut lengths) = (0, 0);
    let (mut request_id, mut accept, mut authorization) = (None, None, false);
    for h in req.headers.iter() {
        bytes += h.name.len() + h.value.len() + 4;
        if is(h, &header::HOST) {
            hosts += 1;
            host = Some(h.value);
        } else if is(h, &header::CONTENT_LENGTH) {
            lengths += 1;
            body_len = super::head::digits(h.value)?;
        } else if is(h, &X_REQUEST_ID) {
            request_id = request_id.or(Some(h.value));
        } else if is(h, &header::ACCEPT) {
            accept = accept.or(Some(h.value));
        } else if is(h, &header::AUTHORIZATION) {
            authorization = true;
        }
    }
    // `Connection: content-length` would drop the body's framing on hyper's
    // path; here it is the full handler's to judge.
    if bytes > limits.max_header_bytes
        || super::head::connection_lists(req.headers, b"content-length")
        || hosts != 1
        || lengths > 1
        || limits
            .max_request_body_bytes
            .is_some_and(|max| body_len > max)
    {
        return None;
    }
    let host = std::str::from_utf8(host?).ok().filter(|h| plain_host(h))?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let canonical = canonical_path(path).ok()?;
    let path = if canonical.is_unchanged() {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(canonical.as_str().to_owned())
    };
    Some(Plain {
        method,
        path,
        query,
        host,
        body_len,
        close: super::head::connection_lists(req.headers, b"close"),
        request_id,
        accept,
        authorization,
    })
}

/// Bytes a plain request target may hold: RFC 3986's unreserved and
/// sub-delims, `:`, `@`, `/`, `?` and `%` (escapes are judged by the
/// canonicaliser). Anything else is for hyper's parser to judge.
fn plain_target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

/// A host name or IPv4 address with an optional port; anything else
/// (IPv6 literals, user information) is for the full checks.
fn plain_host(h: &str) -> bool {
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (h, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Fields the rewrite sets itself.
fn rewritten(h: &httparse::Header<'_>) -> bool {
    [
        &header::HOST,
        &header::VIA,
        &X_REQUEST_ID,
        &X_FORWARDED_FOR,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
        &FORWARDED,
    ]
    .into_iter()
    .any(|n| is(h, n))
}

/// Appends the request head towards the upstream.
pub fn write_upstream_head(
    out: &mut Vec<u8>,
    req: &httparse::Request<'_, '_>,
    plain: &Plain<'_>,
    upstream_host: &str,
    hop: &Hop<'_>,
    rid: &[u8],
) {
    let headers: &[httparse::Header<'_>] = req.headers;
    out.extend_from_slice(plain.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(plain.path.as_bytes());
    if let Some(q) = plain.query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let values = forwarding_values(hop, |name| joined(headers, name));
    // A trusted peer's X-Forwarded-Proto/-Host stay as they were sent.
    let keep_proto = values.proto.is_none();
    let keep_host = values.host == HostValue::Keep;
    let hops = Hops::of(headers);
    for h in headers {
        let kept =
            (keep_proto && is(h, &X_FORWARDED_PROTO)) || (keep_host && is(h, &X_FORWARDED_HOST));
        if hops.contains(h) || (rewritten(h) && !kept) {
            continue;
        }
        field(out, h.name.as_bytes(), h.value);
    }
    field(out, b"host", upstream_host.as_bytes());
    field(out, b"x-forwarded-for", values.xff.as_bytes());
    if let Some(proto) = values.proto {
        field(out, b"x-forwarded-proto", proto.as_bytes());
    }
    if let HostValue::Set(h) = values.host {
        field(out, b"x-forwarded-host", h.as_bytes());
    }
    field(out, b"forwarded", values.forwarded.as_bytes());
    via_and_request_id(out, headers, rid);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
