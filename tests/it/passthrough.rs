//! The HTTP/1.1 pass-through path against an upstream that writes raw
//! bytes: chunked and close-delimited bodies, interim responses, framing
//! that must be refused, connections dropped by the upstream, pipelining,
//! and the hand-over of a connection to hyper.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::{find, raw, read_response, read_to_close, status_of};
use crate::support::proxy::ProxyBuilder;
use crate::support::script::Script;

/// Reads from `s` until `needle` has arrived (bounded to 10 s).
async fn read_until(s: &mut TcpStream, needle: &[u8]) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while find(&buf, needle).is_none() {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("no answer within 10 s");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_chunked_response_passes_through_whole_and_both_connections_are_reused() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /chunked HTTP/1.1\r\nHost: portal\r\n\r\n")
            .await
            .unwrap();
        let reply = read_until(&mut s, b"X-Trailer: t\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(
            reply.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{reply}"
        );
        assert!(
            reply.ends_with("\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
            "{reply}"
        );
    }
    assert_eq!(script.requests(), 2);
    assert_eq!(script.connections(), 1, "the upstream connection is reused");
}

#[tokio::test]
async fn ambiguous_upstream_framing_is_a_502_and_that_connection_is_not_reused() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let reply = raw(
        proxy.addr,
        b"GET /cl-te HTTP/1.1\r\nHost: portal\r\nAccept: application/json\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 502, "{reply}");
    assert!(reply.contains("upstream"), "{reply}");
    assert!(reply
        .to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n"));
    let reply = raw(proxy.addr, b"GET /after HTTP/1.1\r\nHost: portal\r\n\r\n").await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    assert_eq!(script.connections(), 2, "the refused connection was closed");
}

#[tokio::test]
async fn a_close_delimited_response_closes_the_client_connection() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET /close HTTP/1.1\r\nHost: portal\r\n\r\n")
        .await
        .unwrap();
    let reply = read_to_close(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("\r\nconnection: close\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nuntil the end"), "{reply}");
}

#[tokio::test]
async fn interim_responses_are_not_passed_on() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let reply = raw(
        proxy.addr,
        b"GET /early-hints HTTP/1.1\r\nHost: portal\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nok"), "{reply}");
}

#[tokio::test]
async fn a_dropped_pooled_connection_is_retried_only_for_idempotent_requests() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    for _ in 0..2 {
        let reply = raw(
            proxy.addr,
            b"GET /drop-second HTTP/1.1\r\nHost: portal\r\n\r\n",
        )
        .await;
        assert_eq!(status_of(&reply), 200, "{reply}");
    }
    // The second GET reached the upstream twice: dropped, then sent again.
    assert_eq!(script.requests(), 3);
    assert_eq!(script.connections(), 2);

    // The pooled connection now carries its second request: a POST that
    // reached the upstream and got no answer is not repeated.
    let post = b"POST /drop-second HTTP/1.1\r\nHost: portal\r\nContent-Length: 1\r\n\r\nx";
    let reply = raw(proxy.addr, post).await;
    assert_eq!(status_of(&reply), 502, "{reply}");
    assert_eq!(script.requests(), 4);
    let reply = raw(proxy.addr, post).await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    assert_eq!(script.connections(), 3);
}

#[tokio::test]
async fn a_head_response_has_no_body_and_the_connection_goes_on() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"HEAD /h HTTP/1.1\r\nHost: portal\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut s, b"\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "no body after a HEAD: {head:?}");
    s.write_all(b"GET /g HTTP/1.1\r\nHost: portal\r\nX-Case: 1\r\n\r\n")
        .await
        .unwrap();
    let reply = read_response(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.contains("GET /g HTTP/1.1"), "{reply}");
    // Still on the pass-through path (it keeps the field's spelling).
    assert!(reply.contains("\r\nX-Case: 1\r\n"), "{reply}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"POST /one HTTP/1.1\r\nHost: portal\r\nContent-Length: 3\r\n\r\nabcGET /two HTTP/1.1\r\nHost: portal\r\nX-Case: 1\r\n\r\n",
    )
    .await
    .unwrap();
    let first = read_response(&mut s).await;
    assert!(first.contains("POST /one HTTP/1.1"), "{first}");
    let second = read_response(&mut s).await;
    assert!(second.contains("GET /two HTTP/1.1"), "{second}");
    // Forwarded by the pass-through path (it keeps the field's spelling).
    assert!(second.contains("\r\nX-Case: 1\r\n"), "{second}");
}

