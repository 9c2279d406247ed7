//! Accepting and serving client connections (TCP or TLS, HTTP/1.1 or HTTP/2).
//!
//! An HTTP/1.1 connection starts on the pass-through path
//! ([`crate::proxy::pass`]) when `server.http1_fast_path` is on; the first
//! request that path leaves to hyper hands the connection, with the bytes
//! already read, to hyper for the rest of its life. HTTP/2 (ALPN `h2`, or
//! the prior-knowledge preface) goes to hyper directly.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::churn::Churn;
use super::prefixed::Prefixed;
use super::snapshot::Snapshots;
use crate::config::{Limits, ServerSettings};
use crate::proxy::pass::{Client, Idle, Next, Readable};
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
    /// Becomes true when the drain starts: finish the request in flight,
    /// then close.
    pub stop: watch::Receiver<bool>,
    /// The same, read by the pass-through codec when it writes a response
    /// head: a plain load, where the watch channel's lock would be written
    /// by every connection on every core.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

/// HTTP settings: hyper's own limits sit above the configured ones, so that
/// requests just over a limit get the proxy's 414/431 with a body; only
/// far larger heads are refused by hyper's parser itself.
pub fn http_builder(settings: &ServerSettings, limits: &Limits) -> HttpBuilder {
    let mut b = auto::Builder::new(TokioExecutor::new());
    let head = limits.max_head_bytes();
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(head.max(16 * 1024))
        .max_headers(limits.max_headers * 2 + 32);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
        // Each stream may hold an upstream connection (HTTP/1.1): this
        // bounds them per client connection, as nginx's 128 does.
        .max_concurrent_streams(100)
        .max_pending_accept_reset_streams(50)
        .max_local_error_reset_streams(256);
    if settings.http2 {
        b
    } else {
        b.http1_only()
    }
}

