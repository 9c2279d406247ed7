//! The one rewrite of message heads between client and upstream: hop-by-hop
//! removal, the forwarding headers (`X-Forwarded-*`, RFC 7239 `Forwarded`),
//! `Via` and `X-Request-Id`. Both codecs use it: [`rewrite_request`] and
//! [`rewrite_response`] read [`Fields`] and write to a [`Sink`], which is
//! bytes on the wire for the pass-through codec and a `HeaderMap` for hyper.
//!
//! A peer's forwarding headers are appended to only when the peer is a
//! trusted proxy; otherwise they are replaced, so a client cannot forge its
//! address or scheme towards the backend.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::head::{Fields, Marks};

/// Headers that belong to one connection and are never forwarded
/// (RFC 9110 §7.6.1), plus `Expect`: the proxy answers `100-continue` to its
/// own client and reads the body only when the upstream takes it.
const HOP_BY_HOP_NAMES: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// `X-Forwarded-For`
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `Forwarded` (RFC 7239)
pub static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// `X-Request-Id`
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether `name` is a hop-by-hop header (any case).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    of_length(HOP_BY_HOP_LENGTHS, name.len())
        && HOP_BY_HOP_NAMES
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// The lengths of `names` as a bit set (names up to 63 bytes): a field
/// whose length is not in it is none of them, without a comparison (every
/// field of every forwarded head is looked up in these lists).
const fn lengths(names: &[&str]) -> u64 {
    let mut set = 0;
    let mut i = 0;
    while i < names.len() {
        set |= 1 << names[i].len();
        i += 1;
    }
    set
}

/// Whether `len` is in the bit set `lengths` made.
fn of_length(set: u64, len: usize) -> bool {
    len < 64 && set & (1 << len) != 0
}

const HOP_BY_HOP_LENGTHS: u64 = lengths(&HOP_BY_HOP_NAMES);

/// Which fields of a message are hop-by-hop: the fixed set, and those its
/// `Connection` fields name, read once per message (every other field is
/// checked against them).
pub struct Hops<'a> {
    fields: Fields<'a>,
    listed: Listed<'a>,
}

/// The tokens of a message's `Connection` fields.
enum Listed<'a> {
    /// Up to [`FEW_TOKENS`], trimmed (empty ones left out).
    Few([&'a [u8]; FEW_TOKENS], usize),
    /// More: looked up in the fields each time.
    Many,
}

/// `Connection` tokens held for the lookups (one or two is usual:
/// `keep-alive`, `close`, `upgrade`).
const FEW_TOKENS: usize = 8;

impl<'a> Hops<'a> {
    /// The hop-by-hop fields of `fields`, whose walk found `marks`.
    pub fn of(fields: Fields<'a>, marks: &Marks<'a>) -> Self {
        let mut few: [&[u8]; FEW_TOKENS] = [&[]; FEW_TOKENS];
        let mut n = 0;
        let tokens = fields
            .marked(marks.connection, &header::CONNECTION)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty());
        for t in tokens {
            let Some(slot) = few.get_mut(n) else {
                return Hops {
                    fields,
                    listed: Listed::Many,
                };
            };
            *slot = t;
            n += 1;
        }
        Hops {
            fields,
            listed: Listed::Few(few, n),
        }
    }

    /// Whether the field named `name` is one of them. `Content-Length` never
    /// is, whatever `Connection` says: it frames the body that follows, and
    /// dropping it would let the next hop read the body as a new message.
    pub fn contains(&self, name: &str) -> bool {
        if is_hop_by_hop(name.as_bytes()) {
            return true;
        }
        let listed = match &self.listed {
            Listed::Few(_, 0) => return false,
            Listed::Few(few, n) => few
                .get(..*n)
                .unwrap_or_default()
                .iter()
                .any(|t| t.eq_ignore_ascii_case(name.as_bytes())),
            Listed::Many => self.fields.connection_lists(name),
        };
        listed && !name.eq_ignore_ascii_case("content-length")
    }
}

/// Where a rewritten head's fields go: bytes on the wire or a `HeaderMap`.
pub trait Sink {
    /// Adds one field.
    fn field(&mut self, name: &str, value: &[u8]);
}

/// HTTP/1.1 field lines.
impl Sink for Vec<u8> {
    fn field(&mut self, name: &str, value: &[u8]) {
        self.extend_from_slice(name.as_bytes());
        self.extend_from_slice(b": ");
        self.extend_from_slice(value);
        self.extend_from_slice(b"\r\n");
    }
}

