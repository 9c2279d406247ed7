//! HTTP/1.1 Upgrade (WebSocket): tunnelled only when the backend answers 101.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::client::{read_response, status_of};
use crate::support::*;

const UPGRADE: &str = "Host: portal\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[tokio::test]
async fn websocket_upgrade_tunnels_bytes_both_ways() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(format!("GET /ws HTTP/1.1\r\n{UPGRADE}").as_bytes())
        .await
        .unwrap();
    let head = read_response(&mut s).await;
    assert_eq!(status_of(&head), 101, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    for msg in [&b"hello through the tunnel"[..], &[0u8, 1, 2, 255][..]] {
        s.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("echo within 5 s")
            .unwrap();
        assert_eq!(buf, msg);
    }
}

#[tokio::test]
async fn refused_upgrade_stays_plain_http() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(format!("GET /no-upgrade HTTP/1.1\r\n{UPGRADE}").as_bytes())
        .await
        .unwrap();
    let first = read_response(&mut s).await;
    assert_eq!(status_of(&first), 200, "{first}");
    assert!(first.ends_with("plain answer"), "{first}");
    // The connection is still HTTP, not a tunnel: a second request is parsed.
    s.write_all(b"GET /echo HTTP/1.1\r\nHost: portal\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let second = read_response(&mut s).await;
    assert_eq!(status_of(&second), 200, "{second}");
    assert!(
        second.to_ascii_lowercase().contains("x-echo-method: get"),
        "{second}"
    );
}

#[tokio::test]
async fn upgrade_headers_without_connection_token_are_not_an_upgrade() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let reply = crate::support::client::raw(
        proxy.addr,
        b"GET /echo HTTP/1.1\r\nHost: portal\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let seen = backend.only();
    assert!(!seen.headers.contains_key("upgrade"));
}

/// An upgrade to a protocol not in `forwarding.upgrade_protocols` (h2c:
/// HTTP/2 requests on the switched connection would never be judged) is
/// forwarded as a plain request, without `Upgrade`; a backend that switches
/// anyway gets a 502, not a tunnel.
#[tokio::test]
async fn only_allowed_protocols_are_switched_to() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    for (i, protocol) in ["h2c", "H2C", "websocket, h2c", "tls/1.0", "foo"]
        .iter()
        .enumerate()
    {
        let request = format!(
            "GET /echo/{i} HTTP/1.1\r\nHost: portal\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: {protocol}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        );
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let reply = read_response(&mut s).await;
        assert_eq!(status_of(&reply), 200, "{protocol}: {reply}");
        let seen = backend.seen().pop().unwrap();
        assert!(
            !seen.headers.contains_key("upgrade") && !seen.headers.contains_key("http2-settings"),
            "{protocol}: {:?}",
            seen.headers
        );
        // The backend's /ws switches whatever was asked.
        let request = request.replace(&format!("/echo/{i}"), "/ws");
        let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let reply = read_response(&mut s).await;
        assert_eq!(status_of(&reply), 502, "{protocol}: {reply}");
    }
}
