//! Listeners, TLS termination, graceful drain and the admin listener.
//!
//! [`Server::bind`] binds every socket first, so a bad address fails before
//! anything is served and tests can read the ports the kernel chose.
//! [`Server::run`] serves until its `shutdown` future resolves, then drains:
//! stop accepting (listeners are closed, so new connections are refused),
//! ask every connection to finish (HTTP/1.1 closes after the response in
//! flight, HTTP/2 sends GOAWAY), wait up to `server.drain_timeout`, and close
//! what is left.

mod admin;
pub mod churn;
mod conn;
pub mod console;
pub mod notify;
mod prefixed;
pub mod reload;
pub mod signal;
mod snapshot;
mod watcher;
mod woken;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, ServerSettings};

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The decision log could not be opened.
    #[error("cannot open the decision log: {0}")]
    DecisionLog(#[source] std::io::Error),
    /// A listener address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet serving, proxy.
pub struct Server {
    listeners: Vec<conn::Bound>,
    admin_token: Option<String>,
    public_metrics: bool,
    admin: Option<TcpListener>,
    live: Arc<reload::Live>,
    /// Files to watch and their fingerprint when loaded, when watching is
    /// on and there is a source file.
    watched: Option<(Vec<std::path::PathBuf>, Vec<u8>)>,
    settings: ServerSettings,
    builder: Arc<conn::HttpBuilder>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

impl Server {
    /// Binds every listener of `config` (and its admin listener). With a
    /// `source` file, SIGHUP and `POST /reload` reload from it.
    pub async fn bind(
        config: &Config,
        source: Option<std::path::PathBuf>,
    ) -> Result<Server, ServeError> {
        let watched = (config.server.watch && source.is_some()).then(|| {
            (
                config.sources.clone(),
                watcher::fingerprint(&config.sources),
            )
        });
        let mut listeners = Vec::new();
        for l in &config.listeners {
            listeners.push(conn::Bound {
                listener: bind(l.address).await?,
                tls: l.tls.clone().map(tokio_rustls::TlsAcceptor::from),
            });
        }
        let admin = match config.admin {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let log = crate::telemetry::decision_log::DecisionLog::start(&config.decision_log.outputs)
            .await
            .map_err(ServeError::DecisionLog)?;
        if log.enabled() && config.decision_log.key_source == crate::config::KeySource::Random {
            tracing::warn!(
                "no pseudonym key configured (decision_log.pseudonym_key or $PORTALGATE_PSEUDONYM_KEY): \
                 pseudonyms will not correlate across restarts or replicas"
            );
        }
        Ok(Server {
            listeners,
            admin_token: config.admin_token.clone(),
            public_metrics: config.admin_public_metrics,
            admin,
            watched,
            live: Arc::new(reload::Live::new(
                config,
                source,
                Arc::new(log),
                Arc::new(crate::telemetry::metrics::Metrics::default()),
            )),
            settings: config.server,
            builder: Arc::new(conn::http_builder(&config.server, &config.limits)),
        })
    }

    /// The bound addresses of the client listeners, in config order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|b| b.listener.local_addr().ok())
            .collect()
    }

    /// The bound address of the admin listener.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let draining = Arc::new(AtomicBool::new(false));
        let (force_tx, force_rx) = watch::channel(false);
        let graceful = Arc::new(GracefulShutdown::new());
        let ready = Arc::new(AtomicBool::new(true));
        // Before anything says "listening": see `signal::hangups`.
        let hangup_signals = signal::hangups();
        let shared = conn::Shared {
            builder: self.builder.clone(),
            live: self.live.clone(),
            settings: self.settings,
            force: force_rx.clone(),
            stop: stop_rx.clone(),
            draining: draining.clone(),
        };
        let workers = workers::Workers::start(self.settings.workers, &shared);
        let mut accepting = JoinSet::new();
        for bound in self.listeners {
            if let Ok(addr) = bound.listener.local_addr() {
                tracing::info!(%addr, tls = bound.tls.is_some(), workers = workers.count(), "listening");
            }
            accepting.spawn(workers::accept_loop(
                bound,
                shared.clone(),
                graceful.clone(),
                workers.dispatch(),
            ));
        }
        drop(shared);
        let admin = self.admin.map(|l| {
            if let Ok(addr) = l.local_addr() {
                tracing::info!(%addr, "admin listening");
            }
            let state = Arc::new(admin::AdminState {
                live: self.live.clone(),
                ready: ready.clone(),
                token: self.admin_token.clone(),
                public_metrics: self.public_metrics,
            });
            tokio::spawn(admin::serve(l, state, force_rx.clone()))
        });
        let hangups = tokio::spawn(signal::reload_on_hangup(hangup_signals, self.live.clone()));
        let watching = self
            .watched
            .map(|(files, loaded)| tokio::spawn(watcher::run(self.live.clone(), files, loaded)));

        notify::notify("READY=1\nSTATUS=serving");
        shutdown.await;
        hangups.abort();
        if let Some(w) = watching {
            w.abort();
        }
        ready.store(false, Ordering::SeqCst);
        notify::notify("STOPPING=1\nSTATUS=draining");
        draining.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
        while accepting.join_next().await.is_some() {}
        tracing::info!(connections = graceful.count(), "listeners closed; draining");
        // The accept loops held the only other references.
        let drain = async {
            if let Ok(g) = Arc::try_unwrap(graceful) {
                g.shutdown().await;
            }
        };
        match tokio::time::timeout(self.settings.drain_timeout, drain).await {
            Ok(()) => tracing::info!("drained"),
            Err(_) => tracing::warn!(
                timeout = ?self.settings.drain_timeout,
                "drain timeout reached; closing the remaining connections"
            ),
        }
        let _ = force_tx.send(true);
        workers.join().await;
        // After the drain: every request's record is queued; write them all.
        self.live.decision_log().close().await;
        if let Some(a) = admin {
            a.abort();
        }
    }
}