#[tokio::test]
async fn a_connection_moves_to_hyper_for_a_request_this_path_does_not_serve() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).germany().start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let global = "/v1/customers/0a1b2c3d-0000-4000-8000-0000000000a1/users";
    let germany = "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de01/users";
    // The upstream echoes the head it got. Only the pass-through path keeps
    // the client's spelling of field names (hyper's `HeaderMap` lowercases
    // them), so `X-Case` tells which path forwarded a request.
    send(
        &mut s,
        format!("GET {global} HTTP/1.1\r\nHost: portal\r\nX-Case: 1\r\n\r\n"),
    )
    .await;
    let first = read_response(&mut s).await;
    assert_eq!(status_of(&first), 200, "{first}");
    assert!(first.contains("\r\nX-Case: 1\r\n"), "pass-through: {first}");
    // More fields than the pass-through path parses (within the limits):
    // hyper's, read again from the same bytes, body included.
    let many: String = (0..70).map(|i| format!("X-F{i}: v\r\n")).collect();
    send(
        &mut s,
        format!("POST {global} HTTP/1.1\r\nHost: portal\r\nX-Case: 1\r\n{many}Content-Length: 2\r\n\r\n{{}}"),
    )
    .await;
    let second = read_response(&mut s).await;
    assert_eq!(status_of(&second), 200, "{second}");
    assert!(
        second.contains(&format!("POST {global} HTTP/1.1")),
        "{second}"
    );
    assert!(second.contains("\r\nx-case: 1\r\n"), "hyper: {second}");
    // The connection stays with hyper: an answer, then a forward.
    send(
        &mut s,
        format!("POST {germany} HTTP/1.1\r\nHost: portal\r\nAccept: application/json\r\nContent-Length: 2\r\n\r\n{{}}"),
    )
    .await;
    let answer = read_response(&mut s).await;
    assert_eq!(status_of(&answer), 403, "{answer}");
    assert!(answer.contains("portal.microsoftazure.de") || answer.contains("portal.office.de"));
    send(
        &mut s,
        format!("GET {global} HTTP/1.1\r\nHost: portal\r\nX-Case: 1\r\n\r\n"),
    )
    .await;
    let last = read_response(&mut s).await;
    assert_eq!(status_of(&last), 200, "{last}");
    assert!(last.contains("\r\nx-case: 1\r\n"), "hyper: {last}");
    assert_eq!(
        script.requests(),
        3,
        "the intercepted request never reached the upstream"
    );
}

async fn send(s: &mut TcpStream, req: String) {
    s.write_all(req.as_bytes()).await.unwrap();
}

