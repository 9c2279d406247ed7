use super::*;

fn request(text: &str) -> (Parse<Request<()>>, BytesMut) {
    let mut buf = BytesMut::from(text.as_bytes());
    (parse_request(&mut buf), buf)
}

#[test]
fn a_plain_request_is_parsed_and_removed_from_the_buffer() {
    let (parsed, rest) = request(
        "POST /v1/customers/x/users?a=1 HTTP/1.1\r\nHost: portal\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}GET",
    );
    let Parse::Head(req, head) = parsed else {
        panic!("not parsed: {parsed:?}");
    };
    assert_eq!(req.method(), Method::POST);
    assert_eq!(req.uri(), "/v1/customers/x/users?a=1");
    assert_eq!(req.headers()["host"], "portal");
    let xa: Vec<_> = req.headers().get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(&rest[..], b"{}GET");
    assert!(head.ends_with(b"\r\n\r\n"));
}

#[test]
fn incomplete_heads_are_partial() {
    assert!(matches!(
        request("GET / HTTP/1.1\r\nHost: a\r\n").0,
        Parse::Partial
    ));
    assert!(matches!(request("GE").0, Parse::Partial));
}

#[test]
fn requests_for_hyper_are_left_in_the_buffer() {
    for text in [
        "GET / HTTP/1.0\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let (parsed, rest) = request(text);
        assert!(matches!(parsed, Parse::Other), "{text:?}: {parsed:?}");
        assert_eq!(&rest[..], text.as_bytes(), "{text:?}");
    }
    let many: String = (0..=MAX_REQUEST_HEADERS)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect();
    let text = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert!(matches!(request(&text).0, Parse::Other));
}

#[test]
fn unsplit_front_restores_the_bytes() {
    let text = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
    let (parsed, mut rest) = request(text);
    let Parse::Head(_, head) = parsed else {
        panic!("not parsed");
    };
    rest.unsplit_front(head);
    assert_eq!(&rest[..], text.as_bytes());
}

fn response(text: &str, head_request: bool) -> Result<Option<ResponseHead>, BadResponse> {
    parse_response(&mut BytesMut::from(text.as_bytes()), head_request)
}

fn framing_of(text: &str) -> Result<Framing, BadResponse> {
    response(text, false).map(|r| r.map(|h| h.framing).unwrap_or(Framing::Empty))
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
        response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .map(|r| r.map(|h| h.framing)),
        Ok(Some(Framing::Empty))
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
    let keep = |t: &str| response(t, false).ok().flatten().map(|h| h.keep_alive);
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
fn heads_are_written_as_http_1_1() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("up"));
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_static("2"));
    let mut out = Vec::new();
    write_request(&mut out, &Method::PATCH, "/a?b", &headers);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "PATCH /a?b HTTP/1.1\r\nhost: up\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
    );
    let mut out = Vec::new();
    write_response(&mut out, StatusCode::BAD_GATEWAY, &HeaderMap::new());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 502 Bad Gateway\r\n\r\n"
    );
}
