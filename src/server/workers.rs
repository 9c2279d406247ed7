//! Worker threads: one single-threaded event loop per thread, each serving
//! the connections it was handed (nginx's worker processes; Pingora's
//! no-steal runtime). A request's tasks, timers, counters and pool shard
//! stay on the thread that serves its connection, so nothing written per
//! request crosses cores, and the cost per request does not grow with the
//! cores.
//!
//! The thread that runs [`super::Server::run`] is worker 0 and accepts for
//! all of them: each new connection goes to the next worker in turn, so a
//! burst of connections (a load balancer opening its pool) is spread evenly
//! where a shared listener would let the first worker awake take them all.
//! What crosses threads is the accepted socket, once per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::conn::{self, Bound, Shared};

/// An accepted connection on its way to a worker.
pub struct Accepted {
    tcp: std::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    watcher: Watcher,
}

/// Hands accepted connections to the workers in turn.
#[derive(Clone)]
pub struct Dispatch {
    /// Workers 1.. (worker 0 is the accepting thread).
    others: Arc<[mpsc::UnboundedSender<Accepted>]>,
    next: Arc<AtomicUsize>,
}

impl Dispatch {
    /// Serves `tcp` on the next worker: on this thread, or sent to another.
    pub fn serve(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shared: &Shared,
        watcher: Watcher,
    ) {
        let n = self.others.len() + 1;
        let k = self.next.fetch_add(1, Ordering::Relaxed) % n;
        if k == 0 {
            return conn::start(tcp, peer, tls, shared.clone(), watcher);
        }
        // Deregistered from this thread's event loop, registered with the
        // worker's when it arrives.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "cannot hand a connection to a worker");
                return;
            }
        };
        let accepted = Accepted {
            tcp,
            peer,
            tls,
            watcher,
        };
        if let Err(mpsc::error::SendError(a)) = self.others[k - 1].send(accepted) {
            // That worker is gone: serve here.
            match TcpStream::from_std(a.tcp) {
                Ok(tcp) => conn::start(tcp, a.peer, a.tls, shared.clone(), a.watcher),
                Err(e) => tracing::debug!(peer = %a.peer, error = %e, "cannot serve a connection"),
            }
        }
    }
}

/// The started workers.
pub struct Workers {
    threads: Vec<std::thread::JoinHandle<()>>,
    dispatch: Dispatch,
}

impl Workers {
    /// Starts `count - 1` workers (the caller's thread is the first). A
    /// worker that cannot start is reported and left out: the others serve.
    pub fn start(count: usize, shared: &Shared) -> Workers {
        let mut threads = Vec::new();
        let mut senders = Vec::new();
        for k in 1..count {
            let (tx, rx) = mpsc::unbounded_channel();
            let shared = shared.clone();
            let started = std::thread::Builder::new()
                .name(format!("portalgate-w{k}"))
                .spawn(move || serve(rx, shared));
            match started {
                Ok(t) => {
                    threads.push(t);
                    senders.push(tx);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a worker thread; serving with fewer workers");
                    break;
                }
            }
        }
        Workers {
            threads,
            dispatch: Dispatch {
                others: senders.into(),
                next: Arc::new(AtomicUsize::new(0)),
            },
        }
    }

    /// How many threads serve, the caller's included.
    pub fn count(&self) -> usize {
        self.threads.len() + 1
    }

    /// What the accept loops hand connections to.
    pub fn dispatch(&self) -> Dispatch {
        self.dispatch.clone()
    }

    /// Waits for the threads to end: after the accept loops (and so every
    /// [`Dispatch`]) are gone and `shared.force` has turned true.
    pub async fn join(self) {
        let Workers { threads, dispatch } = self;
        drop(dispatch);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    tracing::error!("a worker thread panicked");
                }
            }
        })
        .await;
    }
}

/// One worker's life: serve what it is handed until the accept loops end,
/// then serve those connections until they end or the drain times out
/// (`shared.force`); dropping the runtime closes what is left.
fn serve(mut handed: mpsc::UnboundedReceiver<Accepted>, shared: Shared) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            // `handed` is dropped: the accept loop serves this worker's
            // share itself.
            tracing::warn!(error = %e, "cannot start a worker's event loop; serving with fewer workers");
            return;
        }
    };
    let mut force = shared.force.clone();
    runtime.block_on(async move {
        while let Some(a) = handed.recv().await {
            match TcpStream::from_std(a.tcp) {
                Ok(tcp) => conn::start(tcp, a.peer, a.tls, shared.clone(), a.watcher),
                Err(e) => tracing::debug!(peer = %a.peer, error = %e, "cannot serve a connection"),
            }
        }
        // `force` turns true (or its sender goes) once every connection on
        // every worker has ended or the drain timed out.
        let _ = force.wait_for(|f| *f).await;
    });
}

/// Accepts until `shared.stop` turns true, then drops the listener. Each
/// connection is served by the next worker in turn.
pub async fn accept_loop(
    bound: Bound,
    shared: Shared,
    graceful: Arc<GracefulShutdown>,
    dispatch: Dispatch,
) {
    let mut stop = shared.stop.clone();
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
        dispatch.serve(tcp, peer, bound.tls.clone(), &shared, graceful.watcher());
    }
}
