//! The pooled upstream client and the classification of its failures.

use std::error::Error as StdError;
use std::io;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Upstream;
use crate::proxy::body::ForwardBody;

/// The pooled keep-alive client used for every forwarded request.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, ForwardBody>;

/// Builds the client for `up`: TCP connect timeout, idle pool, TLS with
/// hostname verification for an `https` upstream.
pub fn build_client(up: &Upstream) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(up.connect_timeout));
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*up.tls).clone())
        .https_or_http();
    let builder = match up
        .sni
        .as_deref()
        .and_then(|s| rustls::pki_types::ServerName::try_from(s.to_string()).ok())
    {
        Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
        None => builder,
    };
    let connector = builder.enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(up.idle_timeout)
        .pool_max_idle_per_host(up.pool_max_idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

/// Why a forwarded request failed on the upstream side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The connection was refused or the host unreachable.
    Connect,
    /// The TCP connect did not finish within `connect_timeout`.
    ConnectTimeout,
    /// The TLS handshake with the upstream failed (certificate, name, protocol).
    Tls,
    /// The upstream closed or broke the connection, or sent an invalid response.
    Protocol,
}

/// Classifies a client error by walking its source chain.
pub fn classify(err: &hyper_util::client::legacy::Error) -> UpstreamFailure {
    let mut saw_tls = false;
    for e in chain(err) {
        if e.downcast_ref::<rustls::Error>().is_some() {
            saw_tls = true;
        }
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return UpstreamFailure::ConnectTimeout;
        }
    }
    if saw_tls {
        UpstreamFailure::Tls
    } else if err.is_connect() {
        UpstreamFailure::Connect
    } else {
        UpstreamFailure::Protocol
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
