//! TLS: termination with ALPN (HTTP/2 and HTTP/1.1), SNI certificate
//! choice, TLS 1.2/1.3 only, and an https upstream verified against a CA.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::certs::Ca;
use crate::support::client::{h2_request, tls_connect};
use crate::support::*;

/// A TLS-terminating proxy for `portal.test` (its certificate signed by the
/// returned CA) in front of a cleartext backend.
async fn tls_proxy() -> (Ca, Backend, proxy::RunningProxy) {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["portal.test"]);
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .tls_cert(&leaf.cert_pem, &leaf.key_pem, &[])
        .start()
        .await;
    (ca, backend, proxy)
}

#[tokio::test]
async fn http2_over_tls_with_alpn() {
    let (ca, backend, proxy) = tls_proxy().await;
    let (tls, alpn) = tls_connect(
        proxy.addr,
        ca.client_config(&[b"h2", b"http/1.1"]),
        "portal.test",
    )
    .await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let reply = h2_request(
        tls,
        Request::post("https://portal.test/v1/customers/x/users")
            .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "{\"a\":1}");
    let seen = backend.only();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    assert_eq!(seen.headers["host"], "portal.test");
    assert_eq!(seen.headers["via"], "2 portalgate");
}

#[tokio::test]
async fn http1_over_tls_when_client_offers_only_http1() {
    let (ca, backend, proxy) = tls_proxy().await;
    let (tls, alpn) =
        tls_connect(proxy.addr, ca.client_config(&[b"http/1.1"]), "portal.test").await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(
            Request::get("/echo")
                .header("host", "portal.test")
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_11);
    assert_eq!(backend.only().headers["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn certificate_is_chosen_by_sni() {
    let ca = Ca::new("test CA");
    let de = ca.leaf(&["portal.example.de"]);
    let com = ca.leaf(&["portal.example.com"]);
    let fallback = ca.leaf(&["default.test"]);
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .tls_cert(&de.cert_pem, &de.key_pem, &["portal.example.de"])
        .tls_cert(&com.cert_pem, &com.key_pem, &["portal.example.com"])
        .tls_cert(&fallback.cert_pem, &fallback.key_pem, &[])
        .start()
        .await;
    for (sni, leaf) in [("portal.example.de", &de), ("portal.example.com", &com)] {
        let (tls, _) = tls_connect(proxy.addr, ca.client_config(&[]), sni).await;
        let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert_eq!(served, leaf.der, "wrong certificate for {sni}");
    }
    // An unknown name gets the default certificate (and fails verification
    // for that name, as it should).
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(ca.client_config(&[])));
    let name = rustls::pki_types::ServerName::try_from("other.test").unwrap();
    let err = connector.connect(name, tcp).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn tls_1_1_and_below_are_refused_and_1_2_works() {
    let (ca, _backend, proxy) = tls_proxy().await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let (tls, _) = tls_connect(proxy.addr, tls12, "portal.test").await;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    // rustls cannot speak TLS 1.1; a raw TLS 1.0 ClientHello gets an alert.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    // Minimal TLS 1.0 ClientHello: record version 3.1, client_version 3.1.
    let hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x00, 0x2d, // record: handshake, TLS 1.0, length 45
        0x01, 0x00, 0x00, 0x29, // ClientHello, length 41
        0x03, 0x01, // client_version TLS 1.0
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,    // random
        0x00, // session id length
        0x00, 0x02, 0x00, 0x2f, // one cipher suite: TLS_RSA_WITH_AES_128_CBC_SHA
        0x01, 0x00, // null compression
    ];
    tcp.write_all(hello).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        n >= 1 && buf[0] == 0x15,
        "expected a TLS alert, got {:?}",
        &buf[..n]
    );
}

