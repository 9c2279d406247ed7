//! Upstream and client faults, on every path a request can take: the
//! pass-through codec (keep-alive HTTP/1.1), hyper's HTTP/1 (here HTTP/1.0
//! requests) and HTTP/2 (prior knowledge). Each fault is answered the same
//! way whichever codec served the request.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin::{admin_get, counter, samples};
use crate::support::client::{find, h2c, raw, read_response, read_to_close, status_of};
use crate::support::proxy::{ProxyBuilder, RunningProxy};
use crate::support::script::Script;

/// The ways a request reaches the proxy.
#[derive(Debug, Clone, Copy)]
enum Wire {
    /// Keep-alive HTTP/1.1: the pass-through codec.
    Fast,
    /// HTTP/1.0: hyper's HTTP/1.
    Hyper,
    /// HTTP/2 with prior knowledge: hyper's HTTP/2.
    H2,
}

const WIRES: [Wire; 3] = [Wire::Fast, Wire::Hyper, Wire::H2];

/// A GET of `path` on `wire`: the status and the body as text.
async fn get(proxy: &RunningProxy, wire: Wire, path: &str) -> (u16, String) {
    match wire {
        Wire::Fast | Wire::Hyper => {
            let version = if matches!(wire, Wire::Fast) {
                "1.1"
            } else {
                "1.0"
            };
            let request = format!(
                "GET {path} HTTP/{version}\r\nHost: portal\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
            );
            let reply = raw(proxy.addr, request.as_bytes()).await;
            let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            (status_of(&reply), body.to_string())
        }
        Wire::H2 => {
            let mut sender = h2c(proxy.addr).await;
            let req = Request::get(format!("http://portal{path}"))
                .header("accept", "application/json")
                .body(Full::<Bytes>::default())
                .unwrap();
            let resp = sender.send_request(req).await.expect("an HTTP/2 response");
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.expect("a whole body");
            (
                status,
                String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            )
        }
    }
}

/// `portalgate_upstream_errors_total` of `kind`, once it reaches `n`
/// (requests are counted on the worker that served them, after the reply).
async fn upstream_errors_reach(proxy: &RunningProxy, kind: &str, n: f64) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = admin_get(proxy, "/metrics", None).await.text();
        let v = counter(
            &samples(&text),
            "portalgate_upstream_errors_total",
            &[("kind", kind)],
        );
        if v >= n || std::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn ambiguous_upstream_framing_is_a_502_on_every_path_and_never_reused() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    for (i, wire) in WIRES.into_iter().enumerate() {
        let (status, body) = get(&proxy, wire, "/cl-te").await;
        assert_eq!(status, 502, "{wire:?}: {body}");
        assert!(body.contains("upstream_protocol"), "{wire:?}: {body}");
        assert!(
            script.closed_reaches(i + 1).await,
            "{wire:?}: the connection that framed ambiguously was kept"
        );
    }
    assert_eq!(upstream_errors_reach(&proxy, "protocol", 3.0).await, 3.0);
}

#[tokio::test]
async fn a_malformed_first_chunk_is_a_502_with_a_body_counted_as_a_protocol_error() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    for wire in WIRES {
        let (status, body) = get(&proxy, wire, "/bad-chunk").await;
        assert_eq!(status, 502, "{wire:?}: {body}");
        assert!(body.contains("upstream_protocol"), "{wire:?}: {body}");
    }
    assert_eq!(upstream_errors_reach(&proxy, "protocol", 3.0).await, 3.0);
    // The well-framed chunked response still streams on every path.
    for wire in WIRES {
        let (status, body) = get(&proxy, wire, "/chunked").await;
        assert_eq!(status, 200, "{wire:?}");
        assert!(body.contains("hello"), "{wire:?}: {body}");
    }
}

/// Reads from `s` until the proxy closes it, or fails after 10 s.
async fn until_closed(s: &mut TcpStream) -> String {
    read_to_close(s).await
}

