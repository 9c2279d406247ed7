//! Upstream failures tell the truth: 502 for a dead upstream, 504 for a slow
//! one, each with a body in the format the client asked for.

use http::Request;
use http_body_util::Full;

use crate::support::client::send;
use crate::support::*;

#[tokio::test]
async fn dead_upstream_is_502_with_json_body() {
    let refused = Refused::new();
    let proxy = ProxyBuilder::new(&format!("http://{}", refused.addr))
        .start()
        .await;
    let reply = send(
        Request::get(proxy.url("/v1/customers"))
            .header("accept", "application/json")
            .header("x-request-id", "req-502")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["status"], 502);
    assert_eq!(v["code"], "upstream_connect");
    assert_eq!(v["request_id"], "req-502");
    assert_eq!(v["title"], "Bad Gateway");
    assert_eq!(reply.header("x-request-id"), "req-502");
}

#[tokio::test]
async fn dead_upstream_is_502_with_html_for_browsers() {
    let refused = Refused::new();
    let proxy = ProxyBuilder::new(&format!("http://{}", refused.addr))
        .start()
        .await;
    let reply = send(
        Request::get(proxy.url("/"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 502);
    assert!(reply.header("content-type").starts_with("text/html"));
    let page = reply.text();
    assert!(page.contains("<h1>502 Bad Gateway</h1>"), "{page}");
    assert!(page.contains(reply.header("x-request-id")));
}

#[tokio::test]
async fn slow_upstream_is_504_with_a_body() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .upstream("response_header_timeout = \"200ms\"")
        .start()
        .await;
    let reply = send(
        Request::get(proxy.url("/slow?ms=3000"))
            .header("accept", "text/plain")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 504);
    assert!(reply.header("content-type").starts_with("text/plain"));
    assert!(
        reply.text().starts_with("504 Gateway Timeout\n"),
        "{}",
        reply.text()
    );
    assert!(reply.text().contains("response header timeout"));
}

#[tokio::test]
async fn upstream_closing_without_answer_is_502() {
    // A "backend" that accepts and closes at once.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    let proxy = ProxyBuilder::new(&format!("http://{addr}")).start().await;
    let reply = crate::support::client::get(&proxy.url("/x")).await;
    assert_eq!(reply.status, 502);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["code"], "upstream_protocol");
}

#[tokio::test]
async fn connect_timeout_is_504() {
    // A listener that never accepts, with its accept queue filled: the
    // kernel drops further SYNs, so connecting to it times out.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        if let Ok(Ok(c)) =
            tokio::time::timeout(std::time::Duration::from_millis(300), s.connect(addr)).await
        {
            fillers.push(c);
        }
    }
    let proxy = ProxyBuilder::new(&format!("http://{addr}"))
        .upstream("connect_timeout = \"300ms\"")
        .start()
        .await;
    let reply = crate::support::client::get(&proxy.url("/x")).await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["code"], "upstream_connect_timeout");
    drop(listener);
}
