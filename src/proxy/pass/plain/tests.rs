use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};

use super::*;
use crate::proxy::pass::head::{self, Parse};
use crate::upstream::headers::{append_via, apply_forwarding, strip_hop_by_hop};

/// Runs `f` on the parsed head of `text`.
fn with_head<T>(text: &str, f: impl FnOnce(&httparse::Request<'_, '_>) -> T) -> T {
    let mut fields = head::fields();
    match head::parse_request(text.as_bytes(), &mut fields) {
        Parse::Head(req, _) => f(&req),
        other => panic!("{text:?} not parsed: {other:?}"),
    }
}

fn is_plain(text: &str, limits: &Limits) -> bool {
    with_head(text, |req| plain(req, limits).is_some())
}

#[test]
fn a_plain_request_is_read() {
    let text = "PATCH /v1/./customers//x/users?a=1&b HTTP/1.1\r\nHost: portal.example:8443\r\n\
                Content-Length: 12\r\nConnection: close\r\nX-Request-Id: abc\r\nAccept: text/html\r\n\
                Authorization: Bearer t\r\n\r\n";
    with_head(text, |req| {
        let p = plain(req, &Limits::default()).expect("plain");
        assert_eq!(p.method, Method::PATCH);
        assert_eq!(p.path, "/v1/customers/x/users");
        assert_eq!(p.query, Some("a=1&b"));
        assert_eq!(p.host, "portal.example:8443");
        assert_eq!(p.body_len, 12);
        assert!(p.close);
        assert_eq!(p.request_id, Some(&b"abc"[..]));
        assert_eq!(p.accept, Some(&b"text/html"[..]));
        assert!(p.authorization);
    });
}

#[test]
fn anything_doubtful_is_for_the_full_handler() {
    let limits = Limits {
        max_header_bytes: 150,
        max_uri_bytes: 40,
        max_headers: 4,
        max_request_body_bytes: Some(10),
    };
    assert!(is_plain("GET /a HTTP/1.1\r\nHost: a\r\n\r\n", &limits));
    for text in [
        "GET /a HTTP/1.1\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a:\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a:123456\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nConnection: content-length\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\nA: 01234567890123456789012345678901234567890123456789\
         01234567890123456789012345678901234567890123456789012345678901234567890123456789\
         0123456789012345678901234567890123456789\r\n\r\n",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
        "CONNECT /a HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert!(!is_plain(text, &limits), "{text:?}");
    }
}

/// The upstream head the pass-through path writes, as sorted lowercase
/// `(name, value)` pairs.
fn raw_rewrite(text: &str, hop: &Hop<'_>) -> Vec<(String, String)> {
    with_head(text, |req| {
        let p = plain(req, &Limits::default()).expect("plain");
        let mut out = Vec::new();
        write_upstream_head(&mut out, req, &p, "up:8080", hop, b"rid-1");
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.split("\r\n").skip(1);
        let mut pairs: Vec<(String, String)> = lines
            .by_ref()
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_ascii_lowercase(), v.to_string())
            })
            .collect();
        pairs.sort();
        pairs
    })
}

