//! The upstream connection pool.
//!
//! A small pool over hyper's `client::conn::http1`, built for the proxy's one
//! upstream: connections are created only when no idle one is ready, each
//! connection's task is spawned once, and a connection returns to the pool
//! when the response body that used it has been read to the end ([`Lease`]).
//! An unfinished body drops its lease, and hyper closes that connection, so
//! a half-read response can never be mistaken for the next one.
//!
//! A request is retried on a fresh connection only when hyper hands it back
//! unsent (the pooled connection had closed), so nothing is sent twice.
//! Idle connections are reused newest first and expire after `idle_timeout`.
//!
//! The pass-through codec ([`crate::proxy::pass`]) speaks HTTP/1.1 itself
//! and takes raw [`Stream`]s from the same pool: one idle store, one cap
//! (`pool_max_idle` for both kinds together), one expiry. The store is
//! split into one shard per core, each holding its share of the cap: a
//! thread returns and takes connections from its own shard (a lock no
//! other core writes), and takes from the others only when its own is
//! empty. A raw connection
//! returns only after a complete, well-framed response. Whether a request
//! may be sent again on a new connection is one rule for both codecs,
//! [`may_resend`].

use std::error::Error as StdError;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::body::ForwardBody;
use super::stream::Stream;
use crate::config::Upstream;

/// Why a forwarded request failed on the upstream side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The connection was refused or the host unreachable.
    Connect,
    /// The TCP connect and TLS handshake did not finish within `connect_timeout`.
    ConnectTimeout,
    /// The TLS handshake with the upstream failed (certificate, name, protocol).
    Tls,
    /// The upstream closed or broke the connection, or sent an invalid response.
    Protocol,
}

