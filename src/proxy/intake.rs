//! Intake checks: limits, message framing and `Host`, before anything is
//! forwarded.
//!
//! Framing is judged strictly because a proxy and its backend that disagree
//! on where a request ends are the root of request smuggling: both
//! `Content-Length` and `Transfer-Encoding`, several `Content-Length` fields
//! (even equal ones), or a transfer coding other than a lone `chunked` are
//! rejected with 400 and never reach the backend.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Version};

use super::error::ProxyError;
use crate::config::Limits;

/// What intake learned about a request that passed.
#[derive(Debug)]
pub struct Checked {
    /// The request target to forward: the canonical path and the query,
    /// or `None` when the original target is canonical already.
    pub target: Option<http::uri::PathAndQuery>,
    /// The host the client asked for (`:authority` / absolute-form / `Host`).
    pub host: Option<HeaderValue>,
    /// Whether this is an HTTP/1.1 protocol upgrade request (WebSocket).
    pub upgrade: bool,
}

/// Runs every intake check; the first failure decides the answer.
pub fn check<B>(req: &Request<B>, limits: &Limits) -> Result<Checked, ProxyError> {
    if req.method() == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed("CONNECT"));
    }
    let uri = req.uri();
    let target_len = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target_len > limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong(limits.max_uri_bytes));
    }
    let headers = req.headers();
    if headers.len() > limits.max_headers {
        return Err(ProxyError::HeadersTooLarge("too many header fields"));
    }
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge("header fields too large"));
    }
    framing(headers, limits)?;
    let target = canonical_target(uri)?;
    let host = host(req)?;
    let upgrade = req.version() == Version::HTTP_11
        && headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    Ok(Checked {
        target,
        host,
        upgrade,
    })
}

/// The path is canonicalised here, once: the same form is judged and
/// forwarded. The query is kept as the client sent it.
fn canonical_target(uri: &http::Uri) -> Result<Option<http::uri::PathAndQuery>, ProxyError> {
    let path = crate::canonical::canonical_path(uri.path())?;
    if path.is_unchanged() {
        return Ok(None);
    }
    let mut text = path.as_str().to_owned();
    if let Some(q) = uri.query() {
        text.push('?');
        text.push_str(q);
    }
    http::uri::PathAndQuery::from_maybe_shared(bytes::Bytes::from(text))
        .map(Some)
        .map_err(|_| ProxyError::BadRequest("invalid request target"))
}

fn framing(headers: &HeaderMap, limits: &Limits) -> Result<(), ProxyError> {
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let length = lengths.next();
    if lengths.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Content-Length"));
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(te) = codings.next() {
        if length.is_some() {
            return Err(ProxyError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        let only_chunked = te
            .to_str()
            .is_ok_and(|s| s.trim().eq_ignore_ascii_case("chunked"));
        if !only_chunked || codings.next().is_some() {
            return Err(ProxyError::BadRequest(
                "Transfer-Encoding other than a single chunked",
            ));
        }
    }
    if let Some(v) = length {
        let n: u64 = v
            .to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or(ProxyError::BadRequest("invalid Content-Length"))?;
        if limits.max_request_body_bytes.is_some_and(|max| n > max) {
            return Err(ProxyError::BodyTooLarge(
                limits.max_request_body_bytes.unwrap_or(0),
            ));
        }
    }
    Ok(())
}

fn host<B>(req: &Request<B>) -> Result<Option<HeaderValue>, ProxyError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Host header"));
    }
    if let Some(h) = host_header {
        let valid = h
            .to_str()
            .ok()
            .and_then(|s| s.parse::<http::uri::Authority>().ok())
            .is_some_and(|a| !a.as_str().contains('@'));
        if !valid {
            return Err(ProxyError::BadRequest("invalid Host header"));
        }
    }
    match (req.uri().authority(), host_header) {
        (Some(authority), Some(h)) => {
            if !authority
                .as_str()
                .eq_ignore_ascii_case(h.to_str().unwrap_or_default())
            {
                return Err(ProxyError::BadRequest(
                    "the request target's authority disagrees with Host",
                ));
            }
            Ok(Some(h.clone()))
        }
        (Some(authority), None) => {
            if authority.as_str().contains('@') {
                return Err(ProxyError::BadRequest(
                    "user information in the request target",
                ));
            }
            HeaderValue::from_str(authority.as_str())
                .map(Some)
                .map_err(|_| ProxyError::BadRequest("invalid authority"))
        }
        (None, Some(h)) => Ok(Some(h.clone())),
        (None, None) if req.version() == Version::HTTP_11 => {
            Err(ProxyError::BadRequest("missing Host header"))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
