//! Hop-by-hop removal and the forwarding headers (`X-Forwarded-*`,
//! RFC 7239 `Forwarded`, `Via`).
//!
//! A peer's forwarding headers are appended to only when the peer is a
//! trusted proxy; otherwise they are replaced, so a client cannot forge its
//! address or scheme towards the backend.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that belong to one connection and are never forwarded
/// (RFC 9110 §7.6.1), plus `Expect`: the proxy answers `100-continue` to its
/// own client and reads the body only when the upstream takes it.
static HOP_BY_HOP: [HeaderName; 9] = [
    HeaderName::from_static(HOP_BY_HOP_NAMES[0]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[1]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[2]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[3]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[4]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[5]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[6]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[7]),
    HeaderName::from_static(HOP_BY_HOP_NAMES[8]),
];

/// The names of [`HOP_BY_HOP`], for comparing raw bytes without a lookup.
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

/// Whether `name` is a hop-by-hop header (any case).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP_NAMES
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
}

/// Removes hop-by-hop headers, including every header named in `Connection`.
/// Returns whether `Connection` listed the `upgrade` token.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> bool {
    // One pass over the names first: most messages carry none of these, and
    // removing an absent header still costs a hash lookup per name.
    if !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return false;
    }
    let mut upgrade = false;
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(s) = value.to_str() else { continue };
        for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    upgrade
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

/// The forwarding headers one hop sends, computed from what the peer sent:
/// the same rules for hyper's path ([`apply_forwarding`]) and the
/// pass-through path, which writes them without a `HeaderMap`.
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
    let peer_text = peer.to_string();
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

/// Sets `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded`.
pub fn apply_forwarding(headers: &mut HeaderMap, hop: &Hop<'_>) {
    let v = forwarding_values(hop, |name| joined(headers, name));
    set(headers, &X_FORWARDED_FOR, v.xff);
    if let Some(proto) = v.proto {
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    match v.host {
        HostValue::Keep => {}
        HostValue::Set(h) => set(headers, &X_FORWARDED_HOST, h.to_string()),
        HostValue::Remove => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
    set(headers, &FORWARDED, v.forwarded);
}

/// Appends this proxy to `Via` (RFC 9110 §7.6.3).
pub fn append_via(headers: &mut HeaderMap, version: http::Version) {
    let ours = via_token(version);
    match joined(headers, &header::VIA) {
        Some(mut prev) => {
            prev.push_str(", ");
            prev.push_str(ours);
            set(headers, &header::VIA, prev);
        }
        None => {
            headers.insert(header::VIA, HeaderValue::from_static(ours));
        }
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

/// All values of `name` joined by ", ", if there is any readable value.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    join_values(headers.get_all(name).iter().map(HeaderValue::as_bytes))
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

fn set(headers: &mut HeaderMap, name: &HeaderName, value: String) {
    // Takes the String's buffer without copying; still validated.
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
        Ok(v) => {
            headers.insert(name.clone(), v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests;
