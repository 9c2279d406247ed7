//! The admin listener.
//!
//! - `/healthz`: the process is up (always open, for probes).
//! - `/readyz`: 200 while serving, 503 once draining (always open).
//! - `/metrics`: Prometheus text exposition.
//! - `/config`: the configuration hash, generation and rule table (JSON).
//! - `/decisions/recent?limit=N`: the last N decision records (JSON, N ≤ 1000).
//!
//! With `[admin] token` (or `$PORTALGATE_ADMIN_TOKEN`) the last three need
//! `Authorization: Bearer <token>`. The listener binds to 127.0.0.1 unless
//! configured otherwise.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::reload::Live;

/// What the admin routes read.
pub struct AdminState {
    /// The live configuration (metrics, decision log, reload).
    pub live: Arc<Live>,
    /// Readiness.
    pub ready: Arc<AtomicBool>,
    /// The bearer token, if one is required.
    pub token: Option<String>,
    /// Whether /metrics is served without the token (`admin.public_metrics`:
    /// metrics carry only rule ids and fixed labels, so a scraper needs no
    /// secret; the records and the configuration still do).
    pub public_metrics: bool,
}

/// Serves admin requests until aborted.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, force: watch::Receiver<bool>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        let mut force = force.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move {
                    if req.method() == http::Method::POST && req.uri().path() == "/reload" {
                        return Ok::<_, Infallible>(reload(&req, &state).await);
                    }
                    Ok::<_, Infallible>(route(&req, &state))
                }
            });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc);
            tokio::select! {
                _ = conn => {}
                _ = force.wait_for(|f| *f) => {}
            }
        });
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

fn authorized(req: &Request<Incoming>, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare digests: equal lengths, and an early exit on a mismatch tells
    // nothing about the token's own bytes.
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    digest(given).as_ref() == digest(token).as_ref()
}

/// `POST /reload`: 200 with the new generation, or 400 with every error
/// (the running configuration keeps serving).
async fn reload(req: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    if !authorized(req, state.token.as_deref()) {
        return reply(
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            "a bearer token is required\n",
        );
    }
    match state.live.reload().await {
        Ok(generation) => reply(
            StatusCode::OK,
            "application/json",
            serde_json::json!({"generation": generation}).to_string() + "\n",
        ),
        Err(errors) => reply(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            errors + "\n",
        ),
    }
}

fn route(req: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = "application/json";
    let path = req.uri().path();
    match path {
        "/healthz" => return reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" if state.ready.load(Ordering::SeqCst) => {
            return reply(StatusCode::OK, TEXT, "ready\n")
        }
        "/readyz" => return reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "draining\n"),
        "/metrics" | "/config" | "/decisions/recent" | "/ui/api/summary" => {}
        _ => return reply(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    }
    let public = path == "/metrics" && state.public_metrics;
    if !public && !authorized(req, state.token.as_deref()) {
        let mut r = reply(
            StatusCode::UNAUTHORIZED,
            TEXT,
            "a bearer token is required\n",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    match path {
        "/metrics" => {
            let log = state.live.decision_log();
            let m = state.live.metrics();
            m.decision_log_queue.set(log.queued() as i64);
            // Raised to the log's count (concurrent scrapes agree).
            m.decision_log_dropped
                .inner()
                .fetch_max(log.dropped(), std::sync::atomic::Ordering::Relaxed);
            reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                m.encode(),
            )
        }
        "/config" => reply(StatusCode::OK, JSON, state.live.config_doc()),
        "/ui/api/summary" => {
            let minutes = number(req, "minutes").unwrap_or(60);
            let summary = state
                .live
                .decision_log()
                .console()
                .summary(minutes, std::time::SystemTime::now());
            reply(
                StatusCode::OK,
                JSON,
                serde_json::to_string(&summary).unwrap_or_else(|_| "{}".into()) + "\n",
            )
        }
        _ => {
            let limit = number(req, "limit")
                .map_or(100, |n| usize::try_from(n).unwrap_or(usize::MAX))
                .min(crate::telemetry::decision_log::RECENT);
            let records = state.live.decision_log().recent(limit);
            reply(
                StatusCode::OK,
                JSON,
                serde_json::to_string(&records).unwrap_or_else(|_| "[]".into()) + "\n",
            )
        }
    }
}

/// The number a query parameter `name=N` gives, if any.
fn number(req: &Request<Incoming>, name: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}
