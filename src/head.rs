//! A protocol-neutral view of a request head: what the judgement reads,
//! over hyper's request parts (HTTP/1.x through hyper, HTTP/2) or over a
//! head that the pass-through codec parsed in place with httparse.
//!
//! Everything above the codecs (intake, canonicalisation, tenant, policy,
//! rendering, the rewrite plan) reads a request through [`HeadView`] and its
//! [`Fields`], so there is one judgement whichever codec read the bytes.
//! This module imports nothing of the crate but [`crate::ascii`].

use http::header::{HeaderMap, HeaderName};
use http::{Method, Version};

/// The header fields of a head, in the order they were received.
#[derive(Debug, Clone, Copy)]
pub enum Fields<'a> {
    /// Parsed by hyper.
    Map(&'a HeaderMap),
    /// Parsed in place by httparse.
    Raw(&'a [httparse::Header<'a>]),
}

impl<'a> Fields<'a> {
    /// The number of fields (a repeated name counts once per field).
    pub fn len(&self) -> usize {
        match self {
            Fields::Map(m) => m.len(),
            Fields::Raw(r) => r.len(),
        }
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every field as (name, value), in order. Names from hyper are
    /// lowercase; raw names are as the client spelled them.
    pub fn iter(&self) -> FieldIter<'a> {
        match *self {
            Fields::Map(m) => FieldIter::Map(m.iter()),
            Fields::Raw(r) => FieldIter::Raw(r.iter()),
        }
    }

    /// The values of the fields named `name` (any case), in order.
    pub fn get_all<'n>(&self, name: &'n HeaderName) -> Values<'a, 'n> {
        match *self {
            Fields::Map(m) => Values::Map(m.get_all(name).iter()),
            Fields::Raw(r) => Values::Raw(r.iter(), name.as_str()),
        }
    }

    /// The first value of `name`.
    pub fn first(&self, name: &HeaderName) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// Whether a field named `name` is present.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.first(name).is_some()
    }

    /// Whether a `Connection` field lists `token` (any case).
    pub fn connection_lists(&self, token: &str) -> bool {
        lists(self.get_all(&http::header::CONNECTION), token)
    }

    /// The values of `name`, which a walk over these fields
    /// ([`Marks::of`]) saw as `seen`: without another walk unless the name
    /// is repeated.
    pub fn marked<'n>(&self, seen: Seen<'a>, name: &'n HeaderName) -> Values<'a, 'n> {
        match seen {
            Seen::Absent => Values::One(None),
            Seen::One(v) => Values::One(Some(v)),
            Seen::Many => self.get_all(name),
        }
    }
}

/// Whether the comma-separated `values` list `token` (any case).
pub fn lists<'a>(values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How often a walk over a message's fields saw one name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Seen<'a> {
    /// Not at all.
    #[default]
    Absent,
    /// Once, with this value.
    One(&'a [u8]),
    /// More than once: [`Fields::marked`] reads them all.
    Many,
}

impl<'a> Seen<'a> {
    fn add(&mut self, value: &'a [u8]) {
        *self = match self {
            Seen::Absent => Seen::One(value),
            _ => Seen::Many,
        };
    }

    /// Whether the name was seen.
    pub fn present(&self) -> bool {
        *self != Seen::Absent
    }
}

/// The fields that a message's framing, hop-by-hop removal and `Via`
/// read, found in one walk over its fields (each lookup by name would walk
/// them again): for a response, read when it is parsed and again when it
/// is rewritten.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks<'a> {
    /// `Connection`.
    pub connection: Seen<'a>,
    /// `Transfer-Encoding`.
    pub transfer_encoding: Seen<'a>,
    /// `Content-Length`.
    pub content_length: Seen<'a>,
    /// `Via`.
    pub via: Seen<'a>,
    /// `Date`.
    pub date: Seen<'a>,
}