/// A header map; a name or value it cannot hold is left out (hyper's
/// parser let neither in).
impl Sink for HeaderMap {
    fn field(&mut self, name: &str, value: &[u8]) {
        if let (Ok(n), Ok(mut v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            // A request id is new on every message: never worth a place in
            // HTTP/2's header table.
            if n == X_REQUEST_ID {
                v.set_sensitive(true);
            }
            self.append(n, v);
        }
    }
}

/// How a request head is rewritten towards the upstream.
#[derive(Debug, Clone, Copy)]
pub struct RequestRewrite<'a> {
    /// The `Host` sent.
    pub host: &'a str,
    /// The hop the request arrived on.
    pub hop: Hop<'a>,
    /// This proxy's `Via` token, by the client's protocol version.
    pub via: &'static str,
    /// The request id sent as `X-Request-Id`.
    pub request_id: &'a [u8],
    /// The protocol of a WebSocket-style upgrade, kept with
    /// `Connection: upgrade`.
    pub upgrade: Option<&'a [u8]>,
}

/// Fields a client must not send the backend: method overrides (an
/// ASP.NET backend with `UseHttpMethodOverride` would act on a method that
/// was never judged) and IIS's routing overrides (`X-Original-URL` and
/// `X-Rewrite-URL` replace the path that was judged).
const STRIPPED: [&str; 5] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-url",
    "x-rewrite-url",
];

/// Whether a client's field is dropped before forwarding: the overrides
/// above, and every name with an underscore (as nginx does by default):
/// CGI-style servers (IIS, ASP.NET on it) read `X_Tenant_Id` as
/// `X-Tenant-Id`, a spelling the policy would not have judged.
fn stripped(name: &str) -> bool {
    name.contains('_')
        || (name.len() >= 13
            && name.as_bytes()[0] | 0x20 == b'x'
            && STRIPPED.iter().any(|s| name.eq_ignore_ascii_case(s)))
}

/// Fields the request rewrite sets itself.
const REWRITTEN: [&str; 7] = [
    "host",
    "via",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

const REWRITTEN_LENGTHS: u64 = lengths(&REWRITTEN);

/// The one request rewrite, for both codecs: the client's fields less
/// hop-by-hop ones (and those `Connection` names) and less the ones set
/// here, then `Host`, the forwarding headers ([`forwarding_values`]),
/// `Via`, `X-Request-Id`, and the upgrade if there is one.
pub fn rewrite_request(fields: Fields<'_>, rw: &RequestRewrite<'_>, sink: &mut impl Sink) {
    let values = forwarding_values(&rw.hop, |name| join_values(fields.get_all(name)));
    // A trusted peer's X-Forwarded-Proto/-Host stay as they were sent.
    let keep_proto = values.proto.is_none();
    let keep_host = values.host == HostValue::Keep;
    let marks = Marks::of(fields);
    let hops = Hops::of(fields, &marks);
    for (name, value) in fields.iter() {
        let rewritten = of_length(REWRITTEN_LENGTHS, name.len())
            && REWRITTEN.iter().any(|r| name.eq_ignore_ascii_case(r));
        let kept = (keep_proto && name.eq_ignore_ascii_case("x-forwarded-proto"))
            || (keep_host && name.eq_ignore_ascii_case("x-forwarded-host"));
        if hops.contains(name) || (rewritten && !kept) || stripped(name) {
            continue;
        }
        sink.field(name, value);
    }
    sink.field("host", rw.host.as_bytes());
    sink.field("x-forwarded-for", values.xff.as_bytes());
    if let Some(proto) = values.proto {
        sink.field("x-forwarded-proto", proto.as_bytes());
    }
    if let HostValue::Set(h) = values.host {
        sink.field("x-forwarded-host", h.as_bytes());
    }
    sink.field("forwarded", values.forwarded.as_bytes());
    via_and_request_id(fields, &marks, rw.via, rw.request_id, sink);
    if let Some(protocol) = rw.upgrade {
        sink.field("upgrade", protocol);
        sink.field("connection", b"upgrade");
    }
}

/// The one response rewrite, for both codecs: the upstream's fields less
/// hop-by-hop ones (and those `Connection` names), `Via` extended,
/// `X-Request-Id` set. Framing fields are the codec's to add. `marks` are
/// those of `fields` ([`Marks::of`]).
pub fn rewrite_response<'a>(
    fields: Fields<'a>,
    marks: &Marks<'a>,
    request_id: &[u8],
    sink: &mut impl Sink,
) {
    let hops = Hops::of(fields, marks);
    for (name, value) in fields.iter() {
        if hops.contains(name)
            || name.eq_ignore_ascii_case("via")
            || name.eq_ignore_ascii_case("x-request-id")
        {
            continue;
        }
        sink.field(name, value);
    }
    let ours = via_token(http::Version::HTTP_11);
    via_and_request_id(fields, marks, ours, request_id, sink);
}

