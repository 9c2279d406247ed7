//! The admin listener.
//!
//! - `/healthz`: the process is up (always open, for probes).
//! - `/readyz`: 200 while serving, 503 once draining (always open).
//! - `/metrics`: Prometheus text exposition.
//! - `/config`: the configuration hash, generation and rule table (JSON).
//! - `/decisions/recent?limit=N&…`: the last N decision records (JSON,
//!   N ≤ 1000), with the filters of `portalgate logs` as query parameters
//!   (`rule`, `tenant`, `action`, `mode`, `status`, `since`, `until`,
//!   `path`; an unknown value is a 400 that names it).
//! - `/ui/`: the operators' console ([`super::console`]): its files, then
//!   `/ui/api/summary?minutes=N` (counts) and `/ui/api/events?…` (the live
//!   feed, with the same filters).
//! - `POST /reload`: reload the configuration file.
//!
//! With `[admin] token` (or `$PORTALGATE_ADMIN_TOKEN`) everything but the
//! probes and the console's own files (which hold no data) needs
//! `Authorization: Bearer <token>`; `admin.public_metrics` opens `/metrics`.
//! The listener binds to 127.0.0.1 unless configured otherwise.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::console;
use super::reload::Live;
use crate::telemetry::filter::Filter;

/// An admin response's body: whole, or the console's live feed.
type AdminBody = BoxBody<Bytes, Infallible>;

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
) -> Response<AdminBody> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
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
async fn reload(req: &Request<Incoming>, state: &AdminState) -> Response<AdminBody> {
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

fn route(req: &Request<Incoming>, state: &AdminState) -> Response<AdminBody> {
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = "application/json";
    let path = req.uri().path();
    match path {
        "/healthz" => return reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" if state.ready.load(Ordering::SeqCst) => {
            return reply(StatusCode::OK, TEXT, "ready\n")
        }
        "/readyz" => return reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "draining\n"),
        "/ui" => {
            let mut r = reply(StatusCode::MOVED_PERMANENTLY, TEXT, "see /ui/\n");
            r.headers_mut()
                .insert(header::LOCATION, http::HeaderValue::from_static("/ui/"));
            return r;
        }
        "/metrics" | "/config" | "/decisions/recent" | "/ui/api/summary" | "/ui/api/events" => {}
        _ => {
            return match console::asset(path) {
                Some(a) => ui(reply(StatusCode::OK, a.content_type, a.body)),
                None => reply(StatusCode::NOT_FOUND, TEXT, "not found\n"),
            }
        }
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
    let log = state.live.decision_log();
    let filter = || Filter::from_query(req.uri().query().unwrap_or(""), SystemTime::now());
    match path {
        "/metrics" => {
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
        "/config" => ui(reply(StatusCode::OK, JSON, state.live.config_doc())),
        "/ui/api/summary" => {
            let minutes = number(req, "minutes").unwrap_or(60);
            let summary = log.console().summary(minutes, SystemTime::now());
            ui(reply(
                StatusCode::OK,
                JSON,
                serde_json::to_string(&summary).unwrap_or_else(|_| "{}".into()) + "\n",
            ))
        }
        "/ui/api/events" => match filter() {
            Err(e) => reply(StatusCode::BAD_REQUEST, TEXT, e + "\n"),
            Ok(f) => match console::events(log.console(), f) {
                Some(events) => {
                    let mut r = Response::new(events.boxed());
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/event-stream"),
                    );
                    ui(r)
                }
                None => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    "too many live feeds are open; close one and try again\n",
                ),
            },
        },
        _ => match filter() {
            Err(e) => reply(StatusCode::BAD_REQUEST, TEXT, e + "\n"),
            Ok(f) => {
                let limit = number(req, "limit")
                    .map_or(100, |n| usize::try_from(n).unwrap_or(usize::MAX))
                    .min(crate::telemetry::decision_log::RECENT);
                let records = log.recent(limit, &f);
                ui(reply(
                    StatusCode::OK,
                    JSON,
                    serde_json::to_string(&records).unwrap_or_else(|_| "[]".into()) + "\n",
                ))
            }
        },
    }
}

/// The headers of what the console loads: never cached, never sniffed,
/// never framed, no referrer, only its own script and style.
fn ui(mut r: Response<AdminBody>) -> Response<AdminBody> {
    let h = r.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            console::CONTENT_SECURITY_POLICY,
        ),
    ] {
        h.insert(name, http::HeaderValue::from_static(value));
    }
    r
}

/// The number a query parameter `name=N` gives, if any.
fn number(req: &Request<Incoming>, name: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}