/// A failed exchange with the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made.
    #[error("connecting to the upstream failed: {0:?}")]
    Connect(UpstreamFailure, #[source] Option<io::Error>),
    /// The request or response failed on an established connection.
    #[error("the upstream exchange failed")]
    Exchange(#[source] hyper::Error),
}

/// The pool for one upstream.
#[derive(Debug, Clone)]
pub struct UpstreamPool {
    inner: Arc<Inner>,
}

struct Inner {
    /// Idle connections, one shard per core.
    idle: Box<[Mutex<IdleConns>]>,
    /// What one shard holds at most (together: `pool_max_idle`).
    shard_cap: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    host: String,
    port: u16,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Idle connections of both kinds, newest last, capped together.
#[derive(Debug, Default)]
struct IdleConns {
    http: Vec<(SendRequest<ForwardBody>, Instant)>,
    raw: Vec<(Stream, Instant)>,
}

impl IdleConns {
    fn len(&self) -> usize {
        self.http.len() + self.raw.len()
    }
}

/// Whether a request may go out again on a new connection after its pooled
/// connection failed: always when nothing of it was sent; after it was
/// sent (the upstream closed before any response byte), only when sending
/// it twice cannot repeat an effect: an idempotent method (RFC 9110
/// §9.2.2) whose whole body is at hand.
pub fn may_resend(sent: bool, method: &http::Method, body_at_hand: bool) -> bool {
    use http::Method;
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    );
    !sent || (idempotent && body_at_hand)
}

/// A connection in use; [`Lease::release`] returns it to the pool.
#[derive(Debug)]
pub struct Lease {
    sender: SendRequest<ForwardBody>,
    pool: Arc<Inner>,
}

impl Lease {
    /// Returns the connection to the pool (it is dropped if the pool is
    /// full or the connection is closing).
    pub fn release(self) {
        self.pool.put(self.sender);
    }
}

impl UpstreamPool {
    /// A pool for `up`. Inside a tokio runtime it also starts a reaper task
    /// that closes idle connections past `idle_timeout`; the task ends with
    /// the pool.
    pub fn new(up: &Upstream) -> Self {
        let host = up
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let default_port = if up.scheme == http::uri::Scheme::HTTPS {
            443
        } else {
            80
        };
        let tls = (up.scheme == http::uri::Scheme::HTTPS).then(|| {
            let name = up.sni.as_deref().unwrap_or(host).to_string();
            // Validation checked the name; an unspecified address would fail
            // verification, so a bad name can only fail closed.
            let name = ServerName::try_from(name).unwrap_or(ServerName::IpAddress(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
            ));
            (tokio_rustls::TlsConnector::from(up.tls.clone()), name)
        });
        // One shard per core, and no more shards than the cap has
        // connections (a cap below the cores pools on fewer shards).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = cores.min(up.pool_max_idle).max(1);
        let inner = Arc::new(Inner {
            idle: (0..shards)
                .map(|_| Mutex::new(IdleConns::default()))
                .collect(),
            shard_cap: up.pool_max_idle / shards,
            idle_timeout: up.idle_timeout,
            connect_timeout: up.connect_timeout,
            host: host.to_string(),
            port: up.authority.port_u16().unwrap_or(default_port),
            tls,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(reap(Arc::downgrade(&inner)));
        }
        UpstreamPool { inner }
    }

    /// Sends `req` on a pooled or new connection; returns the response head
    /// and the lease of the connection carrying its body.
    pub async fn send(
        &self,
        mut req: Request<ForwardBody>,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        loop {
            let (mut sender, fresh) = match self.inner.checkout().await {
                Some(s) => (s, false),
                // Boxed: the connect path (TCP, TLS, handshake) is the cold
                // path, and inline it would make every request's future
                // several KiB larger and costlier to move.
                None => (Box::pin(self.inner.connect()).await?, true),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        sender,
                        pool: self.inner.clone(),
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    // A pooled connection closed before taking the request.
                    Some(unsent) if !fresh && may_resend(false, unsent.method(), false) => {
                        req = unsent
                    }
                    _ => return Err(UpstreamError::Exchange(e.into_error())),
                },
            }
        }
    }

    /// Idle connections currently pooled (both kinds).
    pub fn idle_count(&self) -> usize {
        self.inner
            .idle
            .iter()
            .map(|shard| shard.lock().map_or(0, |g| g.len()))
            .sum()
    }

    /// An idle raw connection that still looks usable, newest first, or a
    /// new one (TCP, and TLS when the upstream is https); the bool is false
    /// for a new connection.
    pub async fn stream(&self) -> Result<(Stream, bool), UpstreamError> {
        loop {
            let Some((stream, since)) = self.inner.take(|idle| idle.raw.pop()) else {
                break;
            };
            if since.elapsed() <= self.inner.idle_timeout && stream.looks_idle() {
                return Ok((stream, true));
            }
        }
        // Boxed: the connect path is cold and its future large.
        Ok((Box::pin(self.inner.connect_stream()).await?, false))
    }

    /// Returns a raw connection after a complete response.
    pub fn put_stream(&self, stream: Stream) {
        if let Ok(mut idle) = self.inner.own().lock() {
            if idle.len() < self.inner.shard_cap {
                idle.raw.push((stream, Instant::now()));
            }
        }
    }
}

impl Inner {
    /// This thread's shard.
    fn own(&self) -> &Mutex<IdleConns> {
        &self.idle[crate::telemetry::sharded::shard() % self.idle.len()]
    }

    /// An idle connection that `pop` takes: from this thread's shard, else
    /// from another's (before a new connection is made while idle ones wait).
    fn take<T>(&self, pop: impl Fn(&mut IdleConns) -> Option<T>) -> Option<T> {
        let n = self.idle.len();
        let own = crate::telemetry::sharded::shard() % n;
        (0..n).find_map(|k| {
            let shard = &self.idle[(own + k) % n];
            shard.lock().ok().and_then(|mut idle| pop(&mut idle))
        })
    }

    async fn checkout(&self) -> Option<SendRequest<ForwardBody>> {
        loop {
            let (mut sender, since) = self.take(|idle| idle.http.pop())?;
            if since.elapsed() > self.idle_timeout {
                continue;
            }
            if sender.is_ready() {
                return Some(sender);
            }
            if sender.is_closed() {
                continue;
            }
            // The previous response was read to the end; the connection's
            // task is finishing it and will be ready, or closed, at once.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn put(&self, sender: SendRequest<ForwardBody>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.own().lock() {
            if idle.len() < self.shard_cap {
                idle.http.push((sender, Instant::now()));
            }
        }
    }

    fn purge(&self) {
        for shard in self.idle.iter() {
            if let Ok(mut idle) = shard.lock() {
                let timeout = self.idle_timeout;
                idle.http
                    .retain(|(sender, since)| !sender.is_closed() && since.elapsed() <= timeout);
                idle.raw
                    .retain(|(s, since)| s.looks_idle() && since.elapsed() <= timeout);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<ForwardBody>, UpstreamError> {
        handshake(self.connect_stream().await?).await
    }

    /// TCP connect and TLS handshake, within `connect_timeout`.
    async fn connect_stream(&self) -> Result<Stream, UpstreamError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(UpstreamError::Connect(
                UpstreamFailure::ConnectTimeout,
                None,
            )),
        }
    }

    async fn connect_inner(&self) -> Result<Stream, UpstreamError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| UpstreamError::Connect(UpstreamFailure::Connect, Some(e)))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Stream::Tcp(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| UpstreamError::Connect(UpstreamFailure::Tls, Some(e)))?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

/// HTTP/1.1 handshake on an established stream; the connection's task is
/// spawned here, once per connection.
async fn handshake<S>(io: S) -> Result<SendRequest<ForwardBody>, UpstreamError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(UpstreamError::Exchange)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

async fn reap(pool: Weak<Inner>) {
    let period = match pool.upgrade() {
        Some(p) => (p.idle_timeout / 2).max(Duration::from_secs(1)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        match pool.upgrade() {
            Some(p) => p.purge(),
            None => return,
        }
    }
}

/// Every error in the chain of `err`, itself first. `io::Error::source`
/// skips the error it wraps, so for those the wrapped error is the next link.
pub fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn StdError + 'static)| {
        let e: &'a (dyn StdError + 'static) = *e;
        match e.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}
