//! The one request-path normaliser, used both for matching and for
//! forwarding, so the backend receives exactly the path the proxy judged.
//!
//! [`canonical_path`] turns a request path into one canonical spelling, or
//! rejects it when no unambiguous spelling exists:
//!
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded;
//!   every other escape keeps its byte and is written with uppercase hex;
//! - raw characters a path may not carry (`"`, `<`, `>`, `^`, `` ` ``, `{`,
//!   `|`, `}` and non-ASCII UTF-8) are percent-encoded;
//! - dot segments are resolved after decoding (so `%2e%2e` is `..`), never
//!   above the root; repeated slashes are merged;
//! - rejected: an encoded `/`, `\`, `?`, `#`, `;` or `%` (double encoding),
//!   NUL and other control characters raw or encoded, a raw `\`, `;`, `?` or `#`,
//!   malformed escapes, and escapes that do not decode to valid UTF-8
//!   (which rules out overlong encodings).
//!
//! Why `;` is rejected rather than stripped: some backends (Java servlet
//! containers) treat `;...` as path parameters and ignore them when routing,
//! others (ASP.NET, which Partner Center runs on) treat `;` as part of the
//! segment. A proxy that guessed either way could judge a path the backend
//! routes differently. Partner Center paths never contain `;`, so rejecting
//! costs nothing and fails closed.
//!
//! This module is pure: no I/O and nothing of the rest of the crate. It is
//! covered by unit tests, property tests (idempotence; no dot segment or
//! encoded separator survives) and a cargo-fuzz target (`fuzz/`).

use std::borrow::Cow;
use std::fmt;

/// Why a path has no unambiguous canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    /// The path does not start with `/`.
    #[error("the path does not start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("a malformed percent-escape")]
    MalformedEscape,
    /// An encoded `/`, `\`, `?`, `#` or `;`.
    #[error("an encoded path separator or delimiter ({0})")]
    EncodedSeparator(&'static str),
    /// `%25`: an encoded `%`, i.e. double encoding.
    #[error("double percent-encoding (%25)")]
    DoubleEncoding,
    /// A control character or NUL, raw or encoded.
    #[error("a control character")]
    ControlCharacter,
    /// A raw `\`.
    #[error("a backslash")]
    Backslash,
    /// A raw `?` or `#`: a parsed path never holds one, so the input was
    /// split wrongly somewhere before.
    #[error("a raw query or fragment delimiter in the path")]
    Delimiter,
    /// A raw `;` (path parameters).
    #[error("a ';' (path parameters are not accepted)")]
    Semicolon,
    /// A segment that a lenient server reads as nothing or as a dot
    /// segment once trailing dots and invisible characters are dropped.
    #[error("a segment that folds to nothing or to a dot segment")]
    FoldsAway,
    /// An empty first segment (`//host/...`, also after `..`): a reader
    /// that resolves it as a URI reference takes it for a host.
    #[error("a leading '//' (a network-path reference)")]
    NetworkPath,
    /// Escapes that do not decode to valid UTF-8 (including overlong forms).
    #[error("percent-escapes that are not valid UTF-8")]
    InvalidUtf8,
}

/// A canonical path: starts with `/`, no dot segments, no empty segments
/// (except a trailing `/`), only the escapes that must stay escaped.
/// Borrows the input when it was canonical already (the common case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalPath<'a>(Cow<'a, str>);

impl CanonicalPath<'_> {
    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the canonical form is the input unchanged.
    pub fn is_unchanged(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }

    /// The segments between slashes (a trailing `/` yields no empty segment).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }
}

impl fmt::Display for CanonicalPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters that may stand raw in a canonical path segment besides the
/// unreserved ones (RFC 3986 `pchar`: sub-delims, `:` and `@`; `;` excluded).
fn is_raw_ok(b: u8) -> bool {
    RAW_OK[usize::from(b)]
}

/// [`is_raw_ok`] as a table: every request's path is checked byte by byte.
static RAW_OK: [bool; 256] = byte_class(b"-._~!$&'()*+,=:@");

/// A table of the bytes that are ASCII letters, digits or `listed`: a
/// byte class checked with one lookup (request paths and targets are
/// checked byte by byte).
pub(crate) const fn byte_class(listed: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < listed.len() {
        table[listed[i] as usize] = true;
        i += 1;
    }
    table
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut Vec<u8>, b: u8) {
    out.push(b'%');
    out.push(UPPER_HEX[(b >> 4) as usize]);
    out.push(UPPER_HEX[(b & 0xf) as usize]);
}

