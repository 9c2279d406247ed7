//! A response the proxy gives itself (a policy answer or an error page), as
//! one protocol-neutral value: written as HTTP/1.1 bytes by the
//! pass-through codec, or turned into a hyper response for hyper's.
//!
//! Field values borrow from the compiled answers where they can, and a
//! compiled body is filled as it is written ([`Body::Holes`]), so the fast
//! path copies both straight into its output buffer.

pub mod template;
mod to_hyper;

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;

use super::request_id::Id;
use template::{Template, Values};

/// A complete local response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The status.
    pub status: StatusCode,
    /// Fields every answer of its kind sends, compiled once; they come
    /// before `fields`.
    pub preset: Option<&'a Preset>,
    /// `X-Request-Id` and `X-Portalgate-Decision-Id` of a policy answer,
    /// sent after the preset: held here rather than in `fields`, so that
    /// the common answer allocates nothing for its fields.
    pub ids: Option<(Id, Id)>,
    /// Further header fields (lowercase names), in order.
    pub fields: Vec<(&'static str, Value<'a>)>,
    /// The body.
    pub body: Body<'a>,
    /// The connection must close after this answer: the request's framing
    /// cannot be trusted (400, 431).
    pub close: bool,
}

impl<'a> Answer<'a> {
    /// An answer with no fields yet.
    pub fn new(status: StatusCode, body: impl Into<Body<'a>>) -> Answer<'a> {
        Answer {
            status,
            preset: None,
            ids: None,
            fields: Vec::with_capacity(12),
            body: body.into(),
            close: false,
        }
    }

    /// An answer that starts with `preset`'s fields and the request and
    /// decision ids.
    pub fn preset(
        status: StatusCode,
        preset: &'a Preset,
        body: impl Into<Body<'a>>,
        ids: (Id, Id),
    ) -> Answer<'a> {
        Answer {
            status,
            preset: Some(preset),
            ids: Some(ids),
            fields: Vec::new(),
            body: body.into(),
            close: false,
        }
    }

    /// Adds a field.
    pub fn field(&mut self, name: &'static str, value: impl Into<Value<'a>>) {
        self.fields.push((name, value.into()));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let preset = self.preset.map_or(&[][..], |p| &p.fields[..]);
        let preset = preset.iter().map(|(n, v)| (*n, &v[..]));
        let own = self.fields.iter().map(|(n, v)| (*n, v.as_ref()));
        preset
            .chain(self.id_fields())
            .chain(own)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The body's bytes, its holes filled.
    pub fn body_bytes(&self) -> Cow<'_, [u8]> {
        match &self.body {
            Body::Bytes(b) => Cow::Borrowed(b),
            Body::Holes { template, .. } => {
                let values = self.values();
                let mut out = Vec::with_capacity(template.filled_len(&values));
                template.fill(&mut out, &values);
                Cow::Owned(out)
            }
        }
    }

    /// The body's length.
    fn body_len(&self) -> usize {
        match &self.body {
            Body::Bytes(b) => b.len(),
            Body::Holes { template, .. } => template.filled_len(&self.values()),
        }
    }

    /// Appends the body, its holes filled.
    fn write_body(&self, out: &mut Vec<u8>) {
        match &self.body {
            Body::Bytes(b) => out.extend_from_slice(b),
            Body::Holes { template, .. } => template.fill(out, &self.values()),
        }
    }

    /// What fills a compiled body's holes: the ids, and the body's own
    /// values.
    fn values(&self) -> Values<'_> {
        let (request_id, decision_id) = self
            .ids
            .as_ref()
            .map_or((&b""[..], &b""[..]), |(r, d)| (r.as_bytes(), d.as_bytes()));
        let (region, target) = match &self.body {
            Body::Holes { region, target, .. } => (*region, &target[..]),
            Body::Bytes(_) => ("", ""),
        };
        Values {
            request_id,
            decision_id,
            region,
            target,
        }
    }

    /// The request and decision id fields of a policy answer.
    fn id_fields(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        self.ids.iter().flat_map(|(request, decision)| {
            [
                (REQUEST_ID, request.as_bytes()),
                (DECISION_ID, decision.as_bytes()),
            ]
        })
    }

    /// Appends the answer as HTTP/1.1: status line, fields,
    /// `Content-Length`, `Connection: close` unless `keep_alive`, `Date`
    /// (`now`), and the body unless `head_only` (a `HEAD` request).
    pub fn write_http1(
        &self,
        out: &mut Vec<u8>,
        head_only: bool,
        keep_alive: bool,
        now: SystemTime,
    ) {
        status_line(out, self.status);
        if let Some(p) = self.preset {
            out.extend_from_slice(&p.http1);
        }
        // Written one by one rather than through `id_fields`: the iterator
        // costs this hot path more than the two lines it would save.
        if let Some((request, decision)) = &self.ids {
            line(out, REQUEST_ID_LINE, request.as_bytes());
            line(out, DECISION_ID_LINE, decision.as_bytes());
        }
        for (name, value) in &self.fields {
            field(out, name.as_bytes(), value.as_ref());
        }
        let mut n = itoa_buf();
        line(
            out,
            b"content-length: ",
            fmt_u64(&mut n, self.body_len() as u64),
        );
        if !keep_alive {
            field(out, b"connection", b"close");
        }
        date(out, now);
        out.extend_from_slice(b"\r\n");
        if !head_only {
            self.write_body(out);
        }
    }
}

