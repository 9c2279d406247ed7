use super::*;
use http::Request;

/// What the tests look at of a passed check.
#[derive(Debug, PartialEq)]
struct Passed {
    path: String,
    host: Option<String>,
    upgrade: bool,
}

/// Runs intake over hyper's view of `req` and, for an origin-form target,
/// over the raw view the pass-through codec builds: both must agree.
fn check<B>(req: &Request<B>, limits: &Limits) -> Result<Passed, ProxyError> {
    let (parts, _) = Request::builder()
        .method(req.method())
        .uri(req.uri())
        .version(req.version())
        .body(())
        .unwrap()
        .into_parts();
    let mut parts = parts;
    parts.headers = req.headers().clone();
    let summary = |c: Checked<'_>| Passed {
        path: c.path.as_str().to_owned(),
        host: c.host.map(str::to_owned),
        upgrade: c.upgrade,
    };
    let by_map = super::check(&HeadView::of_parts(&parts), limits).map(summary);
    if req.uri().authority().is_none() {
        let raw: Vec<httparse::Header<'_>> = req
            .headers()
            .iter()
            .map(|(n, v)| httparse::Header {
                name: n.as_str(),
                value: v.as_bytes(),
            })
            .collect();
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let by_raw =
            super::check(&HeadView::of_raw(req.method(), target, &raw), limits).map(summary);
        assert_eq!(by_map, by_raw, "hyper's view and the raw view disagree");
    }
    by_map
}

fn req(pairs: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().uri("/v1/x");
    for (k, v) in pairs {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn limits() -> Limits {
    Limits {
        max_request_body_bytes: Some(10),
        ..Limits::default()
    }
}

fn err(pairs: &[(&str, &str)]) -> ProxyError {
    check(&req(pairs), &limits()).unwrap_err()
}

#[test]
fn ambiguous_framing_is_rejected() {
    let h = ("host", "a");
    assert_eq!(
        err(&[h, ("content-length", "3"), ("transfer-encoding", "chunked")]).status(),
        400
    );
    assert_eq!(
        err(&[h, ("content-length", "3"), ("content-length", "3")]).status(),
        400
    );
    assert_eq!(
        err(&[h, ("transfer-encoding", "gzip, chunked")]).status(),
        400
    );
    assert_eq!(
        err(&[
            h,
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked")
        ])
        .status(),
        400
    );
    assert_eq!(err(&[h, ("content-length", "+3")]).status(), 400);
    assert!(check(&req(&[h, ("transfer-encoding", "Chunked")]), &limits()).is_ok());
}

#[test]
fn body_limit_by_content_length() {
    assert_eq!(
        err(&[("host", "a"), ("content-length", "11")]).status(),
        413
    );
    assert!(check(&req(&[("host", "a"), ("content-length", "10")]), &limits()).is_ok());
}

#[test]
fn host_rules() {
    assert_eq!(err(&[]).status(), 400, "HTTP/1.1 without Host");
    assert_eq!(err(&[("host", "a"), ("host", "b")]).status(), 400);
    assert_eq!(err(&[("host", "a b")]).status(), 400);
    let absolute = Request::builder()
        .uri("http://other.example/v1/x")
        .header("host", "portal.example")
        .body(())
        .unwrap();
    assert_eq!(check(&absolute, &limits()).unwrap_err().status(), 400);
    let same = Request::builder()
        .uri("http://Portal.Example/v1/x")
        .header("host", "portal.example")
        .body(())
        .unwrap();
    assert!(check(&same, &limits()).is_ok());
}

#[test]
fn upgrade_needs_connection_token() {
    let c = check(
        &req(&[
            ("host", "a"),
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]),
        &limits(),
    )
    .unwrap();
    assert!(c.upgrade);
    let c = check(&req(&[("host", "a"), ("upgrade", "websocket")]), &limits()).unwrap();
    assert!(!c.upgrade);
}

#[test]
fn plain_hosts_are_names_or_ipv4_with_an_optional_port() {
    for h in [
        "a",
        "a.b",
        "Partner.Example:8443",
        "127.0.0.1:65535",
        "x-y.z:1",
    ] {
        assert!(plain_host(h.as_bytes()), "{h}");
    }
    for h in [
        "", ":80", "a:", "a:123456", "a:8a", "a:b:c", "a:1:2", "[::1]", "a b", "a_b", "ä.de",
    ] {
        assert!(!plain_host(h.as_bytes()), "{h}");
    }
}

proptest::proptest! {
    /// The one-pass check reads a host as the two-pass one did: valid
    /// bytes, then everything after the first colon a port of 1 to 5
    /// digits, with a name before it.
    #[test]
    fn plain_host_reads_as_the_first_colon_did(h in "[a1.:-]{0,10}") {
        let b = h.as_bytes();
        static HOST_BYTE: [bool; 256] = crate::canonical::byte_class(b".-:");
        let old = !b.is_empty()
            && b.iter().all(|&c| HOST_BYTE[usize::from(c)])
            && match b.iter().position(|&c| c == b':') {
                None => true,
                Some(at) => {
                    let port = &b[at + 1..];
                    at > 0 && (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit)
                }
            };
        proptest::prop_assert_eq!(plain_host(b), old, "{}", h);
    }
}

#[test]
fn content_length_reads_as_digits_and_parse_did() {
    let old = |v: &[u8]| -> Option<u64> {
        text(v)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
    };
    for v in [
        &b""[..],
        b"0",
        b"007",
        b"42",
        b"18446744073709551615",
        b"18446744073709551616",
        b"99999999999999999999",
        b"+1",
        b"-1",
        b" 1",
        b"1 ",
        b"1_0",
        b"0x10",
        b"\xd9\xa1",
        b"/",
        b":",
    ] {
        assert_eq!(decimal(v), old(v), "{v:?}");
    }
}