/// One segment, decoded where allowed and re-encoded canonically.
/// `decoded` collects the segment's bytes as the backend would decode them,
/// to check UTF-8 and recognise dot segments.
fn segment(raw: &[u8], out: &mut Vec<u8>, decoded: &mut Vec<u8>) -> Result<(), PathRejection> {
    decoded.clear();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    raw.get(i + 1).copied().and_then(hex),
                    raw.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathRejection::MalformedEscape);
                };
                let v = hi << 4 | lo;
                match v {
                    b'/' => return Err(PathRejection::EncodedSeparator("%2F")),
                    b'\\' => return Err(PathRejection::EncodedSeparator("%5C")),
                    b'?' => return Err(PathRejection::EncodedSeparator("%3F")),
                    b'#' => return Err(PathRejection::EncodedSeparator("%23")),
                    b';' => return Err(PathRejection::EncodedSeparator("%3B")),
                    b'%' => return Err(PathRejection::DoubleEncoding),
                    0x00..=0x1f | 0x7f => return Err(PathRejection::ControlCharacter),
                    _ => {}
                }
                decoded.push(v);
                if is_unreserved(v) {
                    out.push(v);
                } else {
                    push_escaped(out, v);
                }
                i += 3;
            }
            0x00..=0x1f | 0x7f => return Err(PathRejection::ControlCharacter),
            b'\\' => return Err(PathRejection::Backslash),
            b';' => return Err(PathRejection::Semicolon),
            b'?' | b'#' => return Err(PathRejection::Delimiter),
            _ => {
                decoded.push(b);
                if is_raw_ok(b) {
                    out.push(b);
                } else {
                    push_escaped(out, b);
                }
                i += 1;
            }
        }
    }
    if std::str::from_utf8(decoded).is_err() {
        return Err(PathRejection::InvalidUtf8);
    }
    Ok(())
}

/// Whether `bytes` (starting with `/`) is canonical as it stands: only
/// characters that stay raw, no escape, no empty segment but a trailing one,
/// no dot segment. No allocation. A path without a dot (most API paths)
/// is read in one branch-free pass; one with a dot goes through
/// [`canonical_with_dots`].
fn already_canonical(bytes: &[u8]) -> bool {
    let rest = bytes.get(1..).unwrap_or_default();
    if memchr::memchr(b'.', rest).is_some() {
        return canonical_with_dots(bytes);
    }
    // Every byte stays raw (a fold: no branch per byte), and no slash
    // follows a slash (an empty segment).
    rest.iter()
        .fold(true, |ok, &b| ok & PATH_RAW[usize::from(b)])
        && !double_slash(bytes)
}

/// Whether `bytes` holds two slashes in a row, read eight bytes at a time.
fn double_slash(bytes: &[u8]) -> bool {
    use crate::ascii::{matches, word};
    let mut words = bytes.chunks_exact(8);
    // Bit 7 set when the word before ended in a slash.
    let mut carry = 0u64;
    for w in words.by_ref() {
        let slash = matches(word(w), b'/');
        // Little-endian: the next byte's bit is eight higher.
        if slash & (slash >> 8) != 0 || carry & slash & 0x80 != 0 {
            return true;
        }
        carry = slash >> 56;
    }
    let mut prev = carry != 0;
    for &b in words.remainder() {
        let s = b == b'/';
        if prev && s {
            return true;
        }
        prev = s;
    }
    false
}

/// The bytes a canonical path holds raw, the slash included.
static PATH_RAW: [bool; 256] = byte_class(b"-._~!$&'()*+,=:@/");

/// [`already_canonical`] for a path with a dot: each byte's class from a
/// table, and at each slash (and at the end) a look at the segment it
/// closes.
fn canonical_with_dots(bytes: &[u8]) -> bool {
    // The segment being read: its length, and whether it is all dots.
    let mut len = 0usize;
    let mut dots = true;
    // A segment that is `.` or `..`.
    let dot_segment = |len: usize, dots: bool| dots && (1..=2).contains(&len);
    for &b in bytes.get(1..).unwrap_or_default() {
        match PATH_CLASS[usize::from(b)] {
            Class::Slash => {
                if len == 0 || dot_segment(len, dots) {
                    return false;
                }
                len = 0;
                dots = true;
            }
            Class::Dot => len += 1,
            Class::Other => {
                len += 1;
                dots = false;
            }
            Class::Escaped => return false,
        }
    }
    !dot_segment(len, dots)
}

/// What a byte is to [`already_canonical`].
#[derive(Clone, Copy)]
enum Class {
    Slash,
    Dot,
    /// Any other byte a canonical path holds raw ([`RAW_OK`]).
    Other,
    /// A byte a canonical path holds escaped (and `%` itself).
    Escaped,
}

