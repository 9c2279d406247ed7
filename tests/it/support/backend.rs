//! A scriptable upstream: records what reached it and answers by path.
//!
//! - `/upload`: counts the streamed body, answers `received=N`
//! - `/download?bytes=N`: streams N bytes
//! - `/slow?ms=N`: answers after N ms
//! - `/ws`: accepts an upgrade with 101 and echoes bytes
//! - `/no-upgrade`: answers 200 even to an upgrade request
//! - anything else: echoes the body, with `x-echo-method`, and adds
//!   hop-by-hop headers to its response that the proxy must strip

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Backend {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    arrived: tokio::sync::watch::Receiver<usize>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type RespBody = BoxBody<Bytes, hyper::Error>;

impl Backend {
    /// A cleartext backend.
    pub async fn start() -> Backend {
        Self::start_inner(None).await
    }

    /// A TLS backend with the given server configuration.
    pub async fn start_tls(cfg: rustls::ServerConfig) -> Backend {
        Self::start_inner(Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))).await
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        let (arrive_tx, arrived) = tokio::sync::watch::channel(0usize);
        let arrive_tx = Arc::new(arrive_tx);
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let conns = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let rec = rec.clone();
                let tls = tls.clone();
                let arrive_tx = arrive_tx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let rec = rec.clone();
                        arrive_tx.send_modify(|n| *n += 1);
                        async move { Ok::<_, std::convert::Infallible>(route(req, rec).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                                .await;
                        }
                        Some(acc) => {
                            if let Ok(s) = acc.accept(tcp).await {
                                let _ = builder
                                    .serve_connection_with_upgrades(TokioIo::new(s), svc)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        Backend {
            addr,
            seen,
            arrived,
            connections,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `n` requests (any route) have arrived, bounded to 10 s.
    pub async fn wait_arrivals(&self, n: usize) {
        let mut rx = self.arrived.clone();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|c| *c >= n))
            .await
            .expect("requests did not reach the backend within 10 s")
            .unwrap();
    }

    /// Requests that have arrived so far (any route).
    pub fn arrived_count(&self) -> usize {
        *self.arrived.borrow()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests that reached the echo route so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The only request seen; panics unless exactly one arrived.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(
            seen.len(),
            1,
            "expected exactly one request at the backend: {seen:?}"
        );
        seen.into_iter().next().unwrap()
    }
}

fn full(b: impl Into<Bytes>) -> RespBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn query_num(req: &Request<Incoming>, key: &str) -> u64 {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

async fn route(mut req: Request<Incoming>, rec: Arc<Mutex<Vec<Seen>>>) -> Response<RespBody> {
    match req.uri().path() {
        "/upload" => {
            let mut body = req.into_body();
            let mut n = 0u64;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                    Err(_) => break,
                }
            }
            Response::new(full(format!("received={n}")))
        }
        "/download" => {
            let n = query_num(&req, "bytes");
            let mut r = Response::new(Repeat { remaining: n }.boxed());
            r.headers_mut().insert("content-length", n.into());
            r
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query_num(&req, "ms"))).await;
            Response::new(full("slow done"))
        }
        "/ws" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = on.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            let mut r = Response::new(full(Bytes::new()));
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            r.headers_mut()
                .insert("upgrade", "websocket".parse().unwrap());
            r
        }
        "/no-upgrade" => Response::new(full("plain answer")),
        _ => {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            rec.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                version: parts.version,
                headers: parts.headers.clone(),
                body: body.clone(),
            });
            let mut r = Response::new(full(body));
            let h = r.headers_mut();
            h.insert("x-echo-method", parts.method.as_str().parse().unwrap());
            h.insert("x-backend-private", "secret".parse().unwrap());
            h.insert("connection", "x-backend-private".parse().unwrap());
            h.insert("keep-alive", "timeout=5".parse().unwrap());
            r
        }
    }
}

/// A body of `remaining` bytes of `x`, in 64 KiB frames.
pub struct Repeat {
    pub remaining: u64,
}

static CHUNK: [u8; 65536] = [b'x'; 65536];

impl Body for Repeat {
    type Data = Bytes;
    type Error = hyper::Error;

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }
}
