//! Bodies stream: 100 MiB up and down through the real binary while its
//! peak memory stays far below the body size.

use http::Request;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::backend::Repeat;
use crate::support::child::{config_for, Served};
use crate::support::*;

const SIZE: u64 = 100 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_mib_stream_both_ways_with_flat_memory() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&config_for(&backend.url(), ""), dir.path());
    let client: Client<_, Repeat> = Client::builder(TokioExecutor::new()).build_http();

    let resp = client
        .request(
            Request::post(format!("http://{}/upload", served.addr))
                .body(Repeat { remaining: SIZE })
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("received={SIZE}").as_bytes());

    let resp = client
        .request(
            Request::get(format!("http://{}/download?bytes={SIZE}", served.addr))
                .body(Repeat { remaining: 0 })
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        n += frame.unwrap().data_ref().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(n, SIZE);

    let peak_mib = served.peak_rss_kib() / 1024;
    eprintln!("peak RSS of portalgate after 2 x 100 MiB: {peak_mib} MiB");
    assert!(
        peak_mib < 40,
        "proxy memory grew with the body: {peak_mib} MiB"
    );
}