#[tokio::test]
async fn a_stalled_upstream_body_releases_both_connections_after_the_read_timeout() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url())
        .upstream("read_timeout = \"300ms\"")
        .start()
        .await;
    let mut closed = 0;
    for (path, version) in [
        ("/stall", "1.1"),
        ("/stall-chunked", "1.1"),
        ("/stall", "1.0"),
        ("/stall-chunked", "1.0"),
    ] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let request = format!("GET {path} HTTP/{version}\r\nHost: portal\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let reply = until_closed(&mut s).await;
        assert_eq!(status_of(&reply), 200, "{path} {version}: {reply}");
        closed += 1;
        assert!(
            script.closed_reaches(closed).await,
            "{path} HTTP/{version}: the stalled upstream connection was kept"
        );
    }
    // HTTP/2: the stream ends with an error; the upstream is let go.
    let mut sender = h2c(proxy.addr).await;
    let req = Request::get("http://portal/stall")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert!(resp.into_body().collect().await.is_err());
    assert!(script.closed_reaches(closed + 1).await);
    assert_eq!(
        upstream_errors_reach(&proxy, "read_timeout", 5.0).await,
        5.0
    );
}

#[tokio::test]
async fn a_client_that_goes_away_releases_the_upstream_it_waited_on() {
    let script = Script::start().await;
    // The read timeout is far away: only the client's leaving can end it.
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    for (i, version) in ["1.1", "1.0"].into_iter().enumerate() {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let request = format!("GET /stall HTTP/{version}\r\nHost: portal\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while find(&head, b"0123456789").is_none() {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the partial body");
            head.extend_from_slice(&chunk[..n]);
        }
        drop(s);
        assert!(
            script.closed_reaches(i + 1).await,
            "HTTP/{version}: the upstream stayed open after the client left"
        );
    }
    // HTTP/2: the client reads the head and part of the body, then closes
    // the connection.
    let mut sender = h2c(proxy.addr).await;
    let req = Request::get("http://portal/stall")
        .body(Full::<Bytes>::default())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.data_ref().map(|d| d.len()), Some(10));
    drop(body);
    drop(sender);
    assert!(
        script.closed_reaches(3).await,
        "HTTP/2: the upstream stayed open after the client left"
    );
}

/// Sends a 10-byte body one byte at a time, `gap` apart, after `head`.
async fn paced_upload(proxy: &RunningProxy, head: &str, gap: Duration) -> String {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    for b in b"0123456789" {
        tokio::time::sleep(gap).await;
        s.write_all(&[*b]).await.unwrap();
    }
    read_response(&mut s).await
}

#[tokio::test]
async fn a_slow_upload_to_a_healthy_backend_is_forwarded_not_timed_out() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url())
        .upstream("response_header_timeout = \"500ms\"")
        .start()
        .await;
    // 10 bytes over ~1.5 s: three times the response header timeout.
    for version in ["1.1", "1.0"] {
        let head =
            format!("POST /upload HTTP/{version}\r\nHost: portal\r\nContent-Length: 10\r\n\r\n");
        let reply = paced_upload(&proxy, &head, Duration::from_millis(150)).await;
        assert_eq!(status_of(&reply), 200, "HTTP/{version}: {reply}");
    }
    let chunked = "POST /upload HTTP/1.1\r\nHost: portal\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(chunked.as_bytes()).await.unwrap();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(b"1\r\nx\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let reply = read_response(&mut s).await;
    assert_eq!(status_of(&reply), 200, "chunked: {reply}");
    assert!(reply.ends_with("bytes=10"), "{reply}");
    assert_eq!(upstream_errors_reach(&proxy, "timeout", 0.0).await, 0.0);
}

