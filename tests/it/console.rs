//! The operators' console on the admin listener, server side: its files
//! (open, no data, locked down by CSP), the live feed (server-sent events,
//! filtered, capped), the counts, the filters of `logs` on the API, and the
//! last reload. The page itself is driven in Chromium by
//! `tests/browser/console_test.py` (run by `.ci/run`).

use std::time::{Duration, Instant};

use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin::admin_get;
use crate::policy::{call, DE, GLOBAL};
use crate::support::client::send;
use crate::support::*;

const TOKEN: &str = "admin-token-for-tests";

async fn germany_with_token() -> (Backend, proxy::RunningProxy) {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section("[server]\nwatch = false")
        .admin(&format!("token = \"{TOKEN}\""))
        .start()
        .await;
    (backend, proxy)
}

async fn explain(proxy: &proxy::RunningProxy) {
    let path = format!("/v1/customers/{DE}/users");
    assert_eq!(call(proxy, "POST", &path, &[], "{}").await.status, 403);
}

async fn reject(proxy: &proxy::RunningProxy) {
    assert_eq!(
        call(proxy, "GET", "/v1/customers%2Fx", &[], "")
            .await
            .status,
        400
    );
}

/// An open live feed, read as raw bytes (server-sent events in chunks).
struct Feed {
    tcp: TcpStream,
    seen: String,
}