/// The lines of the request head the upstream got, sorted, names
/// lowercased, without the request line.
fn upstream_head(reply: &str) -> Vec<String> {
    let body = &reply[find(reply.as_bytes(), b"\r\n\r\n").unwrap() + 4..];
    let mut lines: Vec<String> = body
        .split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            format!("{}:{}", n.to_ascii_lowercase(), v.trim())
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn the_upstream_gets_the_same_head_from_both_paths() {
    let script = Script::start().await;
    let fast = ProxyBuilder::new(&script.url()).start().await;
    let hyper_only = ProxyBuilder::new(&script.url())
        .section("[server]\nhttp1_fast_path = false")
        .start()
        .await;
    let trusting = |fast_path: bool| {
        ProxyBuilder::new(&script.url())
            .section(&format!(
                "[server]\nhttp1_fast_path = {fast_path}\n[forwarding]\ntrusted_proxies = [\"127.0.0.0/8\"]"
            ))
            .start()
    };
    let (trusting_fast, trusting_hyper) = (trusting(true).await, trusting(false).await);
    for request in [
        "GET /a/./b//c?q=1 HTTP/1.1\r\nHost: portal.example\r\nX-Request-Id: fixed-1\r\nX-Case: 1\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: portal.example:8443\r\nX-Request-Id: fixed-2\r\nConnection: keep-alive, X-Hop\r\n\
         X-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\
         X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: outer.example\r\nForwarded: for=203.0.113.9\r\nVia: 1.0 edge\r\n\
         Cookie: a=1\r\nX-Case: 1\r\nContent-Length: 4\r\n\r\nbody",
    ] {
        for (a, b) in [(&fast, &hyper_only), (&trusting_fast, &trusting_hyper)] {
            let from_fast = raw(a.addr, request.as_bytes()).await;
            let from_hyper = raw(b.addr, request.as_bytes()).await;
            assert_eq!(status_of(&from_fast), 200, "{from_fast}");
            // Which path forwarded: only the pass-through path keeps the
            // client's spelling of field names.
            assert!(from_fast.contains("\r\nX-Case: 1\r\n"), "{from_fast}");
            assert!(from_hyper.contains("\r\nx-case: 1\r\n"), "{from_hyper}");
            let request_line = |r: &str| {
                let body = &r[find(r.as_bytes(), b"\r\n\r\n").unwrap() + 4..];
                body.lines().next().unwrap_or_default().to_string()
            };
            assert_eq!(request_line(&from_fast), request_line(&from_hyper));
            assert_eq!(upstream_head(&from_fast), upstream_head(&from_hyper), "{request}");
        }
    }
}

/// A keep-alive connection idle past the point where the proxy frees its
/// buffers (1 s) serves its next request, and a pipelined pair, as before.
#[tokio::test]
async fn an_idle_connection_serves_again_after_its_buffers_were_freed() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        s.write_all(
            b"GET /a HTTP/1.1\r\nHost: portal\r\n\r\nGET /b HTTP/1.1\r\nHost: portal\r\n\r\n",
        )
        .await
        .unwrap();
        let reply = read_until(&mut s, b"GET /b").await;
        assert_eq!(
            reply.matches("HTTP/1.1 200 OK").count(),
            2,
            "round {round}: {reply}"
        );
    }
    assert_eq!(script.connections(), 1);
}

/// A request that expected a 100 and is answered by the proxy (here a 400)
/// gets the answer at once, no 100, and the connection closes: the client
/// may or may not send the body it announced.
#[tokio::test]
async fn an_answered_request_that_expected_a_100_gets_no_100_and_closes() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"POST /v1/customers/a;b/users HTTP/1.1\r\nHost: portal\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let reply = read_to_close(&mut s).await;
    assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    assert!(!reply.contains("100 Continue"), "{reply}");
    assert_eq!(script.requests(), 0);
}

/// The next request head must be complete within
/// `server.header_read_timeout` of the previous answer, whether the proxy
/// answered it (policy) or forwarded it: a request sent in time is served
/// on the same connection; nothing, or part of a head, and the connection
/// closes once the timeout has passed, not before.
#[tokio::test]
async fn the_next_head_must_be_complete_within_the_header_read_timeout() {
    let script = Script::start().await;
    let timeout = Duration::from_millis(600);
    let proxy = ProxyBuilder::new(&script.url())
        .section("[server]\nheader_read_timeout = \"600ms\"")
        .section(
            "[[rules]]\nid = \"to-portal\"\nmatch.path = \"/dashboard/**\"\n\
             action.type = \"redirect\"\naction.status = 302\n\
             action.location = \"https://portal.azure.de/\"",
        )
        .start()
        .await;
    let answered_here = "/dashboard/users";
    let forwarded = "/v1/customers";
    let cases: [(&str, &[u8]); 4] = [
        (answered_here, b""),
        (answered_here, b"GET / HTTP/1.1\r\nHost: por"),
        (forwarded, b""),
        (forwarded, b"GET / HTTP/1.1\r\n"),
    ];
    for (path, rest) in cases {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: portal\r\n\r\n");
        let policy = path == answered_here;
        for round in 0..2 {
            send(&mut s, request.clone()).await;
            let reply = read_response(&mut s).await;
            let answered = std::time::Instant::now();
            if policy {
                assert_eq!(status_of(&reply), 302, "{reply}");
                assert!(reply.contains("x-portalgate-decision-id: "), "{reply}");
            } else {
                assert_eq!(status_of(&reply), 200, "{reply}");
            }
            if round == 0 {
                // Well within the timeout: the next request is served.
                tokio::time::sleep(timeout / 4).await;
                continue;
            }
            s.write_all(rest).await.unwrap();
            let tail = read_to_close(&mut s).await;
            assert!(tail.is_empty(), "{path} {rest:?}: {tail}");
            assert!(
                answered.elapsed() >= timeout - Duration::from_millis(50),
                "{path} {rest:?}: closed {:?} after the answer",
                answered.elapsed()
            );
        }
    }
}