#[tokio::test]
async fn a_stalled_upload_is_a_408_that_names_the_client() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url())
        .section("[server]\nclient_body_timeout = \"300ms\"")
        .start()
        .await;
    for version in ["1.1", "1.0"] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let head = format!(
            "POST /upload HTTP/{version}\r\nHost: portal\r\nAccept: application/json\r\nContent-Length: 10\r\n\r\n012"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let reply = read_response(&mut s).await;
        assert_eq!(status_of(&reply), 408, "HTTP/{version}: {reply}");
        assert!(reply.contains("client_timeout"), "{reply}");
        assert!(reply.contains("the client"), "{reply}");
    }
    let text = admin_get(&proxy, "/metrics", None).await.text();
    let s = samples(&text);
    assert_eq!(counter(&s, "portalgate_upstream_errors_total", &[]), 0.0);
}

#[tokio::test]
async fn tiny_chunks_go_upstream_in_a_few_large_ones() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut body = Vec::with_capacity(600_000);
    for _ in 0..100_000 {
        body.extend_from_slice(b"1\r\nx\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: portal\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&body).await.unwrap();
    let reply = read_response(&mut s).await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let counts = reply.rsplit("\r\n\r\n").next().unwrap_or("");
    let (chunks, bytes) = counts
        .strip_prefix("chunks=")
        .and_then(|r| r.split_once(" bytes="))
        .map(|(c, b)| (c.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
        .unwrap_or_else(|| panic!("{reply}"));
    assert_eq!(bytes, 100_000);
    // One upstream chunk per read of the client's bytes, not per chunk.
    assert!(
        chunks <= 1_000,
        "{chunks} upstream chunks for 100000 tiny ones"
    );
}

/// HTTP/2 rapid reset, paced: every stream is cancelled a moment after it
/// was sent. The connection is closed (GOAWAY) once half of at least 100
/// streams were cancelled, and the cancelled exchanges keep their upstream
/// connections (they are read to the end and pooled), so the upstream sees
/// a handful of connections, not one per reset.
#[tokio::test]
async fn paced_http2_rapid_reset_gets_goaway_and_costs_few_upstream_connections() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut sender = h2c(proxy.addr).await;
    let mut sent = 0;
    for _ in 0..2_000 {
        if sender.ready().await.is_err() {
            break;
        }
        let req = Request::get("http://portal/slow")
            .body(Full::<Bytes>::default())
            .unwrap();
        // Sent, then reset before the response (the upstream takes 20 ms).
        let reset = tokio::time::timeout(Duration::from_millis(2), sender.send_request(req)).await;
        match reset {
            Err(_) => sent += 1,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => break,
        }
    }
    assert!(sent >= 100, "closed after only {sent} resets");
    assert!(sent < 400, "{sent} resets and the connection is still open");
    let connects = script.connections();
    assert!(
        connects <= sent / 4,
        "{connects} upstream connections for {sent} reset streams"
    );
    // The proxy still serves everyone else.
    let (status, _) = get(&proxy, Wire::Fast, "/after").await;
    assert_eq!(status, 200);
}

/// `Expect: 100-continue` is answered by the proxy: the client gets its
/// 100, sends the body, and the tiny chunks still go upstream in a few
/// large ones.
#[tokio::test]
async fn an_expect_continue_upload_gets_its_100_and_is_coalesced_too() {
    let script = Script::start().await;
    let proxy = ProxyBuilder::new(&script.url()).start().await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"POST /upload HTTP/1.1\r\nHost: portal\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    // The client waits for the 100 before it sends anything more.
    let interim = read_response(&mut s).await;
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n\r\n"),
        "{interim}"
    );
    let mut body = Vec::new();
    for _ in 0..50_000 {
        body.extend_from_slice(b"1\r\nx\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&body).await.unwrap();
    let reply = read_response(&mut s).await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let chunks: usize = reply
        .split("chunks=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{reply}"));
    assert!(reply.ends_with("bytes=50000"), "{reply}");
    assert!(
        chunks <= 500,
        "{chunks} upstream chunks for 50000 tiny ones"
    );
}
