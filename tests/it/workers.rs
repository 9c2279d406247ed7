//! Worker threads (`server.workers`): the accepting thread hands each new
//! connection to the next worker, the workers share one idle upstream
//! pool, and the drain ends the connections of every worker.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::client::{get, read_to_close, status_of};
use crate::support::*;

fn two_workers(backend: &Backend) -> ProxyBuilder {
    ProxyBuilder::new(&backend.url()).section("[server]\nworkers = 2")
}

#[tokio::test]
async fn sequential_connections_on_two_workers_share_one_upstream_connection() {
    let backend = Backend::start().await;
    let proxy = two_workers(&backend).start().await;
    // Each request on a new client connection: the workers take turns.
    for i in 0..20 {
        let reply = get(&proxy.url(&format!("/echo/{i}"))).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(backend.seen().len(), 20);
    assert_eq!(
        backend.connections(),
        1,
        "the upstream connection goes back to the pool before the response's last \
         write, so the next request finds it, on whichever worker"
    );
}

#[tokio::test]
async fn the_drain_finishes_requests_in_flight_on_every_worker() {
    let backend = Backend::start().await;
    let mut proxy = two_workers(&backend).start().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(b"GET /slow?ms=400 HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        clients.push(s);
    }
    // All four are at the backend (one upstream connection each).
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.connections() < 4 {
        assert!(
            Instant::now() < deadline,
            "requests never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stopped = proxy.begin_stop();
    for mut s in clients {
        let raw = read_to_close(&mut s).await;
        assert_eq!(status_of(&raw), 200, "{raw}");
        assert!(raw.ends_with("slow done"), "{raw}");
        assert!(
            raw.to_ascii_lowercase().contains("connection: close"),
            "a response written after the drain started announces the close: {raw}"
        );
    }
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the drain ends once the requests in flight are done")
        .unwrap();
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "no worker accepts after the drain"
    );
}
