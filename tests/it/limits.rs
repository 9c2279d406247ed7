//! Limits and malformed requests: 400/405/413/414/431 with bodies, and
//! ambiguous framing that must never reach the backend.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::client::{raw, send, status_of};
use crate::support::*;

async fn limited() -> (Backend, proxy::RunningProxy) {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .section(
            "[limits]\nmax_uri_bytes = 200\nmax_header_bytes = 2048\nmax_headers = 20\nmax_request_body_bytes = 1024",
        )
        .start()
        .await;
    (backend, proxy)
}

/// Asserts a raw reply has `status`, a body, and a request id.
fn assert_local(reply: &str, status: u16) {
    assert_eq!(status_of(reply), status, "{reply}");
    let lower = reply.to_ascii_lowercase();
    assert!(lower.contains("x-request-id: "), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(!body.is_empty(), "empty body: {reply}");
}

#[tokio::test]
async fn uri_too_long_is_414() {
    let (backend, proxy) = limited().await;
    let path = format!("/{}", "a".repeat(300));
    let reply = raw(
        proxy.addr,
        format!("GET {path} HTTP/1.1\r\nHost: p\r\n\r\n").as_bytes(),
    )
    .await;
    assert_local(&reply, 414);
    assert!(reply.contains("\"code\":\"uri_too_long\""), "{reply}");
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn too_many_or_too_large_headers_is_431() {
    let (backend, proxy) = limited().await;
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let reply = raw(
        proxy.addr,
        format!("GET / HTTP/1.1\r\nHost: p\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert_local(&reply, 431);
    let big = format!("X-Big: {}\r\n", "b".repeat(3000));
    let reply = raw(
        proxy.addr,
        format!("GET / HTTP/1.1\r\nHost: p\r\n{big}\r\n").as_bytes(),
    )
    .await;
    assert_local(&reply, 431);
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn body_too_large_is_413_by_length_and_by_stream() {
    let (backend, proxy) = limited().await;
    let reply = raw(
        proxy.addr,
        b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 5000\r\n\r\n",
    )
    .await;
    assert_local(&reply, 413);

    // Chunked: the limit is found while streaming.
    let chunk = format!("800\r\n{}\r\n", "c".repeat(0x800));
    let reply = raw(
        proxy.addr,
        format!("POST /upload HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}0\r\n\r\n").as_bytes(),
    )
    .await;
    assert_local(&reply, 413);
    assert!(backend.seen().is_empty());

    // At the limit it passes.
    let reply = send(
        Request::post(proxy.url("/echo"))
            .body(Full::new(Bytes::from(vec![b'x'; 1024])))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn ambiguous_framing_never_reaches_the_backend() {
    let (backend, proxy) = limited().await;
    let cases: &[&[u8]] = &[
        // duplicate Content-Length with different values
        b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        // Transfer-Encoding other than a final chunked
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // invalid Content-Length
        b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: -1\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 1_0\r\n\r\n",
    ];
    for case in cases {
        let reply = raw(proxy.addr, case).await;
        assert_eq!(
            status_of(&reply),
            400,
            "{}\n->\n{reply}",
            String::from_utf8_lossy(case)
        );
    }
    assert!(backend.seen().is_empty(), "{:?}", backend.seen());
}

/// Reads until the proxy closes the connection (bounded).
async fn raw_until_close(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    crate::support::client::read_to_close(&mut s).await
}

/// Both Content-Length and Transfer-Encoding: refused with a 400 and the
/// connection closed, as nginx does, so bytes after either body never
/// become a second request and nothing ambiguous reaches the backend.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused() {
    let (backend, proxy) = limited().await;
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: p\r\n\r\n";
    for request in [
        // CL.TE: a front end trusting Content-Length would see the smuggled request as body
        format!("POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}", 5 + smuggled.len()),
        // TE.CL: a back end trusting Content-Length would read the rest as a new request
        format!("POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2\r\nAB\r\n0\r\n\r\n{smuggled}"),
    ] {
        let out = raw_until_close(proxy.addr, request.as_bytes()).await;
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert_eq!(status_of(&out), 400, "{out}");
    }
    assert!(backend.seen().is_empty(), "{:?}", backend.seen());
}

/// A chunked upload is decoded and sent on in the proxy's own chunks:
/// extensions and trailers stay behind, and what follows the body is the
/// next request on the same connection.
#[tokio::test]
async fn a_chunked_upload_is_sent_on_canonically() {
    let (backend, proxy) = limited().await;
    let out = raw_until_close(
        proxy.addr,
        b"POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n\
          2;ext=1\r\nAB\r\n1\r\nC\r\n0\r\nX-Trailer: t\r\n\r\n\
          GET /echo HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
    let seen = backend.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].body, "ABC");
    assert_eq!(
        seen[0]
            .headers
            .get("transfer-encoding")
            .map(|v| v.as_bytes()),
        Some(&b"chunked"[..])
    );
    assert!(seen[0].headers.get("x-trailer").is_none());
    assert_eq!(seen[1].uri, "/echo");
}

/// Two equal Content-Length fields collapse to one in hyper's parser.
#[tokio::test]
async fn duplicate_equal_content_length_reaches_backend_once() {
    let (backend, proxy) = limited().await;
    let reply = raw(
        proxy.addr,
        b"POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let seen = backend.only();
    assert_eq!(seen.headers.get_all("content-length").iter().count(), 1);
    assert_eq!(seen.body, "abc");
}

#[tokio::test]
async fn host_problems_are_400_with_a_body() {
    let (backend, proxy) = limited().await;
    for case in [
        "GET /echo HTTP/1.1\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET http://other.example/echo HTTP/1.1\r\nHost: portal.example\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: user@portal\r\n\r\n",
    ] {
        let reply = raw(proxy.addr, case.as_bytes()).await;
        assert_local(&reply, 400);
    }
    let reply = raw(
        proxy.addr,
        b"CONNECT portal:443 HTTP/1.1\r\nHost: portal:443\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 405, "{reply}");
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn malformed_request_line_is_400_and_not_forwarded() {
    let (backend, proxy) = limited().await;
    for case in [
        "GET /a b HTTP/1.1\r\nHost: p\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: p\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: p\r\nBad Header: x\r\n\r\n",
    ] {
        let reply = raw(proxy.addr, case.as_bytes()).await;
        assert_local(&reply, 400);
        assert!(
            reply.contains("malformed request head"),
            "{case:?} -> {reply}"
        );
    }
    // A head that does not end within twice the limits (and more): 431
    // with a body, however much more the client would send.
    let huge = format!("GET / HTTP/1.1\r\nHost: p\r\nX-Big: {}", "b".repeat(20_000));
    let reply = raw(proxy.addr, huge.as_bytes()).await;
    assert_local(&reply, 431);
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn absolute_form_with_matching_host_is_forwarded_in_origin_form() {
    let (backend, proxy) = limited().await;
    let reply = raw(
        proxy.addr,
        b"GET http://portal.example/echo?q=1 HTTP/1.1\r\nHost: portal.example\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let seen = backend.only();
    assert_eq!(seen.uri, "/echo?q=1");
    assert_eq!(seen.headers["host"], "portal.example");
}

/// Writes `bytes` to `s` in pieces of `size`, each flushed and a moment
/// apart, so that the proxy reads a head in several reads (it may still
/// read several pieces at once: what it answers must not depend on that).
/// Stops at the first failed write (the proxy closed the connection).
async fn in_pieces(s: &mut tokio::net::TcpStream, bytes: &[u8], size: usize) {
    use tokio::io::AsyncWriteExt;
    for piece in bytes.chunks(size) {
        if s.write_all(piece).await.is_err() || s.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_head_that_arrives_in_pieces_is_judged_once_it_is_whole() {
    use crate::policy::{DE, GLOBAL};
    use crate::support::client::read_response;
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section("[limits]\nmax_uri_bytes = 200\nmax_header_bytes = 2048")
        .start()
        .await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    // Forwarded, its body in the same piece as the head's end.
    let post = format!(
        "POST /v1/customers/{GLOBAL}/users HTTP/1.1\r\nHost: p\r\n\
         Content-Type: application/json\r\nContent-Length: 5\r\n\r\nhello"
    );
    in_pieces(&mut s, post.as_bytes(), 7).await;
    let reply = read_response(&mut s).await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let seen = backend.only();
    assert_eq!(seen.uri, format!("/v1/customers/{GLOBAL}/users"));
    assert_eq!(&seen.body[..], b"hello");
    // Intercepted, on the same connection, its head split inside the
    // tenant id and inside the final CRLF.
    let delete = format!(
        "DELETE /v1/customers/{DE}/directoryroles/r1/usermembers/u1 HTTP/1.1\r\n\
         Host: p\r\nAccept: application/json\r\n\r\n"
    );
    in_pieces(&mut s, delete.as_bytes(), 5).await;
    let reply = read_response(&mut s).await;
    assert_local(&reply, 403);
    assert_eq!(
        backend.seen().len(),
        1,
        "the intercepted request reached the backend"
    );
    // A head that does not end within the bound on a head's bytes
    // (`Limits::max_head_bytes`: 12,688 here), in pieces: 431.
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let big = format!("GET / HTTP/1.1\r\nHost: p\r\nX-Big: {}", "b".repeat(16_000));
    in_pieces(&mut s, big.as_bytes(), 2048).await;
    assert_local(&read_response(&mut s).await, 431);
    // A byte that no head may hold, in a later piece than the start: 400.
    for bad in [&b"Ho\0st: p\r\n\r\n"[..], b"Host: p\r\nX: a\x01b\r\n\r\n"] {
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        in_pieces(&mut s, b"GET / HTTP/1.1\r\n", 64).await;
        in_pieces(&mut s, bad, 4).await;
        assert_local(&read_response(&mut s).await, 400);
    }
    assert_eq!(
        backend.seen().len(),
        1,
        "a refused head reached the backend"
    );
}
