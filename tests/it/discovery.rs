//! Region discovery's lookups against a real OpenID metadata server on
//! 127.0.0.1 over TLS (a CA made here): answers, unknown tenants, a slow
//! server, one that errors, one that answers garbage, an untrusted
//! certificate, and one lookup however many requests wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use portalgate::discovery::{metadata_url, Cache, Fetcher, Found, Limits, LookupError, Mapping};
use portalgate::tenant::{Region, TenantId};
use tokio::net::TcpListener;

use crate::support::certs::Ca;

pub const GERMANY: &str = "11111111-2222-3333-4444-555555555555";
pub const GLOBAL: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

/// Answers `/{mode}/{tenant}/v2.0/.well-known/openid-configuration`:
/// mode `ok` gives each tenant's cloud (400 for one it does not know),
/// `slow` the same after 5 s, `error` 500, `garbage` an HTML page, `huge`
/// 100 KiB of JSON. Counts requests.
pub struct Idp {
    pub port: u16,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    pub async fn start(leaf: rustls::ServerConfig) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(leaf));
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async move { Ok::<_, std::convert::Infallible>(answer(req.uri().path()).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Idp {
            port,
            requests,
            task,
        }
    }

    pub fn template(&self, mode: &str) -> String {
        format!(
            "https://localhost:{}/{mode}/{{tenant}}/v2.0/.well-known/openid-configuration",
            self.port
        )
    }
}

async fn answer(path: &str) -> Response<Full<Bytes>> {
    let mut parts = path.trim_start_matches('/').split('/');
    let (mode, tenant) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let json = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let cloud = match tenant {
        GERMANY => Some("microsoftonline.de"),
        GLOBAL => Some("microsoftonline.com"),
        _ => None,
    };
    match mode {
        "slow" => tokio::time::sleep(Duration::from_secs(5)).await,
        "error" => return json(StatusCode::INTERNAL_SERVER_ERROR, "{}".into()),
        "garbage" => {
            return Response::new(Full::new(Bytes::from_static(b"<html>sign in</html>")));
        }
        "huge" => {
            return json(
                StatusCode::OK,
                format!("{{\"x\":\"{}\"}}", "a".repeat(100_000)),
            )
        }
        _ => {}
    }
    match cloud {
        Some(c) => json(
            StatusCode::OK,
            format!(
                r#"{{"issuer":"https://login.example/{tenant}/v2.0","cloud_instance_name":"{c}","tenant_region_scope":"EU"}}"#
            ),
        ),
        None => json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_tenant"}"#.into(),
        ),
    }
}

fn mapping() -> Mapping {
    Mapping {
        cloud_instance_name: vec![
            ("microsoftonline.de".into(), Region::new("germany")),
            ("microsoftonline.com".into(), Region::new("global")),
        ],
        tenant_region_scope: Vec::new(),
    }
}

fn cache(timeout: Duration) -> Arc<Cache> {
    Arc::new(Cache::new(Limits {
        positive_ttl: Duration::from_secs(300),
        negative_ttl: Duration::from_secs(30),
        max_entries: 1000,
        max_in_flight: 100,
        timeout,
    }))
}

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

struct World {
    idp: Idp,
    fetcher: Fetcher,
}

async fn world() -> World {
    let ca = Ca::new("discovery test CA");
    let idp = Idp::start(ca.leaf(&["localhost"]).server_config()).await;
    let fetcher = Fetcher::new(Arc::new(ca.client_config(&[b"http/1.1"])), mapping());
    World { idp, fetcher }
}

#[tokio::test]
async fn metadata_over_tls_names_the_region_and_unknown_tenants_are_kept_apart() {
    let w = world().await;
    let cache = cache(Duration::from_secs(2));
    let resolve = |t: &str| {
        let url = metadata_url(&w.idp.template("ok"), tenant(t));
        let lookup = w.fetcher.lookup(url);
        let cache = cache.clone();
        let t = tenant(t);
        async move { cache.resolve(t, move || lookup).await }
    };
    assert_eq!(
        resolve(GERMANY).await,
        Ok(Found::Region(Region::new("germany")))
    );
    assert_eq!(
        resolve(GLOBAL).await,
        Ok(Found::Region(Region::new("global")))
    );
    assert_eq!(
        resolve("99999999-2222-3333-4444-555555555555").await,
        Ok(Found::Unknown)
    );
    assert_eq!(w.idp.requests.load(Ordering::SeqCst), 3);
    // Kept: asked again, nothing more reaches the identity provider.
    assert_eq!(
        resolve(GERMANY).await,
        Ok(Found::Region(Region::new("germany")))
    );
    assert_eq!(w.idp.requests.load(Ordering::SeqCst), 3);
    assert_eq!(cache.counts().hits, 1);
}

#[tokio::test]
async fn a_hundred_requests_for_one_tenant_make_one_lookup() {
    let w = world().await;
    let cache = cache(Duration::from_secs(2));
    let waits: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            let lookup = w
                .fetcher
                .lookup(metadata_url(&w.idp.template("ok"), tenant(GERMANY)));
            tokio::spawn(async move { cache.resolve(tenant(GERMANY), move || lookup).await })
        })
        .collect();
    for wait in waits {
        assert_eq!(
            wait.await.unwrap(),
            Ok(Found::Region(Region::new("germany")))
        );
    }
    assert_eq!(w.idp.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_failing_and_garbage_servers_give_errors_never_a_region() {
    let w = world().await;
    let cache = cache(Duration::from_millis(300));
    let t = tenant(GERMANY);
    let mut outcomes = Vec::new();
    for mode in ["slow", "error", "garbage", "huge"] {
        let lookup = w.fetcher.lookup(metadata_url(&w.idp.template(mode), t));
        outcomes.push(cache.resolve(t, move || lookup).await);
    }
    assert_eq!(
        outcomes,
        vec![
            Err(LookupError::Timeout(Duration::from_millis(300))),
            Err(LookupError::Status(500)),
            Err(LookupError::Garbage("not JSON")),
            Err(LookupError::Garbage("larger than 64 KiB")),
        ]
    );
    assert_eq!(cache.cached(t), None, "failures are not kept");
    assert_eq!(cache.counts().errors, 4);
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_closed_port_is_a_transport_error() {
    let w = world().await;
    let stranger = Fetcher::new(
        Arc::new(Ca::new("another CA").client_config(&[b"http/1.1"])),
        mapping(),
    );
    let t = tenant(GERMANY);
    let got = stranger
        .lookup(metadata_url(&w.idp.template("ok"), t))
        .await;
    assert!(
        matches!(&got, Err(LookupError::Transport(m)) if m.starts_with("TLS")),
        "{got:?}"
    );
    let closed = crate::support::Refused::new();
    let port = closed.addr.port();
    let got = w
        .fetcher
        .lookup(format!("https://localhost:{port}/{t}/x"))
        .await;
    assert!(matches!(got, Err(LookupError::Transport(_))), "{got:?}");
    assert_eq!(w.idp.requests.load(Ordering::SeqCst), 0);
}