impl<'a> Marks<'a> {
    /// The marks of `fields`, in one walk.
    pub fn of(fields: Fields<'a>) -> Marks<'a> {
        use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING, VIA};
        let mut m = Marks::default();
        match fields {
            Fields::Raw(raw) => {
                for h in raw {
                    let name = h.name.as_bytes();
                    let is = |known: &HeaderName| {
                        crate::ascii::eq_lowercase(name, known.as_str().as_bytes())
                    };
                    let slot = match name.len() {
                        3 if is(&VIA) => &mut m.via,
                        4 if is(&DATE) => &mut m.date,
                        10 if is(&CONNECTION) => &mut m.connection,
                        14 if is(&CONTENT_LENGTH) => &mut m.content_length,
                        17 if is(&TRANSFER_ENCODING) => &mut m.transfer_encoding,
                        _ => continue,
                    };
                    slot.add(h.value);
                }
            }
            Fields::Map(map) => {
                for (slot, name) in [
                    (&mut m.connection, &CONNECTION),
                    (&mut m.transfer_encoding, &TRANSFER_ENCODING),
                    (&mut m.content_length, &CONTENT_LENGTH),
                    (&mut m.via, &VIA),
                    (&mut m.date, &DATE),
                ] {
                    for v in map.get_all(name) {
                        slot.add(v.as_bytes());
                    }
                }
            }
        }
        m
    }
}

/// A field value as text, with the rule of `HeaderValue::to_str`: visible
/// ASCII, space and tab only; anything else is not text.
pub fn text(v: &[u8]) -> Option<&str> {
    // A fold rather than `all`: no early exit, so it is vectorised (a
    // value that fails is rare).
    if v.iter().fold(true, |ok, &b| {
        ok & ((b == b'\t') | (b' '..0x7f).contains(&b))
    }) {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// Iterator over (name, value) pairs of [`Fields`].
pub enum FieldIter<'a> {
    /// Over a `HeaderMap`.
    Map(http::header::Iter<'a, http::HeaderValue>),
    /// Over httparse fields.
    Raw(std::slice::Iter<'a, httparse::Header<'a>>),
}

impl<'a> Iterator for FieldIter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            FieldIter::Map(i) => i.next().map(|(n, v)| (n.as_str(), v.as_bytes())),
            FieldIter::Raw(i) => i.next().map(|h| (h.name, h.value)),
        }
    }
}

/// Iterator over the values of one name in [`Fields`].
pub enum Values<'a, 'n> {
    /// Over a `HeaderMap`.
    Map(http::header::ValueIter<'a, http::HeaderValue>),
    /// Over httparse fields, with the name looked for.
    Raw(std::slice::Iter<'a, httparse::Header<'a>>, &'n str),
    /// The one value a walk found ([`Fields::marked`]), then none.
    One(Option<&'a [u8]>),
}

impl<'a> Iterator for Values<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Values::Map(i) => i.next().map(http::HeaderValue::as_bytes),
            // `name` is a `HeaderName`'s text: lowercase.
            Values::Raw(i, name) => i
                .find(|h| crate::ascii::eq_lowercase(h.name.as_bytes(), name.as_bytes()))
                .map(|h| h.value),
            Values::One(v) => v.take(),
        }
    }
}