/// What hyper's path sends for the same head: the `HeaderMap` functions,
/// with repeated fields joined the way they are on the wire.
fn mapped_rewrite(text: &str, hop: &Hop<'_>) -> Vec<(String, String)> {
    let mut headers = HeaderMap::new();
    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let (n, v) = line.split_once(": ").unwrap();
        headers.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    strip_hop_by_hop(&mut headers);
    headers.insert(header::HOST, HeaderValue::from_static("up:8080"));
    apply_forwarding(&mut headers, hop);
    append_via(&mut headers, http::Version::HTTP_11);
    headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("rid-1"));
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[test]
fn the_rewrite_equals_hyper_paths_for_trusted_and_untrusted_peers() {
    let heads = [
        "GET /a HTTP/1.1\r\nHost: portal\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: portal:8443\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\
         X-Forwarded-For: 10.0.0.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: outer\r\n\
         Forwarded: for=10.0.0.1\r\nVia: 1.0 edge\r\nX-Request-Id: forged\r\n\r\n",
        "POST /a HTTP/1.1\r\nHost: portal\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\n\
         Proxy-Connection: keep-alive\r\nTrailer: X-T\r\nContent-Length: 0\r\nCookie: c=1\r\n\
         Cookie: d=2\r\nX-Forwarded-Proto: \r\n\r\n",
    ];
    let peers: [IpAddr; 2] = ["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()];
    for text in heads {
        for peer in peers {
            for trusted in [false, true] {
                for proto in ["http", "https"] {
                    let host = with_head(text, |req| {
                        plain(req, &Limits::default()).map(|p| p.host.to_string())
                    });
                    let hop = Hop {
                        peer,
                        trusted,
                        proto,
                        host: host.as_deref(),
                    };
                    assert_eq!(
                        raw_rewrite(text, &hop),
                        mapped_rewrite(text, &hop),
                        "{text:?} peer {peer} trusted {trusted} {proto}"
                    );
                }
            }
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn head_text() -> impl Strategy<Value = String> {
        let method = prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]);
        let path = prop::collection::vec(
            prop::sample::select(vec![
                "/", "a", ".", "..", "%2e", "%41", "%2F", "//", "b;c", "?x=1",
            ]),
            1..6,
        )
        .prop_map(|v| format!("/{}", v.concat()));
        let name = prop::sample::select(vec![
            "Host",
            "host",
            "Content-Length",
            "content-length",
            "Connection",
            "Keep-Alive",
            "TE",
            "Via",
            "X-Forwarded-For",
            "X-Request-Id",
            "X-A",
        ]);
        let value = prop::sample::select(vec![
            "5",
            "05",
            "0",
            "1,1",
            " 3",
            "close",
            "content-length",
            "keep-alive, X-A",
            "host",
            "portal",
            "portal:8080",
            "abc",
        ]);
        let fields = prop::collection::vec((name, value), 0..8);
        (method, path, fields).prop_map(|(m, p, f)| {
            let fields: String = f.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
            format!("{m} {p} HTTP/1.1\r\n{fields}\r\n")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever a plain request looked like, the head sent upstream is
        /// one well-formed HTTP/1.1 head whose framing is exactly the
        /// client's: one `Content-Length` with the same value when there is
        /// a body, no `Transfer-Encoding`, one `Host`.
        #[test]
        fn the_upstream_head_keeps_the_framing(text in head_text()) {
            let mut fields = head::fields();
            let Parse::Head(req, _) = head::parse_request(text.as_bytes(), &mut fields) else {
                return Ok(());
            };
            let Some(p) = plain(&req, &Limits::default()) else {
                return Ok(());
            };
            let hop = Hop { peer: [192, 0, 2, 1].into(), trusted: false, proto: "http", host: Some(p.host) };
            let mut out = Vec::new();
            write_upstream_head(&mut out, &req, &p, "up", &hop, b"rid");
            let mut up_fields = [httparse::EMPTY_HEADER; 64];
            let mut up = httparse::Request::new(&mut up_fields);
            prop_assert_eq!(up.parse(&out), Ok(httparse::Status::Complete(out.len())));
            let count = |n: &str| up.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(n)).count();
            prop_assert_eq!(count("transfer-encoding"), 0);
            prop_assert_eq!(count("host"), 1);
            let lengths: Vec<&[u8]> = up
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| h.value)
                .collect();
            let sent_length = text.to_ascii_lowercase().contains("\r\ncontent-length:");
            if sent_length {
                prop_assert_eq!(lengths.len(), 1);
                prop_assert_eq!(head::digits(lengths[0]), Some(p.body_len));
            } else {
                prop_assert!(lengths.is_empty());
                prop_assert_eq!(p.body_len, 0);
            }
        }
    }
}
