//! Accepting and serving client connections (TCP or TLS, HTTP/1.1 or HTTP/2).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Limits, ServerSettings};
use crate::proxy::ConnInfo;
use crate::server::reload::Live;

/// The connection builder shared by all listeners.
pub type HttpBuilder = auto::Builder<TokioExecutor>;

/// A bound listener and its TLS acceptor, if any.
pub struct Bound {
    pub listener: TcpListener,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// What every connection task needs.
#[derive(Clone)]
pub struct Shared {
    pub builder: Arc<HttpBuilder>,
    pub live: Arc<Live>,
    pub settings: ServerSettings,
    /// Becomes true when the drain timeout has passed: close now.
    pub force: watch::Receiver<bool>,
}

/// HTTP settings: hyper's own limits sit above the configured ones, so that
/// requests just over a limit get the proxy's 414/431 with a body; only
/// far larger heads are refused by hyper's parser itself.
pub fn http_builder(settings: &ServerSettings, limits: &Limits) -> HttpBuilder {
    let mut b = auto::Builder::new(TokioExecutor::new());
    let head = limits.max_header_bytes * 2 + limits.max_uri_bytes * 2 + 8192;
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(head.max(16 * 1024))
        .max_headers(limits.max_headers * 2 + 32);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
        .max_concurrent_streams(256);
    if settings.http2 {
        b
    } else {
        b.http1_only()
    }
}

/// Accepts until `stop` turns true, then drops the listener.
pub async fn accept_loop(
    bound: Bound,
    shared: Shared,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            a = bound.listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let watcher = graceful.watcher();
        match bound.tls.clone() {
            None => {
                tokio::spawn(serve(tcp, ConnInfo { peer, tls: false }, shared, watcher));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let timeout = shared.settings.tls_handshake_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            serve(tls, ConnInfo { peer, tls: true }, shared, watcher).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn serve<I>(io: I, conn: ConnInfo, shared: Shared, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let live = shared.live.clone();
    let gauge = live.metrics().open_connections.clone();
    gauge.inc();
    // Decremented however the connection ends.
    struct Open(prometheus_client::metrics::gauge::Gauge);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let _open = Open(gauge);
    let svc = service_fn(move |req| {
        // The snapshot at the request's start serves the whole request,
        // whatever reloads happen meanwhile.
        let proxy = live.proxy.load_full();
        async move { Ok::<_, Infallible>(proxy.handle(req, conn).await) }
    });
    let connection = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .into_owned();
    let connection = watcher.watch(connection);
    let mut force = shared.force;
    tokio::select! {
        r = connection => {
            if let Err(e) = r {
                tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
            }
        }
        _ = force.wait_for(|f| *f) => {}
    }
}