/// The fields every judgement reads, found in one pass over the head
/// (a lookup by name scans the fields once per name).
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// The number of fields.
    pub count: usize,
    /// Header bytes as the limits count them: name, value and 4 per field.
    pub size: usize,
    /// The first two `Host` values.
    pub host: [Option<&'a [u8]>; 2],
    /// The first two `Content-Length` values.
    pub content_length: [Option<&'a [u8]>; 2],
    /// The first two `Transfer-Encoding` values.
    pub transfer_encoding: [Option<&'a [u8]>; 2],
    /// Whether an `Upgrade` field is present.
    pub upgrade: bool,
    /// Whether a `Connection` field is present.
    pub connection: bool,
    /// Whether an `Expect` field is present.
    pub expect: bool,
    /// The first `X-Request-Id`.
    pub request_id: Option<&'a [u8]>,
    /// The first `Accept`.
    pub accept: Option<&'a [u8]>,
    /// The first `Accept-Language`.
    pub accept_language: Option<&'a [u8]>,
    /// The first two `Authorization` values.
    pub authorization: [Option<&'a [u8]>; 2],
    /// The first `User-Agent`.
    pub user_agent: Option<&'a [u8]>,
    /// The first `MS-RequestId`.
    pub ms_request_id: Option<&'a [u8]>,
    /// The first `MS-CorrelationId`.
    pub ms_correlation_id: Option<&'a [u8]>,
}

impl<'a> Known<'a> {
    /// Reads `fields` once.
    pub fn of(fields: Fields<'a>) -> Known<'a> {
        // One loop per kind of fields: a `FieldIter` would choose the kind
        // again for every field.
        match fields {
            Fields::Map(m) => Known::of_pairs(m.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
            Fields::Raw(r) => Known::of_pairs(r.iter().map(|h| (h.name, h.value))),
        }
    }

    fn of_pairs(fields: impl Iterator<Item = (&'a str, &'a [u8])>) -> Known<'a> {
        fn first<'a>(slot: &mut Option<&'a [u8]>, v: &'a [u8]) {
            slot.get_or_insert(v);
        }
        fn two<'a>(slots: &mut [Option<&'a [u8]>; 2], v: &'a [u8]) {
            match slots {
                [None, _] => slots[0] = Some(v),
                [Some(_), None] => slots[1] = Some(v),
                _ => {}
            }
        }
        let mut k = Known::default();
        for (name, value) in fields {
            k.count += 1;
            k.size += name.len() + value.len() + 4;
            let is = |known: &str| crate::ascii::eq_lowercase(name.as_bytes(), known.as_bytes());
            match name.len() {
                4 if is("host") => two(&mut k.host, value),
                6 if is("accept") => first(&mut k.accept, value),
                6 if is("expect") => k.expect = true,
                7 if is("upgrade") => k.upgrade = true,
                10 if is("connection") => k.connection = true,
                10 if is("user-agent") => first(&mut k.user_agent, value),
                12 if is("x-request-id") => first(&mut k.request_id, value),
                12 if is("ms-requestid") => first(&mut k.ms_request_id, value),
                13 if is("authorization") => two(&mut k.authorization, value),
                14 if is("content-length") => two(&mut k.content_length, value),
                15 if is("accept-language") => first(&mut k.accept_language, value),
                16 if is("ms-correlationid") => first(&mut k.ms_correlation_id, value),
                17 if is("transfer-encoding") => two(&mut k.transfer_encoding, value),
                _ => {}
            }
        }
        k
    }
}

/// A request head as the judgement reads it.
#[derive(Debug, Clone, Copy)]
pub struct HeadView<'a> {
    /// The method.
    pub method: &'a Method,
    /// The protocol version the client spoke.
    pub version: Version,
    /// The path of the request target as sent (not yet canonical).
    pub path: &'a str,
    /// The query, as sent.
    pub query: Option<&'a str>,
    /// The authority of an absolute-form target or HTTP/2 `:authority`.
    pub authority: Option<&'a str>,
    /// The scheme of an absolute-form target or HTTP/2 `:scheme`.
    pub scheme: Option<&'a str>,
    /// The path and query as received, as the decision record keeps them.
    pub target: &'a str,
    /// The length of the request target, as the URI limit counts it.
    pub target_len: usize,
    /// The header fields.
    pub fields: Fields<'a>,
    /// The fields every judgement reads.
    pub known: Known<'a>,
    /// Whether every byte of the target is one the pass-through codec
    /// accepts plain (letters, digits, `-._~!$&'()*+,;=:@/?%`): its parse
    /// checked them, so the canonical check need not look at each again.
    pub plain_target: bool,
}

