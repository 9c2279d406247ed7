//! The sample partner-portal backend used by `portalgate demo` and by tests.
//!
//! An in-process hyper server that answers like Partner Center: the REST API
//! under `/v1/customers/{customer-tenant-id}/...` with plausible JSON, and a
//! few HTML pages for the web UI paths. Routing is ASCII case-insensitive,
//! as Partner Center's own (ASP.NET) routing is. Every response carries
//! `x-demo-backend: reached`, so a reader can tell it came from the backend.

mod routes;

use std::convert::Infallible;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The sample Germany (Microsoft Cloud Germany) customer tenant.
pub const GERMANY_TENANT: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
/// The sample global customer tenant.
pub const GLOBAL_TENANT: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";

/// Serves the demo backend on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let conn = builder
            .serve_connection(
                TokioIo::new(tcp),
                service_fn(|req| async move { Ok::<_, Infallible>(routes::handle(req).await) }),
            )
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
