//! Message heads on the pass-through path, read in place with `httparse`
//! and written back as HTTP/1.1 without building `HeaderMap`s.
//!
//! Parsing is strict (httparse's defaults, as hyper uses them). A request
//! this path does not serve (HTTP/1.0, a target that is not origin-form,
//! `Upgrade`, an `Expect` other than `100-continue`, more header fields than it
//! parses) is [`Parse::Other`]: hyper serves it, from the same bytes. What
//! httparse refuses is [`Parse::Invalid`], answered with 400 and a body.
//!
//! Response heads are rewritten by the one rewrite
//! ([`crate::upstream::headers::rewrite_response`]), written as bytes here
//! with the framing this codec sends ([`write_response`]).

use std::mem::MaybeUninit;

use http::header;
use http::StatusCode;

use crate::ascii::eq_lowercase;
use crate::head::{lists, Fields, Marks};
use crate::proxy::answer::{date, status_line};
pub use crate::proxy::failure::BadResponse;
use crate::upstream::headers::rewrite_response;

/// Header fields a request on this path may have; more go to hyper (a
/// browser sends 10 to 20). The room for them is allocated per request:
/// at 32 fields it is 1 KiB, the allocator's largest small size, which
/// it hands out from a free list (2 KiB cost 100 instructions more).
pub const MAX_REQUEST_HEADERS: usize = 32;
/// Header fields an upstream response may have.
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// Room for the header fields of one head.
pub type Room<'b, const N: usize> = [MaybeUninit<httparse::Header<'b>>; N];

/// Empty room for `N` header fields.
pub fn room<'b, const N: usize>() -> Room<'b, N> {
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
    fields: &'h mut Room<'b, MAX_REQUEST_HEADERS>,
) -> Parse<httparse::Request<'h, 'b>> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        // More fields than this path parses may still be within the limits.
        Err(httparse::Error::TooManyHeaders) => return Parse::Other,
        Err(_) => return Parse::Invalid,
    };
    if req.version != Some(1)
        || !req
            .path
            // A fold: no branch per byte (a target that fails is rare).
            .is_some_and(|p| {
                p.starts_with('/') && p.bytes().fold(true, |ok, b| ok & plain_target_byte(b))
            })
    {
        return Parse::Other;
    }
    // `Transfer-Encoding` stays here: intake refuses all but a lone
    // `chunked`, and this codec decodes that. So does `Expect:
    // 100-continue`: this codec answers it itself; other expectations are
    // hyper's, as are upgrades. Repeated `Content-Length` fields: hyper's
    // parser collapses equal ones and refuses others, and intake sees what
    // it left; so it reads them. One pass over the fields.
    let mut lengths = 0;
    for h in req.headers.iter() {
        // By length first, as `Known::of` reads names: most fields are
        // none of these three and cost one comparison.
        let name = h.name.as_bytes();
        let for_hyper = match name.len() {
            14 if eq_lowercase(name, b"content-length") => {
                lengths += 1;
                lengths > 1
            }
            6 if eq_lowercase(name, b"expect") => {
                !h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue")
            }
            7 => eq_lowercase(name, b"upgrade"),
            _ => false,
        };
        if for_hyper {
            return Parse::Other;
        }
    }
    Parse::Head(req, len)
}

/// Bytes a request target on this codec may hold: RFC 3986's unreserved
/// and sub-delims, `:`, `@`, `/`, `?` and `%` (escapes are judged by the
/// canonicaliser). Anything else is for hyper's parser to judge.
fn plain_target_byte(b: u8) -> bool {
    PLAIN_TARGET[usize::from(b)]
}

/// [`plain_target_byte`] as a table (every request's target is checked
/// byte by byte).
const PLAIN_TARGET: [bool; 256] = crate::canonical::byte_class(b"-._~!$&'()*+,;=:@/?%");

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

/// A response head read in place.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// The fields, as the upstream sent them.
    pub fields: &'h [httparse::Header<'b>],
    /// The status.
    pub status: StatusCode,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the upstream keeps the connection open afterwards.
    pub keep_alive: bool,
    /// The fields its framing and rewrite read, found in one walk.
    pub marks: Marks<'h>,
}

/// Parses a response head at the start of `buf`; `head_request` says the
/// request was `HEAD` (no body whatever the head says). `Ok(None)`: not
/// complete yet.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    fields: &'h mut Room<'b, MAX_RESPONSE_HEADERS>,
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
    let version = resp.version;
    let headers: &'h [httparse::Header<'b>] = &*std::mem::take(&mut resp.headers);
    let fields = Fields::Raw(headers);
    let marks = Marks::of(fields);
    let framing = framing(status, fields, &marks, head_request)?;
    let keep_alive = version == Some(1)
        && !lists(
            fields.marked(marks.connection, &header::CONNECTION),
            "close",
        )
        && framing != Framing::Close;
    Ok(Some((
        ResponseHead {
            fields: headers,
            status,
            framing,
            keep_alive,
            marks,
        },
        len,
    )))
}

/// How the body of a response is delimited (RFC 9112 §6.3), refusing what
/// two parties could read differently: the one rule for both codecs (on
/// hyper's path over the fields hyper's client parsed). `marks` are those
/// of `fields` ([`Marks::of`]).
pub fn framing<'a>(
    status: StatusCode,
    fields: Fields<'a>,
    marks: &Marks<'a>,
    head_request: bool,
) -> Result<Framing, BadResponse> {
    if head_request
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Ok(Framing::Empty);
    }
    let mut codings = fields.marked(marks.transfer_encoding, &header::TRANSFER_ENCODING);
    let mut lengths = fields.marked(marks.content_length, &header::CONTENT_LENGTH);
    if let Some(te) = codings.next() {
        let chunked = te.trim_ascii().eq_ignore_ascii_case(b"chunked");
        if !chunked || codings.next().is_some() || lengths.next().is_some() {
            return Err(BadResponse::Framing);
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for value in lengths {
        for part in value.split(|&b| b == b',') {
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

/// Appends the client's response head for `head`: the one response
/// rewrite, then the framing the body is sent with, `Connection: close`
/// unless `keep_alive`, and a `Date` if the upstream sent none.
pub fn write_response(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_, '_>,
    rid: &[u8],
    keep_alive: bool,
) {
    let fields = head.fields;
    status_line(out, head.status);
    rewrite_response(Fields::Raw(fields), &head.marks, rid, out);
    if head.framing == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !head.marks.date.present() {
        date(out, std::time::SystemTime::now());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
