//! Intake checks: limits, message framing, `Host` and the canonical path,
//! before anything is judged or forwarded. They read a [`HeadView`], so
//! both codecs run exactly these checks.
//!
//! Framing is judged strictly because a proxy and its backend that disagree
//! on where a request ends are the root of request smuggling: both
//! `Content-Length` and `Transfer-Encoding`, several `Content-Length` fields
//! (even equal ones), or a transfer coding other than a lone `chunked` are
//! rejected with 400 and never reach the backend.

use http::Version;

use super::error::ProxyError;
use crate::canonical::{canonical_path, canonical_plain_path, CanonicalPath};
use crate::config::Limits;
use crate::head::{text, HeadView};

/// The methods of RFC 9110 and PATCH.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// What intake learned about a request that passed.
#[derive(Debug)]
pub struct Checked<'v> {
    /// The canonical path: forwarded with the query as sent, and judged
    /// unless `folded` is set.
    pub path: CanonicalPath<'v>,
    /// The path as a lenient backend reads it, when that differs (see
    /// [`crate::canonical::fold`]): what the rules judge.
    pub folded: Option<String>,
    /// The host the client asked for (`:authority` / absolute-form / `Host`).
    pub host: Option<&'v str>,
    /// Whether this is an HTTP/1.1 protocol upgrade request (WebSocket).
    pub upgrade: bool,
    /// The body's length by `Content-Length`, if it has one.
    pub content_length: Option<u64>,
}

/// Runs every intake check; the first failure decides the answer.
pub fn check<'v>(view: &HeadView<'v>, limits: &Limits) -> Result<Checked<'v>, ProxyError> {
    let method = view.method.as_str();
    if method.eq_ignore_ascii_case("CONNECT") {
        return Err(ProxyError::MethodNotAllowed("CONNECT"));
    }
    // Methods are case-sensitive, but a lenient backend routes `patch` as
    // PATCH and may frame a `head` response as HEAD's: a standard method
    // spelled in another case is refused (as nginx does), never read two ways.
    if method.bytes().any(|b| b.is_ascii_lowercase())
        && STANDARD_METHODS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method))
    {
        return Err(ProxyError::BadRequest(
            "a standard method in lower or mixed case",
        ));
    }
    if view.target_len > limits.max_uri_bytes {
        return Err(ProxyError::UriTooLong(limits.max_uri_bytes));
    }
    let known = &view.known;
    if known.count > limits.max_headers {
        return Err(ProxyError::HeadersTooLarge("too many header fields"));
    }
    if known.size > limits.max_header_bytes {
        return Err(ProxyError::HeadersTooLarge("header fields too large"));
    }
    if let Some(scheme) = view.scheme {
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(ProxyError::BadRequest("a scheme other than http or https"));
        }
    }
    // Credentials are not a list: which of two would the backend read?
    if known.authorization[1].is_some() {
        return Err(ProxyError::BadRequest("more than one Authorization header"));
    }
    let content_length = framing(view, limits)?;
    let path = if view.plain_target {
        canonical_plain_path(view.path)?
    } else {
        canonical_path(view.path)?
    };
    let folded = crate::canonical::fold(path.as_str())?;
    let host = host(view)?;
    let upgrade = view.version == Version::HTTP_11
        && known.upgrade
        && known.connection
        && view.fields.connection_lists("upgrade");
    Ok(Checked {
        path,
        folded,
        host,
        upgrade,
        content_length,
    })
}

fn framing(view: &HeadView<'_>, limits: &Limits) -> Result<Option<u64>, ProxyError> {
    let [length, second] = view.known.content_length;
    if second.is_some() {
        return Err(ProxyError::BadRequest("more than one Content-Length"));
    }
    let [coding, another] = view.known.transfer_encoding;
    if let Some(te) = coding {
        if length.is_some() {
            return Err(ProxyError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        let only_chunked = text(te).is_some_and(|s| s.trim().eq_ignore_ascii_case("chunked"));
        if !only_chunked || another.is_some() {
            return Err(ProxyError::BadRequest(
                "Transfer-Encoding other than a single chunked",
            ));
        }
    }
    let Some(v) = length else { return Ok(None) };
    let n = decimal(v).ok_or(ProxyError::BadRequest("invalid Content-Length"))?;
    if limits.max_request_body_bytes.is_some_and(|max| n > max) {
        return Err(ProxyError::BodyTooLarge(
            limits.max_request_body_bytes.unwrap_or(0),
        ));
    }
    Ok(Some(n))
}

/// A `Content-Length` value: one or more ASCII digits that fit a `u64`.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// A host name or IPv4 address with an optional port: valid without a
/// closer look (the common case).
fn plain_host(b: &[u8]) -> bool {
    // Letters, digits, `.`, `-` and `:`, one lookup each without an
    // early exit, counting the colons on the way; then at most one colon,
    // followed by a port (read from the end: a search call costs more
    // than this whole check on a host this short).
    static HOST_BYTE: [bool; 256] = crate::canonical::byte_class(b".-:");
    let (ok, colons) = b.iter().fold((true, 0usize), |(ok, colons), &c| {
        (
            ok & HOST_BYTE[usize::from(c)],
            colons + usize::from(c == b':'),
        )
    });
    if b.is_empty() || !ok {
        return false;
    }
    match colons {
        0 => true,
        1 => {
            let port = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
            (1..=5).contains(&port) && b.len() > port + 1 && b[b.len() - port - 1] == b':'
        }
        _ => false,
    }
}

/// Anything else a `Host` may be (IPv6 literals), as the URI grammar
/// reads it, without user information.
fn authority(h: &str) -> bool {
    h.parse::<http::uri::Authority>()
        .is_ok_and(|a| !a.as_str().contains('@'))
}

fn host<'v>(view: &HeadView<'v>) -> Result<Option<&'v str>, ProxyError> {
    let [host_field, second] = view.known.host;
    if second.is_some() {
        return Err(ProxyError::BadRequest("more than one Host header"));
    }
    let host_field = match host_field {
        // A plain host is ASCII: read as text without checking it twice.
        Some(h) => Some(
            if plain_host(h) {
                std::str::from_utf8(h).ok()
            } else {
                text(h).filter(|s| authority(s))
            }
            .ok_or(ProxyError::BadRequest("invalid Host header"))?,
        ),
        None => None,
    };
    match (view.authority, host_field) {
        (Some(authority), Some(h)) => {
            if !authority.eq_ignore_ascii_case(h) {
                return Err(ProxyError::BadRequest(
                    "the request target's authority disagrees with Host",
                ));
            }
            Ok(Some(h))
        }
        (Some(authority), None) => {
            if authority.contains('@') {
                return Err(ProxyError::BadRequest(
                    "user information in the request target",
                ));
            }
            Ok(Some(authority))
        }
        (None, Some(h)) => Ok(Some(h)),
        (None, None) if view.version == Version::HTTP_11 => {
            Err(ProxyError::BadRequest("missing Host header"))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
