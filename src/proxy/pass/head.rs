//! Message heads on the pass-through path, read in place with `httparse`
//! and written back as HTTP/1.1 without building `HeaderMap`s.
//!
//! Parsing is strict (httparse's defaults, as hyper uses them). A request
//! this path does not serve (HTTP/1.0, a target that is not origin-form,
//! `Transfer-Encoding`, `Upgrade`, `Expect`, more header fields than it
//! parses) is [`Parse::Other`]: hyper serves it, from the same bytes. What
//! httparse refuses is [`Parse::Invalid`], answered with 400 and a body.
//!
//! Response heads are rewritten as the handler rewrites them on hyper's
//! path (`strip_hop_by_hop`, `append_via`, `X-Request-Id`): hop-by-hop
//! fields (and those named in `Connection`) dropped, `Via` extended,
//! `X-Request-Id` set.

use std::mem::MaybeUninit;

use http::header::{self, HeaderName};
use http::StatusCode;

use crate::upstream::headers::{is_hop_by_hop, join_values, via_token};

/// Header fields a request on this path may have; more go to hyper.
pub const MAX_REQUEST_HEADERS: usize = 64;
/// Header fields an upstream response may have.
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// Room for the header fields of one head.
pub type Fields<'b, const N: usize> = [MaybeUninit<httparse::Header<'b>>; N];

/// Empty room for `N` header fields.
pub fn fields<'b, const N: usize>() -> Fields<'b, N> {
    [MaybeUninit::uninit(); N]
}

/// What a buffer holds.
#[derive(Debug)]
pub enum Parse<T> {
    /// Not a complete head yet.
    Partial,
    /// Something this path leaves to hyper.
    Other,
    /// Not HTTP/1.x (httparse refuses it).
    Invalid,
    /// A complete head of this many bytes.
    Head(T, usize),
}

/// Parses the request head at the start of `buf`, in place.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    fields: &'h mut Fields<'b, MAX_REQUEST_HEADERS>,
) -> Parse<httparse::Request<'h, 'b>> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        // More fields than this path parses may still be within the limits.
        Err(httparse::Error::TooManyHeaders) => return Parse::Other,
        Err(_) => return Parse::Invalid,
    };
    if req.version != Some(1) || !req.path.is_some_and(|p| p.starts_with('/')) {
        return Parse::Other;
    }
    let for_hyper = [header::TRANSFER_ENCODING, header::UPGRADE, header::EXPECT];
    if req
        .headers
        .iter()
        .any(|h| for_hyper.iter().any(|n| is(h, n)))
    {
        return Parse::Other;
    }
    Parse::Head(req, len)
}

/// Whether field `h` is named `name` (any case).
pub fn is(h: &httparse::Header<'_>, name: &HeaderName) -> bool {
    h.name.eq_ignore_ascii_case(name.as_str())
}