impl<'a> HeadView<'a> {
    /// The view of a head hyper parsed.
    pub fn of_parts(parts: &'a http::request::Parts) -> HeadView<'a> {
        let uri = &parts.uri;
        HeadView {
            method: &parts.method,
            version: parts.version,
            path: uri.path(),
            query: uri.query(),
            authority: uri.authority().map(http::uri::Authority::as_str),
            scheme: uri.scheme_str(),
            target: uri.path_and_query().map_or("/", |p| p.as_str()),
            target_len: uri.path_and_query().map_or(1, |p| p.as_str().len())
                + uri.authority().map_or(0, |a| a.as_str().len()),
            fields: Fields::Map(&parts.headers),
            known: Known::of(Fields::Map(&parts.headers)),
            plain_target: false,
        }
    }

    /// The view of an HTTP/1.1 origin-form head read in place, as the
    /// pass-through codec's parse accepted it (`target` holds only plain
    /// bytes: see [`HeadView::plain_target`]).
    pub fn of_raw(
        method: &'a Method,
        target: &'a str,
        fields: &'a [httparse::Header<'a>],
    ) -> HeadView<'a> {
        // `memchr`: the standard library's `split_once('?')` costs a
        // hundred and fifty instructions on a typical target.
        let (path, query) = match memchr::memchr(b'?', target.as_bytes()) {
            Some(at) => (&target[..at], Some(&target[at + 1..])),
            None => (target, None),
        };
        HeadView {
            method,
            version: Version::HTTP_11,
            path,
            query,
            authority: None,
            scheme: None,
            target,
            target_len: target.len(),
            fields: Fields::Raw(fields),
            known: Known::of(Fields::Raw(fields)),
            plain_target: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    #[test]
    fn both_kinds_of_fields_read_the_same() {
        let raw = [
            httparse::Header {
                name: "Host",
                value: b"portal",
            },
            httparse::Header {
                name: "X-Tenant",
                value: b"a",
            },
            httparse::Header {
                name: "x-tenant",
                value: b"b",
            },
            httparse::Header {
                name: "Connection",
                value: b"keep-alive, Upgrade",
            },
        ];
        let mut map = HeaderMap::new();
        for h in &raw {
            map.append(
                HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        let tenant = HeaderName::from_static("x-tenant");
        for f in [Fields::Raw(&raw), Fields::Map(&map)] {
            assert_eq!(f.len(), 4);
            assert_eq!(f.get_all(&tenant).collect::<Vec<_>>(), [b"a", b"b"]);
            assert_eq!(f.first(&header::HOST).and_then(text), Some("portal"));
            assert!(f.connection_lists("upgrade"));
            assert!(!f.connection_lists("close"));
            let k = Known::of(f);
            assert_eq!(k.size, 4 + 6 + 4 + 8 + 1 + 4 + 8 + 1 + 4 + 10 + 19 + 4);
            assert_eq!(k.count, f.len());
            assert_eq!(k.host, [Some(&b"portal"[..]), None]);
            assert!(k.connection && !k.upgrade);
        }
    }

    /// What `Known` notes of a field agrees with a walk over the fields.
    #[test]
    fn known_fields_agree_with_a_walk() {
        for name in ["Expect", "EXPECT", "expect", "Accept", "Expects"] {
            let raw = [httparse::Header {
                name,
                value: b"100-continue",
            }];
            let f = Fields::Raw(&raw);
            assert_eq!(Known::of(f).expect, f.contains(&header::EXPECT), "{name}");
        }
    }

    #[test]
    fn text_is_what_header_value_to_str_accepts() {
        for v in [
            &b"plain"[..],
            b"tab\there",
            b"caf\xc3\xa9",
            b"nul\x00",
            b"del\x7f",
        ] {
            let by_http = http::HeaderValue::from_bytes(v)
                .ok()
                .and_then(|h| h.to_str().ok().map(str::to_owned));
            assert_eq!(text(v).map(str::to_owned), by_http, "{v:?}");
        }
    }

    proptest::proptest! {
        /// What a walk marks reads as every lookup by name would, for
        /// both kinds of fields: absent, once, repeated, in any case, next
        /// to names of the same length.
        #[test]
        fn marked_values_are_the_values_of_a_lookup(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "Connection", "connection", "CONNECTION", "connectio_", "Via", "vIa",
                        "vib", "Date", "date", "dat3", "Content-Length", "content-lengtH",
                        "Content-Lengtx", "Transfer-Encoding", "transfer-encodinG",
                        "transfer-encodinh", "X-Other",
                    ]),
                    "[a-z0-9 ,]{0,8}",
                ),
                0..8,
            )
        ) {
            let raw: Vec<httparse::Header<'_>> = fields
                .iter()
                .map(|(n, v)| httparse::Header { name: n, value: v.as_bytes() })
                .collect();
            let mut map = HeaderMap::new();
            for (n, v) in &fields {
                map.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                );
            }
            for f in [Fields::Raw(&raw), Fields::Map(&map)] {
                let m = Marks::of(f);
                for (seen, name) in [
                    (m.connection, header::CONNECTION),
                    (m.transfer_encoding, header::TRANSFER_ENCODING),
                    (m.content_length, header::CONTENT_LENGTH),
                    (m.via, header::VIA),
                    (m.date, header::DATE),
                ] {
                    let want: Vec<&[u8]> = f.get_all(&name).collect();
                    proptest::prop_assert_eq!(f.marked(seen, &name).collect::<Vec<_>>(), want.clone());
                    proptest::prop_assert_eq!(seen.present(), !want.is_empty());
                }
            }
        }
    }
}