/// An answer's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Bytes made for this answer (error pages).
    Bytes(Vec<u8>),
    /// A compiled body, its holes filled from the answer's ids and these
    /// values when it is written: the common policy answer has no body of
    /// its own to allocate, fill and copy again.
    Holes {
        /// The compiled body.
        template: &'a Template,
        /// The tenant's region.
        region: &'static str,
        /// A redirect's target, when it is filled per request.
        target: Cow<'a, str>,
    },
}

impl From<Vec<u8>> for Body<'_> {
    fn from(b: Vec<u8>) -> Self {
        Body::Bytes(b)
    }
}

/// Fields that are the same on every answer of a kind (a rule's answer in
/// one format and language), as a list and as HTTP/1.1 lines.
#[derive(Debug, Clone)]
pub struct Preset {
    fields: Vec<(&'static str, Box<[u8]>)>,
    http1: Box<[u8]>,
    /// Names this preset in each thread's cache of its fields as hyper's
    /// map ([`to_hyper`]): unique among the presets made in the process's
    /// life (a clone, with the same fields, shares it), so that a reloaded
    /// configuration's preset never finds an old one's.
    serial: u64,
}

/// The next [`Preset::serial`].
static SERIAL: AtomicU64 = AtomicU64::new(0);

impl Preset {
    /// The preset of these fields (lowercase names), in order.
    pub fn new(fields: Vec<(&'static str, Box<[u8]>)>) -> Preset {
        let mut http1 = Vec::new();
        for (name, value) in &fields {
            field(&mut http1, name.as_bytes(), value);
        }
        Preset {
            fields,
            http1: http1.into(),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Presets are equal when their fields are.
impl PartialEq for Preset {
    fn eq(&self, other: &Preset) -> bool {
        self.fields == other.fields
    }
}

impl Eq for Preset {}

/// The request id field of an answer, as its line starts.
const REQUEST_ID_LINE: &[u8; 14] = b"x-request-id: ";
/// The decision id field of a policy answer, as its line starts.
const DECISION_ID_LINE: &[u8; 26] = b"x-portalgate-decision-id: ";
const REQUEST_ID: &str = name_of(REQUEST_ID_LINE);
const DECISION_ID: &str = name_of(DECISION_ID_LINE);

/// The field name at the start of a line (`name: `); checked when compiled.
const fn name_of(line: &'static [u8]) -> &'static str {
    match std::str::from_utf8(line.split_at(line.len() - 2).0) {
        Ok(name) => name,
        Err(_) => panic!("a field line's start is ASCII"),
    }
}

/// Fields whose values are new on every response.
const ONCE: [&str; 4] = [REQUEST_ID, DECISION_ID, "ms-requestid", "ms-correlationid"];

/// A field value: borrowed from the compiled answers, owned, or an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// Borrowed.
    Ref(&'a [u8]),
    /// Owned.
    Owned(Vec<u8>),
    /// A request or decision id.
    Id(Id),
}

impl AsRef<[u8]> for Value<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Value::Ref(v) => v,
            Value::Owned(v) => v,
            Value::Id(id) => id.as_bytes(),
        }
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Ref(v)
    }
}

impl From<Vec<u8>> for Value<'_> {
    fn from(v: Vec<u8>) -> Self {
        Value::Owned(v)
    }
}

impl From<Id> for Value<'_> {
    fn from(id: Id) -> Self {
        Value::Id(id)
    }
}

/// Appends a header field line.
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    // One capacity check for the four pieces.
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a field line whose start (`name: `) is known when compiled:
/// copied as a whole, not in pieces of unknown length.
fn line<const N: usize>(out: &mut Vec<u8>, start: &[u8; N], value: &[u8]) {
    out.reserve(N + value.len() + 2);
    out.extend_from_slice(start);
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the status line.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    // The statuses the policy answers with, written whole.
    let whole: &[u8] = match status.as_u16() {
        200 => b"HTTP/1.1 200 OK\r\n",
        301 => b"HTTP/1.1 301 Moved Permanently\r\n",
        302 => b"HTTP/1.1 302 Found\r\n",
        303 => b"HTTP/1.1 303 See Other\r\n",
        307 => b"HTTP/1.1 307 Temporary Redirect\r\n",
        308 => b"HTTP/1.1 308 Permanent Redirect\r\n",
        403 => b"HTTP/1.1 403 Forbidden\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        451 => b"HTTP/1.1 451 Unavailable For Legal Reasons\r\n",
        _ => b"",
    };
    if !whole.is_empty() {
        out.extend_from_slice(whole);
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value of the current second, per thread, with the
    /// second it is for (`[start, end)`): formatting it costs more than
    /// the rest of a small response head, and two comparisons of a time
    /// cost less than turning it into seconds.
    static DATE: RefCell<(SystemTime, SystemTime, [u8; 29])> =
        const { RefCell::new((UNIX_EPOCH, UNIX_EPOCH, [0; 29])) };
}

/// Appends `Date: now`, as hyper's server adds it to responses without one.
pub fn date(out: &mut Vec<u8>, now: SystemTime) {
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if !(d.0 <= now && now < d.1) {
            let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let text = httpdate::fmt_http_date(now);
            if text.len() != 29 {
                field(out, b"date", text.as_bytes());
                return;
            }
            let start = UNIX_EPOCH + Duration::from_secs(secs);
            *d = (start, start + Duration::from_secs(1), [0; 29]);
            d.2.copy_from_slice(text.as_bytes());
        }
        line(out, b"date: ", &d.2);
    });
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, written into the end of `buf`.
pub fn fmt_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Answer<'static> {
        let mut a = Answer::new(StatusCode::FORBIDDEN, b"{\"a\":1}\n".to_vec());
        a.field("content-type", &b"application/json"[..]);
        a.field("x-request-id", b"abc".to_vec());
        a
    }

    #[test]
    fn written_as_http1() {
        let mut out = Vec::new();
        sample().write_http1(&mut out, false, true, SystemTime::now());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-request-id: abc\r\ncontent-length: 8\r\ndate: "));
        assert!(text.ends_with(" GMT\r\n\r\n{\"a\":1}\n"));
        let mut head = Vec::new();
        sample().write_http1(&mut head, true, false, SystemTime::now());
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("content-length: 8\r\nconnection: close\r\n"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn the_same_as_a_hyper_response() {
        let mut a = sample();
        a.close = true;
        let resp = a.into_response();
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["x-request-id"], "abc");
        assert_eq!(resp.headers()["connection"], "close");
        assert_eq!(resp.body().local_bytes(), Some(&b"{\"a\":1}\n"[..]));
    }

    /// Per-response ids are never indexed by HTTP/2's header compression
    /// (each would evict a useful entry); fields that repeat are.
    #[test]
    fn ids_are_kept_out_of_the_header_table() {
        let mut a = sample();
        a.field("x-portalgate-decision-id", b"d1".to_vec());
        a.field("ms-correlationid", b"c1".to_vec());
        a.field("location", b"https://portal.example/".to_vec());
        let resp = a.into_response();
        let h = resp.headers();
        for once in [
            "x-request-id",
            "x-portalgate-decision-id",
            "ms-correlationid",
        ] {
            assert!(h[once].is_sensitive(), "{once}");
        }
        for kept in ["content-type", "location"] {
            assert!(!h[kept].is_sensitive(), "{kept}");
        }
        let mut forwarded = http::HeaderMap::new();
        crate::upstream::headers::Sink::field(&mut forwarded, "x-request-id", b"r1");
        crate::upstream::headers::Sink::field(&mut forwarded, "etag", b"\"v1\"");
        assert!(forwarded["x-request-id"].is_sensitive());
        assert!(!forwarded["etag"].is_sensitive());
    }

    /// A preset's fields come first, the same way in both forms.
    #[test]
    fn preset_fields_are_sent_before_the_others() {
        let preset = Preset::new(vec![
            ("content-type", b"text/plain"[..].into()),
            ("vary", b"Accept"[..].into()),
        ]);
        let ids = (Id::for_request(Some(b"abc")), Id::for_request(Some(b"d1")));
        let mut a = Answer::preset(StatusCode::GONE, &preset, b"gone\n".to_vec(), ids);
        a.field("ms-requestid", b"m1".to_vec());
        assert_eq!(a.get("vary"), Some(&b"Accept"[..]));
        assert_eq!(a.get("x-request-id"), Some(&b"abc"[..]));
        assert_eq!(a.get("x-portalgate-decision-id"), Some(&b"d1"[..]));
        assert_eq!(a.get("ms-requestid"), Some(&b"m1"[..]));
        let mut out = Vec::new();
        a.write_http1(&mut out, false, true, SystemTime::now());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 410 Gone\r\ncontent-type: text/plain\r\nvary: Accept\r\nx-request-id: abc\r\nx-portalgate-decision-id: d1\r\nms-requestid: m1\r\ncontent-length: 5\r\n"), "{text}");
        let resp = a.into_response();
        let names: Vec<&str> = resp.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "vary",
                "x-request-id",
                "x-portalgate-decision-id",
                "ms-requestid"
            ]
        );
        // Ids stay out of HTTP/2's header table in this form too.
        assert!(resp.headers()["x-portalgate-decision-id"].is_sensitive());
    }

    /// A compiled body is filled as it is written: its `Content-Length`
    /// is the length of what is written, escaped values included, and
    /// hyper's form carries the same bytes.
    #[test]
    fn a_compiled_body_is_filled_as_it_is_written() {
        use template::{Escape, Hole, Template};
        let page = format!(
            "<p>{} {} {}</p>",
            Hole::RequestId.marker(),
            Hole::Region.marker(),
            Hole::Target.marker()
        );
        let template = Template::parse(&page, Escape::Html);
        let preset = Preset::new(vec![("content-type", b"text/html"[..].into())]);
        let ids = (Id::for_request(Some(b"r1")), Id::for_request(Some(b"d1")));
        let body = Body::Holes {
            template: &template,
            region: "ger<many>",
            target: Cow::Borrowed("https://x/?a=1&b=2"),
        };
        let a = Answer::preset(StatusCode::FORBIDDEN, &preset, body, ids);
        let want = "<p>r1 ger&lt;many&gt; https://x/?a=1&amp;b=2</p>";
        assert_eq!(&a.body_bytes()[..], want.as_bytes());
        let mut out = Vec::new();
        a.write_http1(&mut out, false, true, SystemTime::now());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&format!("content-length: {}\r\n", want.len())),
            "{text}"
        );
        assert!(text.ends_with(&format!("\r\n\r\n{want}")), "{text}");
        let resp = a.into_response();
        assert_eq!(resp.body().local_bytes(), Some(want.as_bytes()));
    }

    #[test]
    fn numbers() {
        let mut b = itoa_buf();
        assert_eq!(fmt_u64(&mut b, 0), b"0");
        assert_eq!(
            fmt_u64(&mut b, 18_446_744_073_709_551_615),
            b"18446744073709551615"
        );
    }

    #[test]
    fn the_date_is_the_second_of_each_time() {
        let at = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        let written = |t: SystemTime| {
            let mut out = Vec::new();
            date(&mut out, t);
            String::from_utf8(out).unwrap()
        };
        // Within one second, its start and its end; the next second; back
        // to an earlier one (a clock step).
        for t in [
            at(1_700_000_000, 0),
            at(1_700_000_000, 999_999_999),
            at(1_700_000_001, 0),
            at(1_700_000_000, 500),
            at(1_600_000_000, 1),
            at(1_700_000_001, 999_999_999),
        ] {
            assert_eq!(
                written(t),
                format!("date: {}\r\n", httpdate::fmt_http_date(t)),
                "{t:?}"
            );
        }
    }

    #[test]
    fn whole_status_lines_are_the_ones_written_in_parts() {
        for code in 100..600u16 {
            let Ok(status) = StatusCode::from_u16(code) else {
                continue;
            };
            let mut out = Vec::new();
            status_line(&mut out, status);
            let want = format!(
                "HTTP/1.1 {} {}\r\n",
                status.as_str(),
                status.canonical_reason().unwrap_or("")
            );
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
