//! Fuzzes the pass-through codec's head handling: parsing and judging never
//! panic, and whenever a request is forwarded, the head written upstream is
//! one well-formed HTTP/1.1 head with exactly one framing: the client's
//! `Content-Length` of the same value when it had one; one
//! `Transfer-Encoding: chunked` (the proxy's own chunks) when it sent a
//! chunked body, and then no `Content-Length`; neither otherwise. The same
//! bytes as a response head and as a chunked body (scanned and decoded)
//! are judged without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portalgate::head::HeadView;
use portalgate::proxy::judge::Plan;
use portalgate::proxy::pass::chunked::Chunked;
use portalgate::proxy::pass::head::{self, Parse};
use portalgate::proxy::pass::write_request_head;
use portalgate::proxy::ConnInfo;

#[path = "demo_judge.rs"]
mod demo_judge;
use demo_judge::judge;

fuzz_target!(|data: &[u8]| {
    let _ = Chunked::default().scan(data);
    let _ = Chunked::default().decode(data, &mut Vec::new());
    let mut response_fields = head::room();
    if let Ok(Some((h, _))) = head::parse_response(data, &mut response_fields, false) {
        let mut out = Vec::new();
        head::write_response(&mut out, &h, b"rid", true);
    }
    let mut room = head::room();
    let Parse::Head(req, _) = head::parse_request(data, &mut room) else {
        return;
    };
    let (Some(method), Some(target)) = (
        req.method.and_then(|m| http::Method::from_bytes(m.as_bytes()).ok()),
        req.path,
    ) else {
        return;
    };
    let view = HeadView::of_raw(&method, target, req.headers);
    let conn = ConnInfo {
        peer: ([192, 0, 2, 1], 1).into(),
        tls: false,
    };
    let judgement = judge().decide(&view, &conn);
    let Plan::Forward(forward) = judgement.plan else {
        return;
    };
    let mut out = Vec::new();
    write_request_head(&mut out, &view, &forward);
    let mut up_fields = [httparse::EMPTY_HEADER; 256];
    let mut up = httparse::Request::new(&mut up_fields);
    assert_eq!(up.parse(&out), Ok(httparse::Status::Complete(out.len())));
    assert_eq!(named(up.headers, "host").len(), 1);
    let codings = named(up.headers, "transfer-encoding");
    let lengths = named(up.headers, "content-length");
    if named(req.headers, "transfer-encoding").is_empty() {
        assert_eq!(codings.len(), 0);
        let sent = named(req.headers, "content-length");
        assert_eq!(lengths.len(), sent.len());
        if let (Some(l), Some(s)) = (lengths.first(), sent.first()) {
            assert_eq!(l.value, s.value);
        }
    } else {
        assert_eq!(codings.len(), 1);
        assert_eq!(codings[0].value, b"chunked");
        assert_eq!(lengths.len(), 0);
    }
});

fn named<'h, 'b>(headers: &'h [httparse::Header<'b>], name: &str) -> Vec<&'h httparse::Header<'b>> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .collect()
}