/// The head of a `101 Switching Protocols` answer: every field stays (the
/// client needs the upgrade's own `Connection` and `Upgrade`), `Via`
/// extended, `X-Request-Id` set.
pub fn rewrite_switch(fields: Fields<'_>, request_id: &[u8], sink: &mut impl Sink) {
    for (name, value) in fields.iter() {
        if !(name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("x-request-id")) {
            sink.field(name, value);
        }
    }
    let ours = via_token(http::Version::HTTP_11);
    via_and_request_id(fields, &Marks::of(fields), ours, request_id, sink);
}

/// `Via` (the peer's entries, then `ours`, one field) and `X-Request-Id`.
fn via_and_request_id<'a>(
    fields: Fields<'a>,
    marks: &Marks<'a>,
    ours: &str,
    request_id: &[u8],
    sink: &mut impl Sink,
) {
    match join_values(fields.marked(marks.via, &header::VIA)) {
        Some(mut via) => {
            via.push_str(", ");
            via.push_str(ours);
            sink.field("via", via.as_bytes());
        }
        None => sink.field("via", ours.as_bytes()),
    }
    sink.field("x-request-id", request_id);
}

/// What the proxy knows about the hop it received a request on.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is a trusted proxy.
    pub trusted: bool,
    /// `http` or `https`, as the client reached the proxy.
    pub proto: &'static str,
    /// The host the client asked for, if any.
    pub host: Option<&'a str>,
}

/// What one hop sets of `X-Forwarded-Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostValue<'a> {
    /// Keep what the (trusted) peer sent.
    Keep,
    /// Set this value.
    Set(&'a str),
    /// Send none.
    Remove,
}

/// The forwarding headers one hop sends, computed from what the peer sent
/// (used by [`rewrite_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingValues<'a> {
    /// `X-Forwarded-For`.
    pub xff: String,
    /// `X-Forwarded-Proto`: `None` keeps what the trusted peer sent.
    pub proto: Option<&'static str>,
    /// `X-Forwarded-Host`.
    pub host: HostValue<'a>,
    /// `Forwarded`.
    pub forwarded: String,
}

/// Computes the forwarding headers for `hop`. `joined(name)` gives the
/// peer's values of `name` joined by ", " (see [`join_values`]); it is
/// asked only when the peer is trusted.
pub fn forwarding_values<'a>(
    hop: &Hop<'a>,
    joined: impl Fn(&HeaderName) -> Option<String>,
) -> ForwardingValues<'a> {
    let peer = strip_mapped(hop.peer);
    let peer_text = ip_text(peer);
    let prior = |name: &HeaderName| if hop.trusted { joined(name) } else { None };
    let proto = match prior(&X_FORWARDED_PROTO) {
        Some(_) => None,
        None => Some(hop.proto),
    };
    let host = match (prior(&X_FORWARDED_HOST), hop.host) {
        (Some(_), _) => HostValue::Keep,
        (None, Some(h)) => HostValue::Set(h),
        (None, None) => HostValue::Remove,
    };
    // RFC 7239: IPv6 nodes are bracketed and quoted; a host with a port is
    // not a token, so it is always quoted.
    let mut element = String::with_capacity(64);
    match peer {
        IpAddr::V4(_) => {
            element.push_str("for=");
            element.push_str(&peer_text);
        }
        IpAddr::V6(_) => {
            element.push_str("for=\"[");
            element.push_str(&peer_text);
            element.push_str("]\"");
        }
    }
    if let Some(h) = hop.host {
        if h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            element.push_str(";host=\"");
            element.push_str(h);
            element.push('"');
        }
    }
    element.push_str(";proto=");
    element.push_str(hop.proto);
    ForwardingValues {
        xff: appended(prior(&X_FORWARDED_FOR), peer_text),
        proto,
        host,
        forwarded: appended(prior(&FORWARDED), element),
    }
}

/// An address as text, as `Display` writes it; IPv4 (the common case)
/// without the formatting machinery, which costs a forwarded request more
/// than the rest of its `X-Forwarded-For`.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

/// `ours` after the previous hops' entries, if any.
fn appended(previous: Option<String>, ours: String) -> String {
    match previous {
        Some(mut list) => {
            list.push_str(", ");
            list.push_str(&ours);
            list
        }
        None => ours,
    }
}

/// This proxy's `Via` entry for a message received with `version`.
pub fn via_token(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "1.0 portalgate",
        http::Version::HTTP_2 => "2 portalgate",
        _ => "1.1 portalgate",
    }
}

fn strip_mapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Values joined by ", ": each trimmed, empty ones and ones that are not
/// visible ASCII (what `HeaderValue::to_str` refuses) left out; `None` when
/// nothing is left.
pub fn join_values<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut out = String::new();
    for v in values {
        if !v.iter().all(|&b| b == b'\t' || (b' '..0x7f).contains(&b)) {
            continue;
        }
        let Ok(s) = std::str::from_utf8(v) else {
            continue;
        };
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(s);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests;