impl Feed {
    /// Opens `/ui/api/events?query`; the status line, and for a 200 the
    /// feed once it says it is live.
    async fn open(proxy: &proxy::RunningProxy, query: &str) -> (u16, Feed) {
        let mut tcp = TcpStream::connect(proxy.admin).await.unwrap();
        let req = format!(
            "GET /ui/api/events?{query} HTTP/1.1\r\nHost: admin\r\n\
             Authorization: Bearer {TOKEN}\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut feed = Feed {
            tcp,
            seen: String::new(),
        };
        let head = feed.until("\r\n\r\n").await;
        let status: u16 = head[9..12].parse().unwrap();
        if status == 200 {
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: text/event-stream"),
                "{head}"
            );
            feed.until(": live\n\n").await;
        }
        (status, feed)
    }

    /// Reads until `text` has been seen; what came before it is returned
    /// and dropped.
    async fn until(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.seen.find(text) {
                let before = self.seen[..i].to_string();
                self.seen.drain(..i + text.len());
                return before;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline.into(), self.tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {text:?} in {:?}", self.seen))
                .unwrap();
            assert!(n > 0, "the feed closed before {text:?}: {:?}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// The next decision event's record.
    async fn decision(&mut self) -> serde_json::Value {
        self.until("event: decision\ndata: ").await;
        let json = self.until("\n\n").await;
        serde_json::from_str(&json).unwrap()
    }
}

#[tokio::test]
async fn the_console_files_need_no_token_hold_no_data_and_load_nothing_else() {
    let (_backend, proxy) = germany_with_token().await;
    explain(&proxy).await;
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/console.js", "text/javascript"),
        ("/ui/console.css", "text/css"),
    ] {
        let r = admin_get(&proxy, path, None).await;
        assert_eq!(r.status, 200, "{path}");
        let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(h("content-type").starts_with(kind), "{path}");
        assert!(h("content-security-policy").starts_with("default-src 'none'; script-src 'self'"));
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("cache-control"), "no-store");
        // Compiled in, holding nothing a request put there, naming no
        // other site (the SVG namespace is a name, not a load).
        let text = r.text().replace("'http://www.w3.org/2000/svg'", "");
        assert!(!text.contains(DE) && !text.contains("http://") && !text.contains("https://"));
    }
    let page = admin_get(&proxy, "/ui/", None).await.text();
    assert!(page.contains(r#"<script src="console.js" defer></script>"#));
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "no inline code"
    );
    let r = admin_get(&proxy, "/ui", None).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "/ui/");
    assert_eq!(admin_get(&proxy, "/ui/other.js", None).await.status, 404);
    for path in [
        "/ui/api/summary",
        "/ui/api/events",
        "/decisions/recent",
        "/config",
    ] {
        assert_eq!(admin_get(&proxy, path, None).await.status, 401, "{path}");
        assert_eq!(
            admin_get(&proxy, path, Some("wrong")).await.status,
            401,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_live_feed_sends_each_decision_its_filter_keeps_as_it_happens() {
    let (_backend, proxy) = germany_with_token().await;
    let braces = format!("%7B{}%7D", DE.to_uppercase());
    let (status, mut explains) =
        Feed::open(&proxy, &format!("action=explain&tenant={braces}")).await;
    assert_eq!(status, 200);
    let (_, mut everything) = Feed::open(&proxy, "").await;
    reject(&proxy).await;
    explain(&proxy).await;
    // The unfiltered feed has both, in order; the filtered one only the
    // explanation (the rejection came first, so it would have come first).
    let first = everything.decision().await;
    assert_eq!(first["action"], "reject");
    assert_eq!(first["reason"], "ambiguous_path");
    let second = everything.decision().await;
    let got = explains.decision().await;
    assert_eq!(got, second);
    assert_eq!(got["rule"], "germany-customer-user-create");
    assert_eq!(got["tenant"], DE);
    assert_eq!(got["region"], "germany");
    // As the decision log writes it: pseudonymised host, no query values.
    assert!(got["host"].as_str().unwrap().starts_with('~'), "{got}");
}

#[tokio::test]
async fn live_feeds_are_capped_and_a_closed_one_frees_its_place() {
    let (_backend, proxy) = germany_with_token().await;
    let mut open = Vec::new();
    for _ in 0..16 {
        let (status, feed) = Feed::open(&proxy, "").await;
        assert_eq!(status, 200);
        open.push(feed);
    }
    let (status, _) = Feed::open(&proxy, "").await;
    assert_eq!(status, 503);
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = Feed::open(&proxy, "").await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed feed's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn recent(proxy: &proxy::RunningProxy, query: &str) -> (http::StatusCode, String) {
    let r = admin_get(proxy, &format!("/decisions/recent?{query}"), Some(TOKEN)).await;
    (r.status, r.text())
}

#[tokio::test]
async fn the_api_takes_the_filters_of_logs_and_refuses_what_logs_refuses() {
    let (_backend, proxy) = germany_with_token().await;
    reject(&proxy).await;
    explain(&proxy).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while serde_json::from_str::<Vec<serde_json::Value>>(&recent(&proxy, "").await.1)
        .unwrap()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = recent(&proxy, "tenant=%7B0A1B2C3D-0000-4000-8000-00000000DE01%7D").await;
    assert_eq!(status, 200);
    let kept: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["action"], "explain");
    let (_, body) = recent(&proxy, "action=reject&mode=enforce&status=400&since=1h").await;
    let kept: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(kept.len(), 1, "{body}");
    let (_, body) = recent(&proxy, "tenant=0a1b2c3d-0000-4000-8000-0000000000a1").await;
    assert_eq!(body.trim(), "[]", "{GLOBAL} made no decision");
    for (q, name) in [
        ("action=bogus", "action:"),
        ("mode=loud", "mode:"),
        ("status=42", "status:"),
        ("tenant=not-a-tenant", "tenant:"),
        ("since=last+tuesday", "since:"),
    ] {
        let (status, body) = recent(&proxy, q).await;
        assert_eq!(status, 400, "{q}");
        assert!(body.starts_with(name), "{q}: {body}");
        let r = admin_get(&proxy, &format!("/ui/api/events?{q}"), Some(TOKEN)).await;
        assert_eq!(r.status, 400, "{q}");
    }
}

#[tokio::test]
async fn config_says_how_the_last_reload_went() {
    let (_backend, proxy) = germany_with_token().await;
    let config = || async {
        let r = admin_get(&proxy, "/config", Some(TOKEN)).await;
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    assert_eq!(config().await["last_reload"], serde_json::Value::Null);
    let reload = || async {
        send(
            Request::post(format!("http://{}/reload", proxy.admin))
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Full::default())
                .unwrap(),
        )
        .await
        .status
    };
    let good = std::fs::read_to_string(&proxy.config_path).unwrap();
    std::fs::write(
        &proxy.config_path,
        format!("{good}\n[bogus_section]\nkey = 1\n"),
    )
    .unwrap();
    assert_eq!(reload().await, 400);
    let doc = config().await;
    assert_eq!(doc["last_reload"]["result"], "error", "{doc}");
    let errors = doc["last_reload"]["errors"].as_str().unwrap();
    assert!(
        errors.contains("portalgate.toml:") && errors.contains("bogus_section"),
        "{errors}"
    );
    assert_eq!(doc["generation"], 1);
    std::fs::write(&proxy.config_path, good).unwrap();
    assert_eq!(reload().await, 200);
    let doc = config().await;
    assert_eq!(doc["last_reload"]["result"], "success");
    assert_eq!(doc["last_reload"]["generation"], 2);
    assert_eq!(doc["generation"], 2);
}

/// The console's counts: aggregated as records are taken, behind the token.
#[tokio::test]
async fn the_console_summary_counts_decisions_behind_the_token() {
    let (_backend, proxy) = germany_with_token().await;
    for _ in 0..3 {
        explain(&proxy).await;
    }
    reject(&proxy).await;
    assert_eq!(admin_get(&proxy, "/ui/api/summary", None).await.status, 401);
    let token = Some("admin-token-for-tests");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let summary = loop {
        let r = admin_get(&proxy, "/ui/api/summary?minutes=5", token).await;
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        if v["total"] == 4 {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let by_key = summary["by_key"].as_array().unwrap();
    assert_eq!(by_key[0][0]["rule"], "germany-customer-user-create");
    assert_eq!(by_key[0][1], 3);
    assert!(by_key
        .iter()
        .any(|k| k[0]["action"] == "reject" && k[1] == 1));
    assert_eq!(summary["top_tenants"][0][0], DE);
    let minutes = summary["minutes"].as_array().unwrap();
    let counted: u64 = minutes.iter().map(|m| m["total"].as_u64().unwrap()).sum();
    assert_eq!(counted, 4);
}