#[tokio::test]
async fn https_upstream_verified_with_configured_ca() {
    let ca = Ca::new("upstream CA");
    let leaf = ca.leaf(&["backend.internal"]);
    let backend = Backend::start_tls(leaf.server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let proxy = ProxyBuilder::new(&format!("https://{}", backend.addr))
        .upstream(&format!("ca_file = {:?}", ca_path.display().to_string()))
        .upstream("sni = \"backend.internal\"")
        .start()
        .await;
    let reply = crate::support::client::get(&proxy.url("/echo")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(backend.only().uri, "/echo");
}

#[tokio::test]
async fn https_upstream_with_untrusted_or_misnamed_certificate_is_502() {
    let ca = Ca::new("upstream CA");
    let other = Ca::new("some other CA");
    let leaf = ca.leaf(&["backend.internal"]);
    let backend = Backend::start_tls(leaf.server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let right = dir.path().join("right.pem");
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&right, ca.pem()).unwrap();
    std::fs::write(&wrong, other.pem()).unwrap();
    for (ca_file, sni) in [
        (&wrong, "backend.internal"),
        (&right, "not-the-backend.internal"),
    ] {
        let proxy = ProxyBuilder::new(&format!("https://{}", backend.addr))
            .upstream(&format!("ca_file = {:?}", ca_file.display().to_string()))
            .upstream(&format!("sni = {sni:?}"))
            .start()
            .await;
        let reply = crate::support::client::get(&proxy.url("/echo")).await;
        assert_eq!(reply.status, 502, "{}", reply.text());
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(v["code"], "upstream_tls");
    }
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn certificates_rotate_on_reload_and_open_connections_continue() {
    let ca = Ca::new("test CA");
    let old = ca.leaf(&["portal.test"]);
    let new = ca.leaf(&["portal.test"]);
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .section("[server]\nwatch = false")
        .tls_cert(&old.cert_pem, &old.key_pem, &[])
        .start()
        .await;
    let (tls, _) = tls_connect(proxy.addr, ca.client_config(&[b"http/1.1"]), "portal.test").await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], old.der);
    let (mut open, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = || {
        Request::get("/echo")
            .header("host", "portal.test")
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    assert_eq!(open.send_request(request()).await.unwrap().status(), 200);

    // Rotate the files, then reload.
    std::fs::write(proxy.dir.path().join("cert0.pem"), &new.cert_pem).unwrap();
    std::fs::write(proxy.dir.path().join("key0.pem"), &new.key_pem).unwrap();
    let r = crate::support::client::send(
        Request::post(format!("http://{}/reload", proxy.admin))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let (tls, _) = tls_connect(proxy.addr, ca.client_config(&[]), "portal.test").await;
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0],
        new.der,
        "new handshakes get the new certificate"
    );
    let resp = open.send_request(request()).await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the connection opened before the rotation continues"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_file_is_picked_up_by_the_watcher() {
    let ca = Ca::new("test CA");
    let old = ca.leaf(&["portal.test"]);
    let new = ca.leaf(&["portal.test"]);
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .tls_cert(&old.cert_pem, &old.key_pem, &[])
        .start()
        .await;
    // Replace both files the way a Secret update does: all at once.
    let tmp = proxy.dir.path().join("rotate");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::write(tmp.join("cert0.pem"), &new.cert_pem).unwrap();
    std::fs::write(tmp.join("key0.pem"), &new.key_pem).unwrap();
    std::fs::rename(tmp.join("key0.pem"), proxy.dir.path().join("key0.pem")).unwrap();
    std::fs::rename(tmp.join("cert0.pem"), proxy.dir.path().join("cert0.pem")).unwrap();
    // Bounded wait for the watcher's reload to reach new handshakes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (tls, _) = tls_connect(proxy.addr, ca.client_config(&[]), "portal.test").await;
        if tls.get_ref().1.peer_certificates().unwrap()[0] == new.der {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not served within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A keep-alive TLS connection idle past the point where the proxy frees
/// its buffers (1 s) waits for readability through rustls and serves its
/// next requests as before, also two sent in one write.
#[tokio::test]
async fn an_idle_tls_connection_serves_again_after_its_buffers_were_freed() {
    let (ca, backend, proxy) = tls_proxy().await;
    let (mut tls, _) =
        tls_connect(proxy.addr, ca.client_config(&[b"http/1.1"]), "portal.test").await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = b"GET /echo HTTP/1.1\r\nHost: portal.test\r\n\r\n";
    let mut replies = 0;
    let mut read = Vec::new();
    for round in [1usize, 2] {
        // Idle for longer than the proxy keeps buffers of a quiet connection.
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        let burst: Vec<u8> = get
            .iter()
            .copied()
            .cycle()
            .take(get.len() * round)
            .collect();
        tls.write_all(&burst).await.unwrap();
        let want = replies + round;
        let mut chunk = [0u8; 4096];
        while read.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count() < want {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut chunk))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&read));
            read.extend_from_slice(&chunk[..n]);
        }
        replies = want;
    }
    assert_eq!(backend.seen().len(), 3);
}