/// Serves an accepted connection on this thread (TLS handshake first, when
/// the listener has TLS).
pub fn start(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Shared,
    watcher: Watcher,
) {
    match tls {
        None => {
            let info = ConnInfo { peer, tls: false };
            tokio::spawn(serve(tcp, info, shared, watcher, false));
        }
        Some(acceptor) => {
            tokio::spawn(async move {
                let timeout = shared.settings.tls_handshake_timeout;
                // The TLS state (~1.5 KiB) is boxed, during the handshake and
                // after: each layer of the connection's future would
                // otherwise keep its own room for it, for the connection's
                // whole life.
                let handshake = Box::pin(acceptor.accept(tcp));
                match tokio::time::timeout(timeout, handshake).await {
                    Ok(Ok(tls)) => {
                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        let tls = Box::new(tls);
                        serve(tls, ConnInfo { peer, tls: true }, shared, watcher, h2).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    }
}

async fn serve<I>(io: I, conn: ConnInfo, shared: Shared, watcher: Watcher, h2: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static + Readable,
{
    let gauge = shared.live.metrics().open_connections.clone();
    gauge.inc();
    // Decremented however the connection ends.
    struct Open(prometheus_client::metrics::gauge::Gauge);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let _open = Open(gauge);
    let mut force = shared.force.clone();
    // Polled again only when the forced stop's registration fired
    // (`Woken`): the task wakes once per request, and polling the `watch`
    // each time takes its lock to learn nothing happened.
    let forced = super::woken::Woken::new(async move {
        let _ = force.wait_for(|f| *f).await;
    });
    tokio::select! {
        biased;
        () = serve_http(io, conn, shared, watcher, h2) => {}
        () = forced => {}
    }
}

/// The pass-through path first (HTTP/1.1), then hyper.
async fn serve_http<I>(io: I, conn: ConnInfo, shared: Shared, watcher: Watcher, h2: bool)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static + Readable,
{
    let io = if shared.settings.http1_fast_path && !h2 {
        // Boxed: its state is a few KiB that an HTTP/2 connection, whose
        // task holds this future for its whole life, would carry unused.
        match Box::pin(pass_through(io, conn, &shared)).await {
            Some(io) => io,
            None => return,
        }
    } else {
        Prefixed::new(bytes::Bytes::new(), io)
    };
    let snapshots = Snapshots::new(shared.live.clone());
    let churn = Arc::new(Churn::default());
    let counted = churn.clone();
    let svc = service_fn(move |req| {
        // The snapshot at the request's start serves the whole request,
        // whatever reloads happen meanwhile.
        let proxy = snapshots.current();
        let churn = counted.clone();
        async move {
            let stream = churn.start();
            // Boxed when first polled: an HTTP/2 stream's task is then a
            // few hundred bytes while it waits to run and while its
            // response is sent, and the request's state (a few KiB) lives
            // only as long as it is needed: one allocation per request.
            let resp = crate::proxy::boxed(|| proxy.handle(req, conn)).await;
            stream.finish();
            Ok::<_, Infallible>(resp)
        }
    });
    let connection = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .into_owned();
    // Boxed: only connections hyper serves pay for its state.
    let mut connection = Box::pin(connection);
    // The drain, and too much churn, close the connection gracefully
    // (HTTP/2: GOAWAY; HTTP/1: after the response in flight). Holding the
    // watcher until the end keeps the drain waiting for this connection.
    let mut stop = shared.stop.clone();
    let mut closing = false;
    let result = loop {
        tokio::select! {
            biased;
            r = connection.as_mut() => break r,
            _ = stop.wait_for(|s| *s), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = churn.exceeded(), if !closing => {
                closing = true;
                if CHURN_WARNINGS.allow() {
                    tracing::warn!(
                        limit = super::churn::MIN_STREAMS,
                        "closing a connection that cancelled half or more of its requests (HTTP/2 rapid reset)"
                    );
                }
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    drop(watcher);
    if let Err(e) = result {
        tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
    }
}

/// Connections closed for churn come in floods under attack.
static CHURN_WARNINGS: crate::telemetry::throttle::Throttle =
    crate::telemetry::throttle::Throttle::new("connections closed for stream churn", 10);

/// Serves requests on the pass-through path until the connection closes
/// (`None`) or a request is hyper's: then the connection and the bytes
/// read so far are returned. The drain closes an idle connection at once
/// and a busy one after its response.
async fn pass_through<I>(io: I, conn: ConnInfo, shared: &Shared) -> Option<Prefixed<I>>
where
    I: AsyncRead + AsyncWrite + Unpin + Readable,
{
    let mut client = Client::new(io, conn);
    client.watch_drain(shared.draining.clone());
    let mut snapshot = arc_swap::Cache::new(&shared.live.proxy);
    // One wait for the drain for the connection's life: registering a new
    // one per request costs more than the request's own bookkeeping.
    let mut stop = shared.stop.clone();
    // Polled again only when the stop's registration fired (`Woken`):
    // not once per request.
    let mut stopping = std::pin::pin!(super::woken::Woken::new(async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    loop {
        client.start_deadline(shared.settings.header_read_timeout);
        if client.buf.is_empty() {
            let read = tokio::select! {
                biased;
                r = client.next_request() => r,
                // Polled again only while pending: its end ends the loop.
                () = stopping.as_mut() => Idle::Gone,
            };
            if read == Idle::Gone {
                return None;
            }
            // HTTP/2 with prior knowledge: hyper's.
            if client.buf.starts_with(b"PRI ") {
                break;
            }
        }
        // The snapshot in force, checked without touching its count (a
        // shared count written per request would bounce between cores).
        let proxy = snapshot.load();
        match proxy.pass(&mut client).await {
            Next::KeepAlive => {}
            Next::Close => return None,
            Next::Handoff => break,
        }
    }
    let (io, buf) = client.into_parts();
    Some(Prefixed::new(buf.freeze(), io))
}
