use super::*;

/// What `parse_request` makes of `text`: `Some(len)` for a head it serves.
fn request(text: &str) -> Parse<()> {
    let mut fields = super::room();
    match parse_request(text.as_bytes(), &mut fields) {
        Parse::Head(_, len) => Parse::Head((), len),
        Parse::Partial => Parse::Partial,
        Parse::Other => Parse::Other,
        Parse::Invalid => Parse::Invalid,
    }
}

#[test]
fn a_plain_request_head_is_found() {
    let text =
        "POST /v1/customers/x/users?a=1 HTTP/1.1\r\nHost: portal\r\nContent-Length: 2\r\n\r\n{}GET";
    assert!(matches!(request(text), Parse::Head((), n) if n == text.len() - 5));
}

#[test]
fn incomplete_heads_are_partial() {
    assert!(matches!(
        request("GET / HTTP/1.1\r\nHost: a\r\n"),
        Parse::Partial
    ));
    assert!(matches!(request("GE"), Parse::Partial));
}

#[test]
fn chunked_and_expect_continue_requests_stay_on_this_codec() {
    // Intake judges the coding: a lone `chunked` is decoded here, anything
    // else is refused with a 400 before anything is forwarded.
    for text in [
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: gzip\r\n\r\n",
        "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
    ] {
        assert!(matches!(request(text), Parse::Head(..)), "{text:?}");
    }
}

#[test]
fn requests_for_hyper_are_other() {
    for text in [
        "GET / HTTP/1.0\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        "GET /\"quoted\" HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert!(matches!(request(text), Parse::Other), "{text:?}");
    }
    for text in [
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
    ] {
        assert!(matches!(request(text), Parse::Invalid), "{text:?}");
    }
    let many: String = (0..=MAX_REQUEST_HEADERS)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect();
    let text = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert!(matches!(request(&text), Parse::Other));
}

/// `(framing, keep_alive)` of a response head.
fn response(text: &str, head_request: bool) -> Result<Option<(Framing, bool)>, BadResponse> {
    let mut fields = super::room();
    parse_response(text.as_bytes(), &mut fields, head_request)
        .map(|r| r.map(|(h, _)| (h.framing, h.keep_alive)))
}

fn framing_of(text: &str) -> Result<Framing, BadResponse> {
    response(text, false).map(|r| r.map_or(Framing::Empty, |(f, _)| f))
}

#[test]
fn response_framing() {
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        Ok(Framing::Length(5))
    );
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"),
        Ok(Framing::Length(5))
    );
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"),
        Ok(Framing::Chunked)
    );
    assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::Close));
    assert_eq!(
        framing_of("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        Ok(Framing::Empty)
    );
    assert_eq!(
        framing_of("HTTP/1.1 304 Not Modified\r\n\r\n"),
        Ok(Framing::Empty)
    );
    assert_eq!(
        response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
        Ok(Some((Framing::Empty, true)))
    );
}

#[test]
fn ambiguous_response_framing_is_refused() {
    for text in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_eq!(framing_of(text), Err(BadResponse::Framing), "{text:?}");
    }
    assert_eq!(
        framing_of("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
        Err(BadResponse::Syntax)
    );
}

#[test]
fn keep_alive_follows_version_connection_and_framing() {
    let keep = |t: &str| response(t, false).ok().flatten().map(|(_, k)| k);
    assert_eq!(
        keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Some(true)
    );
    assert_eq!(
        keep("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, close\r\nContent-Length: 0\r\n\r\n"),
        Some(false)
    );
    assert_eq!(
        keep("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Some(false)
    );
    assert_eq!(keep("HTTP/1.1 200 OK\r\n\r\n"), Some(false));
}

#[test]
fn the_client_head_drops_hop_by_hop_fields_and_extends_via() {
    let text = "HTTP/1.1 200 OK\r\nConnection: x-secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
                Via: 1.1 backend\r\nX-Request-Id: theirs\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\n\
                Transfer-Encoding: chunked\r\nX-Kept: yes\r\n\r\n";
    let mut fields = super::room();
    let Ok(Some((head, _))) = parse_response(text.as_bytes(), &mut fields, false) else {
        panic!("not parsed");
    };
    let mut out = Vec::new();
    write_response(&mut out, &head, b"rid-1", false);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nX-Kept: yes\r\n\
         via: 1.1 backend, 1.1 portalgate\r\nx-request-id: rid-1\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
}

#[test]
fn a_date_is_added_when_the_upstream_sent_none() {
    let mut fields = super::room();
    let text = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    let Ok(Some((head, _))) = parse_response(text.as_bytes(), &mut fields, false) else {
        panic!("not parsed");
    };
    let mut out = Vec::new();
    write_response(&mut out, &head, b"r", true);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{text}");
    assert!(text.contains("\r\ndate: "), "{text}");
    assert!(!text.contains("connection"), "{text}");
}

#[test]
fn digits_are_bounded() {
    assert_eq!(digits(b"0"), Some(0));
    assert_eq!(
        digits(b"1234567890123456789"),
        Some(1_234_567_890_123_456_789)
    );
    assert_eq!(digits(b"12345678901234567890"), None);
    assert_eq!(digits(b""), None);
    assert_eq!(digits(b"1 "), None);
}

/// The table is RFC 3986's unreserved and sub-delims, `:`, `@`, `/`, `?`
/// and `%`, and nothing else.
#[test]
fn plain_target_bytes_are_exactly_the_listed_ones() {
    for b in 0..=255u8 {
        let listed = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
        assert_eq!(super::plain_target_byte(b), listed, "byte {b:#04x}");
    }
}