static PATH_CLASS: [Class; 256] = {
    let mut t = [Class::Escaped; 256];
    let mut b = 0;
    while b < 256 {
        if RAW_OK[b] {
            t[b] = Class::Other;
        }
        b += 1;
    }
    t[b'/' as usize] = Class::Slash;
    t[b'.' as usize] = Class::Dot;
    t
};

/// The canonical form of the path part of a request target (no query).
pub fn canonical_path(raw: &str) -> Result<CanonicalPath<'_>, PathRejection> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathRejection::NotAbsolute);
    }
    if already_canonical(bytes) {
        return Ok(CanonicalPath(Cow::Borrowed(raw)));
    }
    canonicalise(raw)
}

/// [`canonical_path`] of a path whose every byte a request target holds
/// plain on the pass-through codec (letters, digits, `-._~!$&'()*+,;=:@/%`,
/// which its parse checked): of those, only `%`, `;`, dots and empty
/// segments can make a path other than canonical, so one search for the
/// three bytes and one for a double slash replace the look at each byte.
pub fn canonical_plain_path(raw: &str) -> Result<CanonicalPath<'_>, PathRejection> {
    let bytes = raw.as_bytes();
    debug_assert!(bytes.iter().all(|&b| PLAIN_PATH[usize::from(b)]), "{raw:?}");
    if bytes.first() == Some(&b'/')
        && memchr::memchr3(b'%', b';', b'.', bytes).is_none()
        && !double_slash(bytes)
    {
        return Ok(CanonicalPath(Cow::Borrowed(raw)));
    }
    canonical_path(raw)
}

/// The bytes [`canonical_plain_path`] may be given.
static PLAIN_PATH: [bool; 256] = byte_class(b"-._~!$&'()*+,;=:@/%");

/// [`canonical_path`] the long way, segment by segment (`raw` starts
/// with `/`).
fn canonicalise(raw: &str) -> Result<CanonicalPath<'_>, PathRejection> {
    let bytes = raw.as_bytes();
    // Output segments as byte ranges into `out`; a stack resolves `..`.
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut decoded = Vec::new();
    let mut scratch = Vec::new();
    let parts: Vec<&[u8]> = bytes[1..].split(|&b| b == b'/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (idx, part) in parts.iter().enumerate() {
        scratch.clear();
        segment(part, &mut scratch, &mut decoded)?;
        match decoded.as_slice() {
            b"" => {
                if idx != last && stack.is_empty() {
                    return Err(PathRejection::NetworkPath);
                }
                // Merged slashes; an empty last part means a trailing slash.
                if idx == last && idx > 0 {
                    trailing_slash = true;
                }
            }
            b"." => trailing_slash = idx == last,
            b".." => {
                stack.pop();
                trailing_slash = idx == last;
            }
            _ => {
                let start = out.len();
                out.extend_from_slice(&scratch);
                stack.push((start, out.len()));
                trailing_slash = false;
            }
        }
    }
    let mut path = String::with_capacity(out.len() + stack.len() + 1);
    for (s, e) in &stack {
        path.push('/');
        // Every byte written to `out` is ASCII: escapes and raw-ok characters.
        path.push_str(std::str::from_utf8(&out[*s..*e]).map_err(|_| PathRejection::InvalidUtf8)?);
    }
    if path.is_empty() || trailing_slash {
        path.push('/');
    }
    if path == raw {
        return Ok(CanonicalPath(Cow::Borrowed(raw)));
    }
    Ok(CanonicalPath(Cow::Owned(path)))
}

/// The canonical form of a host: lowercase, without port and trailing dot
/// (borrowed when that is what was sent).
pub fn canonical_host(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    let end = if b.first() == Some(&b'[') {
        // IPv6 literal: keep the brackets, drop the port.
        match memchr::memchr(b']', b) {
            Some(close) => close + 1,
            None => b.len(),
        }
    } else {
        // A port: the digits after the last colon (read from the end, one
        // pass over the port only).
        let digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
        match b.len().checked_sub(digits + 1) {
            Some(colon) if b[colon] == b':' => colon,
            _ => b.len(),
        }
    };
    let end = b[..end]
        .iter()
        .rposition(|&c| c != b'.')
        .map_or(0, |last| last + 1);
    // Every cut is next to an ASCII byte: a character boundary.
    let host = raw.get(..end).unwrap_or(raw);
    // A fold, not `any`: no branch per byte (an uppercase host is rare).
    if host
        .bytes()
        .fold(false, |upper, c| upper | c.is_ascii_uppercase())
    {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Decodes `%XX` escapes (tenant ids, folded segments, query names and
/// values); `None` for a malformed escape or a non-UTF-8 result.
pub fn percent_decode(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(std::borrow::Cow::Borrowed(raw));
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

mod fold;
pub use fold::fold;

#[cfg(test)]
mod tests;
