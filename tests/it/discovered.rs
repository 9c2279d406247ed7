//! Region discovery through the proxy: a tenant no file lists is judged by
//! the region its OpenID metadata names (a real TLS metadata server made
//! here), on both codecs; listed tenants and requests no regional rule
//! matches never cause a lookup; many requests make one lookup; a slow,
//! failing or garbage metadata server refuses (503, never forwarded) or,
//! when configured, judges in the default region.

use std::sync::atomic::Ordering;

use http::{Method, Request};
use http_body_util::Full;

use super::discovery::{Idp, GERMANY, GLOBAL};
use crate::support::certs::Ca;
use crate::support::client::{self, Reply};
use crate::support::{proxy, Backend, ProxyBuilder};

/// Listed in the Germany pack's `[[tenants.entries]]` (see `germany()`).
const LISTED_DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
/// Unknown to the metadata server (400).
const STRANGER: &str = "99999999-2222-3333-4444-555555555555";

struct World {
    idp: Idp,
    backend: Backend,
    proxy: proxy::RunningProxy,
    records: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A Germany proxy whose `[tenants.discovery]` asks `idp` in `mode`, with
/// `extra` lines in that table, `server` lines in `[server]` and `tail`
/// (more tables) at the end.
async fn world(mode: &str, extra: &str, server: &str, tail: &str) -> World {
    let ca = Ca::new("metadata CA");
    let idp = Idp::start(ca.leaf(&["localhost"]).server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let records = dir.path().join("decisions.jsonl");
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(&format!(
            "[tenants.discovery]\nurl = {:?}\nca_file = {:?}\n\
             cloud_instance_names = {{ \"microsoftonline.de\" = \"germany\", \"microsoftonline.com\" = \"global\" }}\n{extra}",
            idp.template(mode),
            ca_file.display().to_string(),
        ))
        .section(&if server.contains("workers") {
            format!("[server]\n{server}")
        } else {
            format!("[server]\nworkers = 1\n{server}")
        })
        .section(&format!(
            "[decision_log]\nfile = {:?}\npseudonym_key = \"k-0123456789abcdef\"",
            records.display().to_string()
        ))
        .section(tail)
        .start()
        .await;
    World {
        idp,
        backend,
        proxy,
        records,
        _dir: dir,
    }
}

impl World {
    fn lookups(&self) -> usize {
        self.idp.requests.load(Ordering::SeqCst)
    }

    async fn send(&self, method: &str, path: &str, body: &str) -> Reply {
        let req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(self.proxy.url(path))
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(Full::from(body.to_owned()))
            .unwrap();
        client::send(req).await
    }

    async fn metrics(&self) -> String {
        client::get(&format!("http://{}/metrics", self.proxy.admin))
            .await
            .text()
    }

    /// Stops the proxy (the log is flushed) and reads the records.
    async fn records(mut self) -> Vec<serde_json::Value> {
        self.proxy.begin_stop().await.unwrap();
        std::fs::read_to_string(&self.records)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The value of a sample line `name` (no labels) in a scrape.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn an_unlisted_tenant_is_judged_by_its_discovered_region_on_both_codecs() {
    for server in ["http1_fast_path = true", "http1_fast_path = false"] {
        let w = world("ok", "", server, "").await;
        // A Germany tenant found only through its metadata: intercepted.
        let r = w
            .send("POST", &format!("/v1/customers/{GERMANY}/users"), "{}")
            .await;
        assert_eq!(r.status, 403, "{server}: {}", r.text());
        assert_eq!(w.backend.arrived_count(), 0, "{server}");
        assert_eq!(w.lookups(), 1);
        // Asked again: from the cache.
        let r = w
            .send("POST", &format!("/v1/customers/{GERMANY}/users"), "{}")
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(w.lookups(), 1);
        // A body-aware rule: the region is found, then the body read.
        let reset = r#"{"passwordProfile":{"password":"x"}}"#;
        let r = w
            .send("PATCH", &format!("/v1/customers/{GERMANY}/users/u1"), reset)
            .await;
        assert_eq!(r.status, 403, "{server}: {}", r.text());
        assert!(r.text().contains("password"), "{}", r.text());
        // The global cloud and a tenant the identity provider does not know
        // are forwarded, each after one lookup.
        for tenant in [GLOBAL, STRANGER] {
            let r = w
                .send("POST", &format!("/v1/customers/{tenant}/users"), "{}")
                .await;
            assert_eq!(r.status, 200, "{server} {tenant}: {}", r.text());
        }
        assert_eq!(w.backend.arrived_count(), 2);
        assert_eq!(w.lookups(), 3);
        // Listed tenants, and paths no regional rule matches, never ask.
        let r = w
            .send("POST", &format!("/v1/customers/{LISTED_DE}/users"), "{}")
            .await;
        assert_eq!(r.status, 403);
        let other = "12345678-0000-4000-8000-000000000001";
        let r = w
            .send("GET", &format!("/v1/customers/{other}/orders"), "")
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(w.lookups(), 3, "{server}");
        let m = w.metrics().await;
        assert_eq!(sample(&m, "portalgate_discovery_lookups_total"), 3.0);
        assert_eq!(sample(&m, "portalgate_discovery_cache_misses_total"), 3.0);
        assert!(sample(&m, "portalgate_discovery_cache_hits_total") >= 2.0);
        assert_eq!(
            sample(&m, "portalgate_discovery_lookup_duration_seconds_count"),
            3.0
        );
        assert!(!m.contains(GERMANY), "no tenant id in a metric");
        let records = w.records().await;
        let first = &records[0];
        assert_eq!(first["rule"], "germany-customer-user-create", "{first}");
        assert_eq!(
            (first["region"].as_str(), first["region_source"].as_str()),
            (Some("germany"), Some("discovery"))
        );
        assert_eq!(first["tenant"], GERMANY);
        let listed = records
            .iter()
            .find(|r| r["tenant"] == LISTED_DE)
            .expect("the listed tenant's record");
        assert_eq!(listed["region_source"], "directory");
    }
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_a_new_tenant_make_one_lookup() {
    let w = world("ok", "", "workers = 2", "").await;
    let path = format!("/v1/customers/{GERMANY}/users");
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let req = Request::post(w.proxy.url(&path))
            .header("accept", "application/json")
            .body(Full::from("{}"))
            .unwrap();
        sends.spawn(client::send(req));
    }
    while let Some(r) = sends.join_next().await {
        assert_eq!(r.unwrap().status, 403);
    }
    assert_eq!(w.lookups(), 1);
    assert_eq!(w.backend.arrived_count(), 0);
}

#[tokio::test]
async fn a_slow_failing_or_garbage_metadata_server_refuses_and_never_forwards() {
    for mode in ["slow", "error", "garbage", "huge"] {
        let w = world(mode, "timeout = \"300ms\"", "", "").await;
        for (method, path) in [
            ("POST", format!("/v1/customers/{GERMANY}/users")),
            ("POST", format!("/v1/customers/{GLOBAL}/users")),
        ] {
            let r = w.send(method, &path, "{}").await;
            assert_eq!(r.status, 503, "{mode}: {}", r.text());
            assert_eq!(r.header("retry-after"), "5");
            let problem: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(problem["code"], "region_unavailable", "{problem}");
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains("region discovery: "), "{detail}");
            assert!(!detail.contains("localhost"), "{detail}");
        }
        // Failures are not kept: each request tried again.
        assert_eq!(w.lookups(), 2, "{mode}");
        assert_eq!(w.backend.arrived_count(), 0, "{mode}");
        // A request that needs no region is not held up.
        let r = w
            .send("GET", &format!("/v1/customers/{GERMANY}/orders"), "")
            .await;
        assert_eq!(r.status, 200);
        let m = w.metrics().await;
        let kind = match mode {
            "slow" => "timeout",
            "error" => "status",
            _ => "garbage",
        };
        assert!(
            m.contains(&format!(
                "portalgate_discovery_errors_total{{kind=\"{kind}\"}} 2"
            )),
            "{mode}: {m}"
        );
        let records = w.records().await;
        assert_eq!(records[0]["reason"], "region_unavailable", "{}", records[0]);
        assert_eq!(records[0]["status"], 503);
        assert_eq!(records[0]["tenant"], GERMANY);
    }
}

#[tokio::test]
async fn on_failure_default_judges_in_the_default_region_and_says_so() {
    // After the Germany pack, a rule for the default region.
    let global_rule = "[[rules]]\nid = \"global-user-create\"\n[rules.match]\n\
        methods = [\"POST\"]\npath = \"/v1/customers/{tenant}/users\"\n\
        regions = [\"global\"]\n[rules.action]\ntype = \"deny\"";
    let w = world("error", "on_failure = \"default\"", "", global_rule).await;
    let r = w
        .send("POST", &format!("/v1/customers/{GERMANY}/users"), "{}")
        .await;
    // Judged in the default region: not the Germany rule, the global one.
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(w.backend.arrived_count(), 0);
    assert_eq!(w.lookups(), 1);
    let records = w.records().await;
    assert_eq!(records[0]["rule"], "global-user-create", "{}", records[0]);
    assert_eq!(
        (
            records[0]["region"].as_str(),
            records[0]["region_source"].as_str()
        ),
        (Some("global"), Some("discovery-failed"))
    );
}

async fn reload(w: &World, text: &str) {
    std::fs::write(&w.proxy.config_path, text).unwrap();
    let r = client::send(
        Request::post(format!("http://{}/reload", w.proxy.admin))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_reload_keeps_discovered_regions_unless_their_source_changed() {
    let w = world("ok", "", "", "").await;
    let path = format!("/v1/customers/{GERMANY}/users");
    assert_eq!(w.send("POST", &path, "{}").await.status, 403);
    assert_eq!(w.lookups(), 1);
    let text = std::fs::read_to_string(&w.proxy.config_path).unwrap();
    // A change elsewhere: the region stays known.
    let edited = format!("{text}\n[limits]\nmax_headers = 99\n");
    reload(&w, &edited).await;
    assert_eq!(w.send("POST", &path, "{}").await.status, 403);
    assert_eq!(w.lookups(), 1, "kept across the reload");
    // A new TTL: what was cached under the old settings is asked again.
    let ttl = edited.replace(
        "[tenants.discovery]\n",
        "[tenants.discovery]\npositive_ttl = \"2h\"\n",
    );
    reload(&w, &ttl).await;
    assert_eq!(w.send("POST", &path, "{}").await.status, 403);
    assert_eq!(w.lookups(), 2);
    // Now listed (as global): the directory wins, no lookup.
    let listed = ttl.replace(
        "[tenants.hosts]",
        &format!("[[tenants.entries]]\nid = \"{GERMANY}\"\nregion = \"global\"\n[tenants.hosts]"),
    );
    reload(&w, &listed).await;
    assert_eq!(w.send("POST", &path, "{}").await.status, 200);
    assert_eq!(w.lookups(), 2);
    // What is in force, for operators.
    let doc = client::get(&format!("http://{}/config", w.proxy.admin)).await;
    let doc: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
    assert_eq!(doc["discovery"]["url"], w.idp.template("ok"), "{doc}");
    assert_eq!(doc["discovery"]["positive_ttl_s"], 7200.0);
    assert_eq!(doc["discovery"]["on_failure"], "refuse");
}

#[tokio::test]
async fn explain_makes_the_lookup_and_says_where_the_region_came_from() {
    let w = world("ok", "", "", "").await;
    let config = w.proxy.config_path.display().to_string();
    let url = format!("/v1/customers/{GERMANY}/users");
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        crate::support::child::run(&["explain", "--config", &config, "-X", "POST", &url])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("region from discovery") && out.contains("MATCH"),
        "{out}"
    );
    assert!(
        out.contains("answered by rule germany-customer-user-create"),
        "{out}"
    );
}

/// A report-only rule never changes what the client gets, not even while
/// discovery fails; a rule that enforces still refuses.
#[tokio::test]
async fn a_failing_lookup_never_blocks_for_a_report_only_rule() {
    let watch = "[[rules]]\nid = \"watch-orders-de\"\nmode = \"report-only\"\n[rules.match]\n\
        methods = [\"GET\"]\npath = \"/v1/customers/{tenant}/orders\"\n\
        regions = [\"germany\"]\n[rules.action]\ntype = \"deny\"";
    let w = world("error", "", "", watch).await;
    let r = w
        .send("GET", &format!("/v1/customers/{GERMANY}/orders"), "")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.backend.arrived_count(), 1);
    // The Germany pack's enforcing rule on another path still refuses.
    let r = w
        .send("POST", &format!("/v1/customers/{GERMANY}/users"), "{}")
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(w.backend.arrived_count(), 1);
    assert_eq!(w.lookups(), 2);
}
