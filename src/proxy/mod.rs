//! The proxy logic above the codecs, split by role.
//!
//! - Judging ([`judge`]): one [`judge::Judge::decide`] per request, over a
//!   protocol-neutral [`crate::head::HeadView`]: intake, the canonical
//!   path, tenant and region, the rules, and the rendered answer. Its
//!   [`judge::Plan`] says forward, answer, reject, or read the body first.
//! - Forwarding: the upstream pool and the one rewrite of heads
//!   ([`crate::upstream::headers`]), executed by one of two codecs:
//!   [`pass`] (portalgate's own HTTP/1.1 codec: plain forwards, answers,
//!   rejections and body reads of keep-alive HTTP/1.1) or [`handler`]
//!   (hyper: HTTP/2, upgrades, chunked and `Expect` uploads, HTTP/1.0, and
//!   everything when `server.http1_fast_path` is off).
//! - Accounting ([`account`]): metrics, one log line for a failure, and one
//!   decision record, whichever codec served the request.
//!
//! Every failure is a [`ProxyError`], whose status comes from the single
//! table in [`error`]; local responses are [`answer::Answer`]s, written by
//! either codec.

pub mod account;
pub mod answer;
pub mod body;
pub mod discover;
pub mod error;
pub mod failure;
pub mod handler;
pub mod inspect;
mod intake;
pub mod judge;
pub mod local;
pub mod negotiate;
pub mod pass;
pub mod respond;
mod tunnel;

/// `make()` in a new box, built there: a request's future is a few KiB,
/// and `Box::pin(make())` builds it on the stack and then copies all of
/// it (whatever part of it is in use) into the box.
#[inline(always)]
pub(crate) fn boxed<F>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Config, Upstream};
use crate::telemetry::decision_log::DecisionLog;
pub use crate::telemetry::id as request_id;
use crate::telemetry::metrics::Metrics;
use crate::upstream::UpstreamPool;
pub use body::ProxyBody;
pub use error::ProxyError;

/// What the server knows about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// The upstream side: the pool and its settings.
#[derive(Debug)]
pub struct Forwarder {
    /// Pooled connections to the upstream.
    pub pool: UpstreamPool,
    /// The upstream's settings (timeouts).
    pub upstream: Upstream,
    /// The longest wait for the next bytes of a request body from the client.
    pub client_body_timeout: std::time::Duration,
}

/// One configuration snapshot of the proxy: judging, forwarding and
/// accounting, built once per configuration and swapped on reload.
#[derive(Debug)]
pub struct Proxy {
    /// The judgement of requests.
    pub judge: judge::Judge,
    /// The upstream.
    pub forwarder: Forwarder,
    /// Metrics and decision records.
    pub accounts: account::Accounts,
    generation: u64,
}

impl Proxy {
    /// Builds the proxy and its upstream pool from a validated config;
    /// decisions go to `log`.
    pub fn new(
        config: &Config,
        log: Arc<DecisionLog>,
        metrics: Arc<Metrics>,
        generation: u64,
    ) -> Self {
        Proxy {
            judge: judge::Judge::new(config, &metrics),
            forwarder: Forwarder {
                pool: UpstreamPool::new(&config.upstream),
                upstream: config.upstream.clone(),
                client_body_timeout: config.server.client_body_timeout,
            },
            accounts: account::Accounts::new(config, log, metrics, generation),
            generation,
        }
    }

    /// The configuration generation this snapshot was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        self.accounts.metrics()
    }

    /// The decision log (closed by the server after the drain).
    pub fn decision_log(&self) -> &DecisionLog {
        self.accounts.log()
    }
}
