//! Forwarding: methods, bodies, headers, hop-by-hop removal, forwarding
//! headers for trusted and untrusted peers, request ids, Expect.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::AsyncWriteExt;

use crate::support::client::{self, raw, read_response, send, status_of};
use crate::support::*;

#[tokio::test]
async fn methods_bodies_and_headers_pass_intact() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    for (i, method) in ["GET", "POST", "PUT", "DELETE", "PATCH"].iter().enumerate() {
        let body = if *method == "GET" {
            String::new()
        } else {
            format!("{{\"n\":{i}}}")
        };
        let reply = send(
            Request::builder()
                .method(*method)
                .uri(proxy.url(&format!("/v1/customers/c{i}/users?$top=5&x=%2Fy")))
                .header("content-type", "application/json")
                .header("x-custom", format!("value-{i}"))
                .header("authorization", "Bearer token-for-backend")
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-echo-method"), *method);
        assert_eq!(reply.text(), body);
        let seen = backend.seen().pop().unwrap();
        assert_eq!(seen.method, *method);
        assert_eq!(seen.uri, format!("/v1/customers/c{i}/users?$top=5&x=%2Fy"));
        assert_eq!(seen.headers["x-custom"], format!("value-{i}").as_str());
        assert_eq!(seen.headers["content-type"], "application/json");
        assert_eq!(seen.headers["authorization"], "Bearer token-for-backend");
        assert_eq!(seen.headers["host"], proxy.addr.to_string().as_str());
        assert_eq!(seen.body, body.as_bytes());
    }
    assert_eq!(backend.seen().len(), 5);
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let reply = send(
        Request::get(proxy.url("/echo"))
            .header("connection", "x-private-hop, keep-alive")
            .header("x-private-hop", "do-not-forward")
            .header("keep-alive", "timeout=9")
            .header("te", "trailers")
            .header("proxy-authorization", "Basic c2VjcmV0")
            .header("trailer", "x-foo")
            .header("x-kept", "yes")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = backend.only();
    for name in [
        "x-private-hop",
        "keep-alive",
        "te",
        "proxy-authorization",
        "trailer",
        "upgrade",
    ] {
        assert!(
            !seen.headers.contains_key(name),
            "{name} reached the backend"
        );
    }
    assert_eq!(seen.headers["x-kept"], "yes");
    // The backend's own hop-by-hop headers do not reach the client.
    assert!(!reply.headers.contains_key("x-backend-private"));
    assert!(!reply.headers.contains_key("keep-alive"));
    assert_eq!(reply.header("via"), "1.1 portalgate");
}

#[tokio::test]
async fn forwarding_headers_replaced_for_untrusted_peer() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    send(
        Request::get(proxy.url("/echo"))
            .header("x-forwarded-for", "203.0.113.66")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "forged.example")
            .header("forwarded", "for=203.0.113.66;proto=https")
            .header("via", "1.1 client-side")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let h = backend.only().headers;
    let host = proxy.addr.to_string();
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], host.as_str());
    assert_eq!(
        h["forwarded"],
        format!("for=127.0.0.1;host=\"{host}\";proto=http").as_str()
    );
    assert_eq!(h["via"], "1.1 client-side, 1.1 portalgate");
}

#[tokio::test]
async fn forwarding_headers_appended_for_trusted_peer() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .section("[forwarding]\ntrusted_proxies = [\"127.0.0.0/8\"]")
        .start()
        .await;
    send(
        Request::get(proxy.url("/echo"))
            .header("x-forwarded-for", "203.0.113.66")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "portal.example.de")
            .header("forwarded", "for=203.0.113.66;proto=https")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let h = backend.only().headers;
    let host = proxy.addr.to_string();
    assert_eq!(h["x-forwarded-for"], "203.0.113.66, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "portal.example.de");
    assert_eq!(
        h["forwarded"],
        format!("for=203.0.113.66;proto=https, for=127.0.0.1;host=\"{host}\";proto=http").as_str()
    );
}

#[tokio::test]
async fn request_id_is_kept_or_generated_and_echoed() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let reply = send(
        Request::get(proxy.url("/echo"))
            .header("x-request-id", "client-chosen-42")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.header("x-request-id"), "client-chosen-42");
    assert_eq!(
        backend.seen()[0].headers["x-request-id"],
        "client-chosen-42"
    );

    let reply = send(
        Request::get(proxy.url("/echo"))
            .header("x-request-id", "bad id with spaces")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let generated = reply.header("x-request-id").to_string();
    assert_eq!(generated.len(), 32);
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        backend.seen()[1].headers["x-request-id"],
        generated.as_str()
    );

    let other = client::get(&proxy.url("/echo")).await;
    assert_ne!(other.header("x-request-id"), generated);
}

#[tokio::test]
async fn upstream_host_can_replace_client_host() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .upstream("preserve_host = false")
        .start()
        .await;
    client::get(&proxy.url("/echo")).await;
    let seen = backend.only();
    assert_eq!(seen.headers["host"], backend.addr.to_string().as_str());
    assert_eq!(
        seen.headers["x-forwarded-host"],
        proxy.addr.to_string().as_str()
    );
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .section("[limits]\nmax_request_body_bytes = 1000")
        .start()
        .await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: portal\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = read_response(&mut s).await;
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim:?}"
    );
    s.write_all(b"hello").await.unwrap();
    let fin = read_response(&mut s).await;
    assert_eq!(status_of(&fin), 200, "{fin}");
    assert!(fin.ends_with("hello"));
    let seen = backend.only();
    assert_eq!(seen.body, "hello");
    assert!(!seen.headers.contains_key("expect"));

    // Over the limit: the final status comes at once, no 100, no body read.
    let reply = raw(
        proxy.addr,
        b"POST /echo HTTP/1.1\r\nHost: portal\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 413, "{reply}");
    assert_eq!(backend.seen().len(), 1);
}

#[tokio::test]
async fn http2_prior_knowledge_on_cleartext() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let mut sender = client::h2c(proxy.addr).await;
    let resp = sender
        .send_request(
            Request::post(format!("http://{}/echo", proxy.addr))
                .body(Full::new(Bytes::from_static(b"over h2c")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let seen = backend.only();
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert_eq!(seen.body, "over h2c");
    assert_eq!(seen.headers["host"], proxy.addr.to_string().as_str());
    assert_eq!(seen.headers["via"], "2 portalgate");
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    for i in 0..20 {
        let reply = client::get(&proxy.url(&format!("/echo/{i}"))).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(backend.seen().len(), 20);
    assert_eq!(
        backend.connections(),
        1,
        "sequential requests should share one pooled connection"
    );
}

#[tokio::test]
async fn a_half_read_response_never_returns_its_connection_to_the_pool() {
    use http_body_util::BodyExt;
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    // Read one frame of a large download, then drop the response.
    let resp = client::http1()
        .get(proxy.url("/download?bytes=10000000").parse().unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
    drop(body);
    // The next request gets its own clean answer, on a new connection.
    let reply = send(
        Request::post(proxy.url("/echo"))
            .body(Full::new(Bytes::from_static(b"after")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "after");
    assert_eq!(backend.connections(), 2);
}

#[tokio::test]
async fn trace_context_reaches_the_upstream() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    send(
        Request::get(proxy.url("/echo"))
            .header("traceparent", tp)
            .header("tracestate", "congo=t61rcWkgMzE")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let seen = backend.only();
    assert_eq!(seen.headers["traceparent"], tp);
    assert_eq!(seen.headers["tracestate"], "congo=t61rcWkgMzE");
}
