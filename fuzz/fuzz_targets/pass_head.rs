//! Fuzzes the pass-through path's head handling: parsing never panics, and
//! whenever a request is plain enough to pass through, the head written
//! upstream is one well-formed HTTP/1.1 head with exactly the client's
//! framing (one `Content-Length` of the same value when it had one, none
//! otherwise, never `Transfer-Encoding`). The same bytes as a response head
//! and as a chunked body are judged without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portalgate::config::Limits;
use portalgate::proxy::pass::chunked::Chunked;
use portalgate::proxy::pass::head::{self, Parse};
use portalgate::proxy::pass::plain::{plain, write_upstream_head};
use portalgate::upstream::headers::Hop;

fuzz_target!(|data: &[u8]| {
    let _ = Chunked::default().scan(data);
    let mut response_fields = head::fields();
    if let Ok(Some((h, _))) = head::parse_response(data, &mut response_fields, false) {
        let mut out = Vec::new();
        head::write_response(&mut out, &h, b"rid", true);
    }
    let mut fields = head::fields();
    let Parse::Head(req, _) = head::parse_request(data, &mut fields) else {
        return;
    };
    let Some(p) = plain(&req, &Limits::default()) else {
        return;
    };
    let hop = Hop {
        peer: [192, 0, 2, 1].into(),
        trusted: true,
        proto: "http",
        host: Some(p.host),
    };
    let mut out = Vec::new();
    write_upstream_head(&mut out, &req, &p, "up", &hop, b"rid");
    let mut up_fields = [httparse::EMPTY_HEADER; 256];
    let mut up = httparse::Request::new(&mut up_fields);
    assert_eq!(up.parse(&out), Ok(httparse::Status::Complete(out.len())));
    assert_eq!(named(up.headers, "transfer-encoding").len(), 0);
    assert_eq!(named(up.headers, "host").len(), 1);
    let sent: Vec<_> = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
        .collect();
    let lengths = named(up.headers, "content-length");
    assert_eq!(lengths.len(), sent.len());
    if let Some(l) = lengths.first() {
        assert_eq!(head::digits(l.value), Some(p.body_len));
    }
});

fn named<'h, 'b>(headers: &'h [httparse::Header<'b>], name: &str) -> Vec<&'h httparse::Header<'b>> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .collect()
}