/// The values of `name` joined by ", " (see [`join_values`]).
pub fn joined(headers: &[httparse::Header<'_>], name: &HeaderName) -> Option<String> {
    join_values(headers.iter().filter(|h| is(h, name)).map(|h| h.value))
}

/// Whether a `Connection` value in `headers` lists `token` (any case).
pub fn connection_lists(headers: &[httparse::Header<'_>], token: &[u8]) -> bool {
    headers
        .iter()
        .filter(|h| is(h, &header::CONNECTION))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Which fields of a head are hop-by-hop: the fixed set, and those its
/// `Connection` fields name (looked for only when it has one).
pub struct Hops<'h, 'b> {
    headers: &'h [httparse::Header<'b>],
    connection: bool,
}

impl<'h, 'b> Hops<'h, 'b> {
    /// The hop-by-hop fields of `headers`.
    pub fn of(headers: &'h [httparse::Header<'b>]) -> Self {
        let connection = headers.iter().any(|h| is(h, &header::CONNECTION));
        Hops {
            headers,
            connection,
        }
    }

    /// Whether `h` is one of them.
    pub fn contains(&self, h: &httparse::Header<'_>) -> bool {
        let name = h.name.as_bytes();
        is_hop_by_hop(name) || (self.connection && connection_lists(self.headers, name))
    }
}

/// How the upstream's response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (`HEAD`, 204, 304, 1xx, or `Content-Length: 0`).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`, passed through as it is.
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

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

/// A response head read in place.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// Status and fields, as the upstream sent them.
    pub response: httparse::Response<'h, 'b>,
    /// The status.
    pub status: StatusCode,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the upstream keeps the connection open afterwards.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`; `head_request` says the
/// request was `HEAD` (no body whatever the head says). `Ok(None)`: not
/// complete yet.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    fields: &'h mut Fields<'b, MAX_RESPONSE_HEADERS>,
    head_request: bool,
) -> Result<Option<(ResponseHead<'h, 'b>, usize)>, BadResponse> {
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BadResponse::Syntax),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(BadResponse::Syntax)?;
    let framing = framing(status, resp.headers, head_request)?;
    let keep_alive = resp.version == Some(1)
        && !connection_lists(resp.headers, b"close")
        && framing != Framing::Close;
    Ok(Some((
        ResponseHead {
            response: resp,
            status,
            framing,
            keep_alive,
        },
        len,
    )))
}

/// How the body of a response is delimited (RFC 9112 §6.3), refusing what
/// two parties could read differently.
fn framing(
    status: StatusCode,
    headers: &[httparse::Header<'_>],
    head_request: bool,
) -> Result<Framing, BadResponse> {
    if head_request
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Ok(Framing::Empty);
    }
    let mut codings = headers.iter().filter(|h| is(h, &header::TRANSFER_ENCODING));
    let mut lengths = headers.iter().filter(|h| is(h, &header::CONTENT_LENGTH));
    if let Some(te) = codings.next() {
        let chunked = te.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
        if !chunked || codings.next().is_some() || lengths.next().is_some() {
            return Err(BadResponse::Framing);
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for h in lengths {
        for part in h.value.split(|&b| b == b',') {
            let n = digits(part.trim_ascii()).ok_or(BadResponse::Framing)?;
            if length.is_some_and(|l| l != n) {
                return Err(BadResponse::Framing);
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

/// A decimal number of 1 to 19 digits.
pub fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Appends a header field line.
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `Via` (the peer's entries, then this proxy's, one line) and
/// `X-Request-Id: rid`; the peer's own fields of these names are not
/// copied.
pub fn via_and_request_id(out: &mut Vec<u8>, headers: &[httparse::Header<'_>], rid: &[u8]) {
    let ours = via_token(http::Version::HTTP_11);
    match joined(headers, &header::VIA) {
        Some(mut via) => {
            via.push_str(", ");
            via.push_str(ours);
            field(out, b"via", via.as_bytes());
        }
        None => field(out, b"via", ours.as_bytes()),
    }
    field(out, b"x-request-id", rid);
}

/// Appends `Date: now`, as hyper's server adds it to responses without one.
pub fn date(out: &mut Vec<u8>) {
    field(
        out,
        b"date",
        httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
    );
}

/// Appends the status line.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the client's response head for `head`: the upstream's fields
/// less hop-by-hop ones, `Via` extended, `X-Request-Id: rid`, the framing
/// the body is sent with, `Connection: close` unless `keep_alive`, and a
/// `Date` if the upstream sent none.
pub fn write_response(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_, '_>,
    rid: &[u8],
    keep_alive: bool,
) {
    let headers: &[httparse::Header<'_>] = head.response.headers;
    status_line(out, head.status);
    let mut has_date = false;
    let hops = Hops::of(headers);
    for h in headers.iter() {
        if hops.contains(h) || is(h, &header::VIA) || is(h, &crate::proxy::X_REQUEST_ID) {
            continue;
        }
        has_date |= is(h, &header::DATE);
        field(out, h.name.as_bytes(), h.value);
    }
    via_and_request_id(out, headers, rid);
    if head.framing == Framing::Chunked {
        field(out, b"transfer-encoding", b"chunked");
    }
    if !keep_alive {
        field(out, b"connection", b"close");
    }
    if !has_date {
        date(out);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
