//! The admin listener: health, readiness, metrics (parsed with a Prometheus
//! text parser), the rule table and recent decisions, behind a token.

use std::collections::HashMap;

use http::Request;
use http_body_util::Full;

use crate::policy::{call, delete_user, DE, GLOBAL};
use crate::support::client::{get, send};
use crate::support::*;

pub(crate) async fn admin_get(
    proxy: &proxy::RunningProxy,
    path: &str,
    token: Option<&str>,
) -> crate::support::client::Reply {
    let mut b = Request::get(format!("http://{}{path}", proxy.admin));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    send(b.body(Full::default()).unwrap()).await
}

pub(crate) fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("valid Prometheus text")
        .samples
}

pub(crate) fn counter(
    samples: &[prometheus_parse::Sample],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// `/metrics` once `n` requests are counted: a request is counted after
/// its response is written, on the worker that served it, so a scrape
/// right after the response may come first.
async fn metrics_after(
    proxy: &proxy::RunningProxy,
    token: Option<&str>,
    n: f64,
) -> crate::support::client::Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = admin_get(proxy, "/metrics", token).await;
        let s = samples(&r.text());
        let counted = |name| counter(&s, name, &[]) >= n;
        if counted("portalgate_requests_total")
            && counted("portalgate_request_duration_seconds_count")
        {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} requests never counted: {}",
            r.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Every series an alert reads exists before its first event, at zero:
/// each configured rule's matches, each upstream error kind, both reload
/// results, the dropped records; counters are named `_total`.
#[tokio::test]
async fn every_alerting_series_exists_from_the_start_at_zero() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).germany().start().await;
    let text = admin_get(&proxy, "/metrics", None).await.text();
    let s = samples(&text);
    let rules: Vec<String> = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies/germany.toml"),
    )
    .unwrap()
    .lines()
    .filter_map(|l| l.strip_prefix("id = \""))
    .map(|l| l.trim_end_matches('"').to_string())
    .collect();
    assert!(rules.len() >= 10, "{rules:?}");
    for rule in &rules {
        assert!(
            s.iter().any(|x| x.metric == "portalgate_rule_matches_total"
                && x.labels.get("rule") == Some(rule.as_str())),
            "no series for {rule}:\n{text}"
        );
    }
    assert_eq!(counter(&s, "portalgate_rule_matches_total", &[]), 0.0);
    for kind in [
        "connect",
        "connect_timeout",
        "tls",
        "protocol",
        "timeout",
        "read_timeout",
    ] {
        assert!(
            s.iter()
                .any(|x| x.metric == "portalgate_upstream_errors_total"
                    && x.labels.get("kind") == Some(kind)),
            "no {kind}:\n{text}"
        );
    }
    for result in ["success", "error"] {
        assert!(
            s.iter()
                .any(|x| x.metric == "portalgate_config_reload_total"
                    && x.labels.get("result") == Some(result)),
            "no {result}:\n{text}"
        );
    }
    assert!(
        text.contains("portalgate_decision_log_dropped_records_total 0"),
        "{text}"
    );
    // A match counts once, under its rule and mode.
    let r = delete_user(&proxy, DE, "u1").await;
    assert_eq!(r.status, 403);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let s = samples(&admin_get(&proxy, "/metrics", None).await.text());
        if counter(&s, "portalgate_rule_matches_total", &[]) == 1.0 {
            assert_eq!(
                counter(&s, "portalgate_rule_matches_total", &[("mode", "enforce")]),
                1.0
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn metrics_count_the_requests_sent_and_carry_no_tenant_or_path() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .admin("token = \"admin-token-for-tests\"")
        .start()
        .await;
    let json = ("content-type", "application/json");
    for _ in 0..3 {
        assert_eq!(
            call(
                &proxy,
                "POST",
                &format!("/v1/customers/{DE}/users"),
                &[json],
                "{}"
            )
            .await
            .status,
            403
        );
    }
    for _ in 0..2 {
        assert_eq!(
            call(
                &proxy,
                "POST",
                &format!("/v1/customers/{GLOBAL}/users"),
                &[json],
                "{}"
            )
            .await
            .status,
            200
        );
    }
    assert_eq!(
        call(
            &proxy,
            "GET",
            &format!("/v1/customers/{DE}/users/u1/licenses"),
            &[],
            ""
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(&proxy, "GET", "/v1/customers%2Fx", &[], "")
            .await
            .status,
        400
    );

    assert_eq!(admin_get(&proxy, "/metrics", None).await.status, 401);
    assert_eq!(
        admin_get(&proxy, "/metrics", Some("wrong")).await.status,
        401
    );
    assert_eq!(
        admin_get(&proxy, "/healthz", None).await.status,
        200,
        "probes need no token"
    );
    let r = metrics_after(&proxy, Some("admin-token-for-tests"), 7.0).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let s = samples(&text);
    let req = "portalgate_requests_total";
    assert_eq!(
        counter(
            &s,
            req,
            &[
                ("decision", "explain"),
                ("rule", "germany-customer-user-create"),
                ("mode", "enforce"),
                ("status", "403")
            ]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        counter(
            &s,
            req,
            &[("decision", "forward"), ("mode", "none"), ("status", "200")]
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        counter(
            &s,
            req,
            &[
                ("decision", "forward"),
                ("rule", "germany-license-read"),
                ("mode", "report-only")
            ]
        ),
        1.0
    );
    assert_eq!(
        counter(&s, req, &[("decision", "reject"), ("status", "400")]),
        1.0
    );
    assert_eq!(counter(&s, req, &[]), 7.0);
    assert_eq!(
        counter(&s, "portalgate_request_duration_seconds_count", &[]),
        7.0,
        "{text}"
    );
    assert!(text.contains("portalgate_open_connections"));
    assert!(text.contains("portalgate_decision_log_queue_depth"));
    assert!(text.contains("portalgate_decision_log_dropped_records_total"));
    assert_eq!(counter(&s, "portalgate_config_generation", &[]), 1.0);
    let lower = text.to_ascii_lowercase();
    for secret in [DE, GLOBAL, "/v1/customers", "u1"] {
        assert!(
            !lower.contains(&secret.to_ascii_lowercase()),
            "{secret} in a metric: {text}"
        );
    }
}

#[tokio::test]
async fn upstream_errors_are_counted_by_kind() {
    let refused = crate::support::Refused::new();
    let dead = refused.addr;
    let proxy = ProxyBuilder::new(&format!("http://{dead}")).start().await;
    assert_eq!(get(&proxy.url("/x")).await.status, 502);
    assert_eq!(get(&proxy.url("/y")).await.status, 502);
    let s = samples(&metrics_after(&proxy, None, 2.0).await.text());
    assert_eq!(
        counter(
            &s,
            "portalgate_upstream_errors_total",
            &[("kind", "connect")]
        ),
        2.0
    );
    assert_eq!(
        counter(
            &s,
            "portalgate_requests_total",
            &[("decision", "upstream_error"), ("status", "502")]
        ),
        2.0
    );
}

#[tokio::test]
async fn config_and_recent_decisions() {
    let (_backend, proxy) = crate::policy::germany().await;
    for i in 0..3 {
        let r = delete_user(&proxy, DE, &format!("u{i}")).await;
        assert_eq!(r.status, 403);
    }
    // Recorded after each response, on the worker that served it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while serde_json::from_slice::<Vec<serde_json::Value>>(
        &admin_get(&proxy, "/decisions/recent?limit=3", None)
            .await
            .body,
    )
    .unwrap()
    .len()
        < 3
    {
        assert!(std::time::Instant::now() < deadline, "never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let recent: Vec<HashMap<String, serde_json::Value>> = serde_json::from_slice(
        &admin_get(&proxy, "/decisions/recent?limit=2", None)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[1]["rule"], "germany-customer-user-update");
    for r in &recent {
        let path = r["path"].as_str().unwrap();
        let last = path.rsplit('/').next().unwrap();
        assert!(
            last.starts_with('~') && !["u0", "u1", "u2"].contains(&last),
            "users are pseudonymised: {path}"
        );
    }
    let config: serde_json::Value =
        serde_json::from_slice(&admin_get(&proxy, "/config", None).await.body).unwrap();
    assert_eq!(config["hash"].as_str().unwrap().len(), 64);
    for r in &recent {
        assert_eq!(r["generation"], 1);
        assert_eq!(
            r["config"].as_str().unwrap(),
            &config["hash"].as_str().unwrap()[..12],
            "records name their snapshot"
        );
    }
    let ids: Vec<&str> = config["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 10);
    assert_eq!(ids[0], "germany-password-reset");
}

/// Every metric the shipped alert rules read is one the proxy exports
/// (the rules themselves are checked and unit-tested by promtool in CI).
#[tokio::test]
async fn the_shipped_alert_rules_read_metrics_that_exist() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).germany().start().await;
    let text = admin_get(&proxy, "/metrics", None).await.text();
    let exported: std::collections::HashSet<String> =
        samples(&text).into_iter().map(|s| s.metric).collect();
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml"),
    )
    .unwrap();
    let read: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("portalgate_"))
        .collect();
    assert!(read.len() >= 5, "{read:?}");
    for name in read {
        assert!(exported.contains(name), "{name} is not exported:\n{text}");
    }
}

/// `admin.public_metrics`: /metrics answers a scraper without the token;
/// the records and the configuration still need it.
#[tokio::test]
async fn public_metrics_need_no_token_and_nothing_else_opens() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .admin("token = \"admin-token-for-tests\"")
        .admin("public_metrics = true")
        .start()
        .await;
    let r = admin_get(&proxy, "/metrics", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("portalgate_requests_total"));
    for path in ["/config", "/decisions/recent"] {
        assert_eq!(admin_get(&proxy, path, None).await.status, 401, "{path}");
        let r = admin_get(&proxy, path, Some("admin-token-for-tests")).await;
        assert_eq!(r.status, 200, "{path}");
    }
}

/// The shipped Grafana dashboard is valid JSON and every metric its panels
/// query is one the proxy exports (histograms by their `_bucket` series).
#[tokio::test]
async fn the_grafana_dashboard_queries_metrics_that_exist() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).germany().start().await;
    // A request, so that the duration histogram has its buckets.
    assert_eq!(
        crate::support::client::get(&proxy.url("/v1/x"))
            .await
            .status,
        200
    );
    let text = metrics_after(&proxy, None, 1.0).await.text();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/portalgate.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut queried = 0;
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("portalgate_"))
            {
                queried += 1;
                assert!(
                    text.lines()
                        .any(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])),
                    "{name} (panel {:?}) is not exported:\n{text}",
                    panel["title"]
                );
            }
        }
    }
    assert!(queried >= 12, "{queried}");
}
