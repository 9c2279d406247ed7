//! Message heads on the pass-through path: parsed with `httparse` into the
//! `http` types the rest of the proxy works on (names and values are
//! slices of the read buffer, not copies), and written back as HTTP/1.1.
//!
//! Parsing is strict (httparse's defaults, as hyper uses them), and a
//! request this path does not serve (HTTP/1.0, a target that is not
//! origin-form, `Transfer-Encoding`, `Upgrade`, `Expect`, more header
//! fields than it parses) is [`Parse::Other`]: hyper serves it, from the
//! same bytes.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};

/// Header fields a request on this path may have; more go to hyper.
pub const MAX_REQUEST_HEADERS: usize = 64;
/// Header fields an upstream response may have.
const MAX_RESPONSE_HEADERS: usize = 128;

/// What a buffer holds.
#[derive(Debug)]
pub enum Parse<T> {
    /// Not a complete head yet.
    Partial,
    /// Something this path leaves to hyper (or an invalid head, which
    /// hyper answers).
    Other,
    /// A complete head, removed from the buffer; the bytes it was parsed
    /// from (to give back to hyper if this path does not serve it).
    Head(T, Bytes),
}

/// How the upstream's response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (`HEAD`, 204, 304).
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

/// Offsets of a header field in the buffer.
#[derive(Clone, Copy, Default)]
struct Field {
    name: (usize, usize),
    value: (usize, usize),
}

fn range(base: &[u8], part: &[u8]) -> (usize, usize) {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    (start, start + part.len())
}

/// Parses a request head at the start of `buf`.
pub fn parse_request(buf: &mut BytesMut) -> Parse<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut fields = [Field::default(); MAX_REQUEST_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let (len, method, target, count) = match req.parse(buf) {
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Other,
        Ok(httparse::Status::Complete(len)) => {
            let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
                return Parse::Other;
            };
            if !path.starts_with('/') {
                return Parse::Other;
            }
            for (f, h) in fields.iter_mut().zip(req.headers.iter()) {
                let name = h.name.as_bytes();
                if [header::TRANSFER_ENCODING, header::UPGRADE, header::EXPECT]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n.as_str().as_bytes()))
                {
                    return Parse::Other;
                }
                *f = Field {
                    name: range(buf, name),
                    value: range(buf, h.value),
                };
            }
            let Ok(method) = Method::from_bytes(method.as_bytes()) else {
                return Parse::Other;
            };
            (len, method, range(buf, path.as_bytes()), req.headers.len())
        }
    };
    let head = buf.split_to(len).freeze();
    let Some(headers) = header_map(&head, &fields[..count]) else {
        // Cannot happen for what httparse accepted; hyper answers it anyway.
        buf.unsplit_front(head);
        return Parse::Other;
    };
    let Ok(uri) = Uri::from_maybe_shared(head.slice(target.0..target.1)) else {
        buf.unsplit_front(head);
        return Parse::Other;
    };
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parse::Head(request, head)
}

/// Puts a consumed head back in front of the buffer (for handing the
/// request to hyper).
pub trait UnsplitFront {
    /// `head` followed by what `self` holds.
    fn unsplit_front(&mut self, head: Bytes);
}

impl UnsplitFront for BytesMut {
    fn unsplit_front(&mut self, head: Bytes) {
        let mut whole = BytesMut::with_capacity(head.len() + self.len());
        whole.extend_from_slice(&head);
        whole.extend_from_slice(self);
        *self = whole;
    }
}

fn header_map(head: &Bytes, fields: &[Field]) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(fields.len());
    for f in fields {
        let name = HeaderName::from_bytes(&head[f.name.0..f.name.1]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(f.value.0..f.value.1)).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// A parsed upstream response head: the response (without body), how its
/// body is framed, and whether the connection can carry another request.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status and headers, as the upstream sent them.
    pub response: Response<()>,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the upstream keeps the connection open afterwards.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`; `head_request` says the
/// request was `HEAD` (no body whatever the head says). `Ok(None)`: not
/// complete yet.
pub fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<Option<ResponseHead>, BadResponse> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut fields = [Field::default(); MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let (len, code, version, count) = match resp.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BadResponse::Syntax),
        Ok(httparse::Status::Complete(len)) => {
            let (Some(code), Some(version)) = (resp.code, resp.version) else {
                return Err(BadResponse::Syntax);
            };
            for (f, h) in fields.iter_mut().zip(resp.headers.iter()) {
                *f = Field {
                    name: range(buf, h.name.as_bytes()),
                    value: range(buf, h.value),
                };
            }
            (len, code, version, resp.headers.len())
        }
    };
    let head = buf.split_to(len).freeze();
    let headers = header_map(&head, &fields[..count]).ok_or(BadResponse::Syntax)?;
    let status = StatusCode::from_u16(code).map_err(|_| BadResponse::Syntax)?;
    let framing = framing(status, &headers, head_request)?;
    let close = has_token(&headers, "close");
    let keep_alive = match version {
        1 => !close,
        _ => false,
    } && framing != Framing::Close;
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(Some(ResponseHead {
        response,
        framing,
        keep_alive,
    }))
}

/// Whether `Connection` lists `token`.
pub fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// How the body of a response with `status` and `headers` is delimited
/// (RFC 9112 §6.3), refusing what two parties could read differently.
fn framing(
    status: StatusCode,
    headers: &HeaderMap,
    head_request: bool,
) -> Result<Framing, BadResponse> {
    if head_request
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Ok(Framing::Empty);
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    let lengths = headers.get_all(header::CONTENT_LENGTH);
    if let Some(te) = codings.next() {
        let chunked = te
            .to_str()
            .is_ok_and(|s| s.trim().eq_ignore_ascii_case("chunked"));
        if !chunked || codings.next().is_some() || lengths.iter().next().is_some() {
            return Err(BadResponse::Framing);
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for v in lengths {
        let s = v.to_str().map_err(|_| BadResponse::Framing)?;
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadResponse::Framing);
            }
            let n: u64 = part.parse().map_err(|_| BadResponse::Framing)?;
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

fn write_fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends an HTTP/1.1 request head for `method`, the origin-form `target`
/// and `headers`.
pub fn write_request(out: &mut Vec<u8>, method: &Method, target: &str, headers: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, headers);
}

/// Appends an HTTP/1.1 response head.
pub fn write_response(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    write_fields(out, headers);
}

#[cfg(test)]
mod tests;
