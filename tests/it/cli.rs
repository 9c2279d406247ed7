//! The binary: `check` diagnostics and exit codes, usage errors, and
//! graceful shutdown of `serve` on SIGTERM.

use crate::support::certs::Ca;
use crate::support::child::{config_for, run, Served};
use crate::support::client::get;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Runs `check` on `path`, asserts exit 64 and every `expected` line in
/// stderr; returns stderr.
fn check_fails_with(path: &str, expected: &[String]) -> String {
    let (code, stdout, stderr) = run(&["check", "--config", path]);
    assert_eq!(code, 64, "stdout: {stdout}\nstderr: {stderr}");
    for e in expected {
        assert!(stderr.contains(e), "missing {e:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn check_reports_every_error_with_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        r#"[[listeners]]
address = "[::1]:80800"

[upstream]
url = "ftp://backend"
connect_timeout = "5 parsecs"
colour = "blue"

[limits]
max_headers = 0

[forwarding]
trusted_proxies = ["10.0.0.0/8", "not-a-cidr"]
"#,
    );
    let stderr = check_fails_with(
        &path,
        &[
            format!("{path}:2:1: listeners[0].address: invalid socket address \"[::1]:80800\""),
            format!("{path}:5:1: upstream.url: scheme \"ftp\" is not supported"),
            format!("{path}:6:1: upstream.connect_timeout: invalid duration \"5 parsecs\""),
            format!("{path}:7:1: upstream.colour: unknown key"),
            format!("{path}:10:1: limits.max_headers: must be between 1 and 1000, got 0"),
            format!("{path}:13:34: forwarding.trusted_proxies[1]: invalid CIDR \"not-a-cidr\""),
        ],
    );
    assert!(stderr.contains("6 errors found"), "{stderr}");
}

#[test]
fn check_refuses_configs_that_fail_open() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tenants.csv",
        "id,region\n0a1b2c3d-0000-4000-8000-00000000de02,germnay\n",
    );
    let path = write(
        dir.path(),
        "bad.toml",
        r#"[[listeners]]
address = "127.0.0.1:0"

[upstream]
url = "http://backend.internal:99999"

[tenants]
files = ["tenants.csv"]
[[tenants.entries]]
id = "0a1b2c3d-0000-4000-8000-00000000de01"
region = "germnay"
[tenants.hosts]
"portal.example.de" = "gemany"

[[rules]]
id = "r"
match.path = "/v1/customers/{tenant}/users"
match.regions = ["germany"]
match.tenant_from = ["path:tenant"]
action.type = "deny"
"#,
    );
    let csv = dir.path().join("tenants.csv").display().to_string();
    let stderr = check_fails_with(
        &path,
        &[
            format!("{path}:5:1: upstream.url: \"http://backend.internal:99999\": port \"99999\" is not a port number"),
            format!("{path}:11:1: tenants.entries[0].region: unknown region \"germnay\""),
            format!("{path}:13:1: tenants.hosts.portal.example.de: unknown region \"gemany\""),
            format!("{csv}:2:1: unknown region \"germnay\""),
        ],
    );
    assert!(stderr.contains("(known: germany, global)"), "{stderr}");
}

#[test]
fn check_locates_every_region_discovery_error() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"[[listeners]]
address = "127.0.0.1:0"

[upstream]
url = "http://127.0.0.1:9"

[[rules]]
id = "r"
match.path = "/v1/customers/{tenant}/users"
match.regions = ["germany"]
match.tenant_from = ["path:tenant"]
action.type = "deny"

[tenants.discovery]
"#;
    let path = write(
        dir.path(),
        "bad.toml",
        &format!(
            r#"{head}url = "https://{{tenant}}.login.example/openid"
cloud_instance_names = {{ "microsoftonline.de" = "germnay", "" = "germany" }}
tenant_region_scopes = {{ "DE" = "germany", "de" = "germany" }}
positive_ttl = "forever"
negative_ttl = "0s"
max_entries = 0
timeout = "2 fortnights"
on_failure = "forward"
ca_file = "missing.pem"
"#
        ),
    );
    check_fails_with(
        &path,
        &[
            format!("{path}:15:1: tenants.discovery.url: \"https://{{tenant}}.login.example/openid\": put {{tenant}} in the path"),
            format!("{path}:16:26: tenants.discovery.cloud_instance_names.microsoftonline.de: unknown region \"germnay\""),
            format!("{path}:16:60: tenants.discovery.cloud_instance_names.: an empty metadata value maps nothing"),
            format!("{path}:17:44: tenants.discovery.tenant_region_scopes.de: given twice"),
            format!("{path}:18:1: tenants.discovery.positive_ttl: invalid duration"),
            format!("{path}:19:1: tenants.discovery.negative_ttl: must be greater than zero"),
            format!("{path}:20:1: tenants.discovery.max_entries: must be between 1 and 10000000"),
            format!("{path}:21:1: tenants.discovery.timeout: invalid duration"),
            format!("{path}:22:1: tenants.discovery.on_failure: \"forward\": write \"refuse\""),
            format!("{path}:23:1: tenants.discovery.ca_file: "),
        ],
    );
    // No URL and nothing mapped.
    let empty = write(dir.path(), "empty.toml", head);
    check_fails_with(
        &empty,
        &[
            "tenants.discovery.url: missing: the metadata URL".to_string(),
            "tenants.discovery: maps nothing".to_string(),
        ],
    );
    // A good one passes, and a mapping to the default region is allowed.
    let good = write(
        dir.path(),
        "good.toml",
        &format!(
            "{head}url = \"https://login.example/{{tenant}}/v2.0/.well-known/openid-configuration\"\n\
             cloud_instance_names = {{ \"microsoftonline.de\" = \"germany\", \"microsoftonline.com\" = \"global\" }}\n"
        ),
    );
    let (code, _, err) = run(&["check", "--config", &good]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn check_locates_a_tenant_listed_in_two_regions_and_caps_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let de = "0a1b2c3d-0000-4000-8000-00000000de01";
    write(
        dir.path(),
        "a.csv",
        &format!("id,region\n{de},germany\n{de},germany\n"),
    );
    // The same tenant in another spelling and region, in a later file and
    // in an entry: both are reported where they are; the first stands.
    let upper = de.to_uppercase();
    write(
        dir.path(),
        "b.jsonl",
        &format!("\n{{\"id\": \"{{{upper}}}\", \"region\": \"global\"}}\n"),
    );
    let mut garbage = String::from("id,region\n");
    for _ in 0..150 {
        garbage.push_str("not-a-tenant-0000,germany\n");
    }
    write(dir.path(), "c.csv", &garbage);
    let path = write(
        dir.path(),
        "dup.toml",
        &format!(
            r#"[[listeners]]
address = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:9"
[tenants]
files = ["a.csv", "b.jsonl", "c.csv"]
[[tenants.entries]]
id = "{de}"
region = "global"

[[rules]]
id = "r"
match.path = "/v1/customers/{{tenant}}/users"
match.regions = ["germany"]
match.tenant_from = ["path:tenant"]
action.type = "deny"
"#
        ),
    );
    let file = |n: &str| dir.path().join(n).display().to_string();
    let stderr = check_fails_with(
        &path,
        &[
            format!("{}:2:1: tenant {de} is already in region germany, not global", file("b.jsonl")),
            format!("{path}:9:1: tenants.entries[0].region: tenant {de} is already in region germany, not global"),
            format!("{}:2:1: tenant id \"not-a-tenant-0000\"", file("c.csv")),
            format!("{}:101:1: tenant id", file("c.csv")),
            format!("{}:101:1: and 50 more bad lines (the first 100 are shown)", file("c.csv")),
        ],
    );
    assert!(
        !stderr.contains(&format!("{}:102:", file("c.csv"))),
        "{stderr}"
    );
}

#[test]
fn check_locates_syntax_and_type_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "syntax.toml",
        "[upstream]\nurl = \"http://a\"\n[limits\n",
    );
    let (code, _, stderr) = run(&["check", "--config", &path]);
    assert_eq!(code, 64);
    assert!(stderr.contains(&format!("{path}:3:")), "{stderr}");

    let path = write(
        dir.path(),
        "type.toml",
        "[[listeners]]\naddress = \"127.0.0.1:1\"\n[upstream]\nurl = \"http://a\"\n[limits]\nmax_uri_bytes = \"big\"\n",
    );
    let (code, _, stderr) = run(&["check", "--config", &path]);
    assert_eq!(code, 64);
    assert!(
        stderr.contains(&format!("{path}:6:17: limits.max_uri_bytes: invalid type")),
        "{stderr}"
    );
}

#[test]
fn check_reports_tls_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let a = ca.leaf(&["a.test"]);
    let b = ca.leaf(&["b.test"]);
    write(dir.path(), "a.pem", &a.cert_pem);
    write(dir.path(), "b.key", &b.key_pem);
    let path = write(
        dir.path(),
        "tls.toml",
        r#"[[listeners]]
address = "127.0.0.1:0"
[[listeners.tls.certificates]]
cert = "a.pem"
key = "b.key"
[[listeners.tls.certificates]]
cert = "missing.pem"
key = "missing.key"

[upstream]
url = "http://127.0.0.1:1"
"#,
    );
    let (code, _, stderr) = run(&["check", "--config", &path]);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("listeners[0].tls.certificates[0].key: private key")
            && stderr.contains("does not match certificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains("listeners[0].tls.certificates[1].cert: cannot read"),
        "{stderr}"
    );
}

#[test]
fn check_accepts_a_good_config_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "good.toml",
        &config_for("http://127.0.0.1:9", ""),
    );
    let (code, stdout, stderr) = run(&["check", "--config", &path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": OK"), "{stdout}");
    assert!(stdout.contains("upstream  http://127.0.0.1:9"), "{stdout}");
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let (code, _, stderr) = run(&["serve"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 64);
    for sub in ["serve", "check", "demo"] {
        let (code, stdout, _) = run(&[sub, "--help"]);
        assert_eq!(code, 0);
        assert!(stdout.contains("Usage: portalgate"), "{stdout}");
    }
}

/// The binary links mimalloc, which replaces `malloc` for the whole
/// process (main.rs): asked to, it reports itself at start.
#[test]
fn the_binary_allocates_with_mimalloc() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let out = std::process::Command::new(crate::support::child::bin())
        .args(["check", "--config"])
        .arg(&config)
        .env("MIMALLOC_VERBOSE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mimalloc: v2."), "{stderr}");
}

#[test]
fn serve_with_bad_config_exits_64_and_busy_port_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.toml", "[upstream]\n");
    let (code, _, stderr) = run(&["serve", "--config", &bad]);
    assert_eq!(code, 64, "{stderr}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let text = config_for("http://127.0.0.1:9", "")
        .replace("127.0.0.1:0", &busy.local_addr().unwrap().to_string());
    let path = write(dir.path(), "busy.toml", &text);
    let (code, _, stderr) = run(&["serve", "--config", &path]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(
        &config_for(&backend.url(), "[server]\ndrain_timeout = \"20s\""),
        dir.path(),
    );
    let addr = served.addr;
    let in_flight = tokio::spawn(async move { get(&format!("http://{addr}/slow?ms=1500")).await });
    backend.wait_arrivals(1).await;

    served.signal("-TERM");
    tokio::task::spawn_blocking({
        let line = served.wait_log("listeners closed");
        move || line
    })
    .await
    .unwrap();
    // After the listener closed, new connections are refused.
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );

    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "slow done");
    let status = tokio::task::spawn_blocking(move || served.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A request still in flight when the drain timeout runs out is cut off:
/// the process exits 0 well before the request would have finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_drain_timeout_cuts_off_what_is_left_and_exits_0() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(
        &config_for(&backend.url(), "[server]\ndrain_timeout = \"1s\""),
        dir.path(),
    );
    let addr = served.addr;
    // Far longer than the drain timeout and than `wait_exit`'s 30 s bound.
    let in_flight = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /slow?ms=60000 HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        // Ends when the proxy closes the connection.
        let _ = s.read_to_end(&mut got).await;
        got
    });
    backend.wait_arrivals(1).await;
    served.signal("-TERM");
    tokio::task::spawn_blocking({
        let line = served.wait_log("drain timeout reached");
        move || line
    })
    .await
    .unwrap();
    let got = in_flight.await.unwrap();
    assert!(
        !String::from_utf8_lossy(&got).contains("slow done"),
        "{got:?}"
    );
    let status = tokio::task::spawn_blocking(move || served.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// An upstream outage fails every request; the operational log says so at
/// most 10 times a second and then counts the lines it left out, instead
/// of one warning per request.
#[tokio::test]
async fn upstream_failure_warnings_are_throttled_with_a_count() {
    let refused = crate::support::Refused::new();
    let dead = refused.addr;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(&config_for(&format!("http://{dead}"), ""), dir.path());
    let url = format!("http://{}/x", served.addr);
    let started = std::time::Instant::now();
    for _ in 0..300 {
        assert_eq!(get(&url).await.status, 502);
    }
    // The count is reported with the first warning of a later second.
    let mut lines = served.lines_now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !lines.iter().any(|l| l.contains("were not logged")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no count line: {lines:#?}"
        );
        assert_eq!(get(&url).await.status, 502);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        lines.extend(served.lines_now());
    }
    let seconds = started.elapsed().as_secs() + 2;
    let warnings = lines
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("upstream"))
        .count() as u64;
    assert!(
        warnings <= 10 * seconds + seconds,
        "{warnings} warning lines in about {seconds} s: {lines:#?}"
    );
    let count: u64 = lines
        .iter()
        .find_map(|l| l.split("suppressed=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(count > 0, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_idle_keep_alive_connections_exits_0() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The drain timeout is longer than `wait_exit`'s 30 s bound: the test
    // passes only if idle keep-alive connections are closed at once, not
    // waited out.
    let mut served = Served::start(
        &config_for(&backend.url(), "[server]\ndrain_timeout = \"60s\""),
        dir.path(),
    );
    // A pooled client leaves its keep-alive connection open and idle.
    let client = crate::support::client::http1();
    let resp = client
        .get(format!("http://{}/echo", served.addr).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    served.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || served.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn check_locates_policy_errors_in_included_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let pack = write(
        dir.path(),
        "policies/pack.toml",
        r#"[portals.azure]
name = "Azure"
url = "https://portal.example"

[[rules]]
id = "r1"
[rules.match]
methods = ["POST"]
path = "/v1/customers/{tenant}/users/{tenant}"
[rules.action]
type = "explain"
feature = "x"
portals = ["azure"]

[[rules]]
id = "r2"
mode = "sometimes"
[rules.match]
path = "/v1/x"
tenant_from = ["path:nope"]
[rules.action]
type = "redirect"
location = "https://portal.example/{user}"
"#,
    );
    let main = write(
        dir.path(),
        "main.toml",
        r#"include = ["policies/pack.toml"]
[[listeners]]
address = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:9"

[[rules]]
id = "r1"
[rules.match]
path = "/v1/y"
[rules.action]
type = "explain"
feature = "y"
portals = ["missing-portal"]

[[tenants.entries]]
id = "0a1b2c3d-0000-4000-8000-00000000de0g"
region = "germany"
"#,
    );
    let (code, _, stderr) = run(&["check", "--config", &main]);
    assert_eq!(code, 64, "{stderr}");
    for expected in [
        format!("{pack}:9:1: rules[0].match.path: placeholder {{tenant}} appears twice"),
        format!("{pack}:17:1: rules[1].mode: \"sometimes\": use enforce, report-only or off"),
        format!("{pack}:20:16: rules[1].match.tenant_from[0]: the path has no capture {{nope}}"),
        format!("{main}:8:1: rules[0].id: rule id \"r1\" is used by an earlier rule"),
        format!("{main}:14:12: rules[0].action.portals[0]: no [portals.missing-portal] is defined"),
        format!("{main}:17:1: tenants.entries[0].id: \"0a1b2c3d-0000-4000-8000-00000000de0g\": a malformed GUID"),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn check_prints_the_rule_table_of_the_shipped_demo_config() {
    let (code, stdout, stderr) = run(&["check", "--config", "config/demo.toml"]);
    assert_eq!(code, 0, "{stderr}");
    for id in [
        "germany-password-reset",
        "germany-customer-user-create",
        "germany-license-read",
        "germany-ui-partner-users",
    ] {
        assert!(stdout.contains(id), "{id} missing:\n{stdout}");
    }
    assert!(stdout.contains("report-only"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_on_port_0_and_its_printed_requests_behave_as_described() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::support::child::bin())
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--backend-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("Stop with"))
            .collect()
    })
    .await
    .unwrap();
    let proxy = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("proxy"))
        .map(|s| s.trim().to_string())
        .expect("the banner names the proxy URL");
    let curls: Vec<&String> = banner
        .iter()
        .filter(|l| l.trim().starts_with("curl"))
        .collect();
    assert!(curls.len() >= 6, "{banner:?}");
    assert!(
        curls.iter().all(|c| c.contains("http://127.0.0.1:")),
        "{curls:?}"
    );
    assert!(
        !curls.iter().any(|c| c.contains(":0/")),
        "printed ports are the bound ones"
    );
    let text = banner.join("\n");
    assert!(
        text.contains(&format!("kill -HUP {}", child.id())),
        "the banner names the pid: {text}"
    );
    let decisions = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("portalgate logs --summary "))
        .map(|s| s.trim().to_string())
        .expect("the banner says how to read the decision log");

    let de = "0a1b2c3d-0000-4000-8000-00000000de01";
    let gl = "0a1b2c3d-0000-4000-8000-0000000000a1";
    let post = |tenant: &str, accept: &'static str| {
        Request::post(format!("{proxy}/v1/customers/{tenant}/users"))
            .header("accept", accept)
            .header("content-type", "application/json")
            .header("ms-correlationid", "5f0d1c7e-demo")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap()
    };
    let r = crate::support::client::send(post(de, "application/json")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("ms-correlationid"), "5f0d1c7e-demo");
    assert!(!r.headers.contains_key("x-demo-backend"));
    let r = crate::support::client::send(post(gl, "application/json")).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("x-demo-backend"), "reached");
    let r = crate::support::client::send(
        Request::get(format!("{proxy}/dashboard/account/usermanagement"))
            .header("host", "partnercenter.microsoftonline.de")
            .header("accept", "text/html")
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "https://portal.office.de/adminportal");
    let r = crate::support::client::send(
        Request::patch(format!(
            "{proxy}/v1/customers/{de}/users/7f4b1c2e-0000-4000-8000-000000000001"
        ))
        .header("accept", "application/problem+json")
        .header("accept-language", "de")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"passwordProfile\":{\"forceChangePassword\":true}}",
        )))
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-language"), "de");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["rule"], "germany-password-reset");
    assert_eq!(
        v["title"],
        "Das Zurücksetzen von Kennwörtern ist hier nicht verfügbar"
    );
    assert_eq!(v["portal"]["url"], "https://portal.microsoftazure.de");
    // The blocked requests are in the decision log the banner named
    // (written by the log's writer task: wait for them, bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let summary = loop {
        let (code, out, err) = run(&["logs", "--summary", &decisions]);
        if code == 0 && out.starts_with("3 decisions") {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "{code} {out} {err}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(summary.contains("germany-password-reset"), "{summary}");
    // The demo reloads like a deployment.
    let admin = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("admin"))
        .map(|s| s.trim().to_string())
        .expect("the banner names the admin URL");
    let r = crate::support::client::send(
        Request::post(format!("{admin}/reload"))
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.text().trim()),
        (200, "{\"generation\":2}")
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn test_command_passes_the_shipped_cases_and_fails_a_wrong_expectation() {
    let (code, stdout, stderr) = run(&[
        "test",
        "--config",
        "config/demo.toml",
        "config/policies/germany.cases.toml",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let cases = write(
        dir.path(),
        "wrong.toml",
        r#"[[cases]]
name = "claims a Germany user creation is forwarded"
method = "POST"
url = "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de01/users"
headers = { "Content-Type" = "application/json" }
body = '{}'
expect = { decision = "forward", status = 200 }

[[cases]]
name = "a global read is forwarded"
url = "/v1/customers/0a1b2c3d-0000-4000-8000-0000000000a1/users"
expect = { decision = "forward" }

[[cases]]
name = "a full URL: its host is the Host, and picks the Germany front end"
url = "https://partnercenter.microsoftonline.de/dashboard/account/usermanagement"
headers = { "Accept" = "text/html" }
expect = { decision = "redirect", rule = "germany-ui-partner-users" }

[[cases]]
name = "a wrong rule is named plainly"
method = "DELETE"
url = "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de01/users/u1"
expect = { decision = "explain", rule = "no-such-rule" }

[[cases]]
name = "a refusal says why"
url = "/v1/customers/a%2Fb/users"
expect = { decision = "forward" }

[[cases]]
name = "a URL that is neither a path nor http(s)"
url = "ftp://files.example/x"
expect = { decision = "forward" }
"#,
    );
    let (code, stdout, _) = run(&["test", "--config", "config/demo.toml", &cases]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL  claims a Germany user creation is forwarded"),
        "{stdout}"
    );
    assert!(
        stdout.contains("decision: expected forward, got explain (status 403)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS  a global read is forwarded"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS  a full URL: its host is the Host"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rule: expected no-such-rule, got germany-customer-user-update"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Some(") && !stdout.contains("None"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the proxy refused it: ") && stdout.contains("ambiguous_path"),
        "{stdout}"
    );
    assert!(
        stdout.contains("write a path (/v1/...) or a full http(s) URL"),
        "{stdout}"
    );
    assert!(stdout.contains("2 passed, 4 failed"), "{stdout}");

    let bad = write(dir.path(), "bad.toml", "[[cases]]\nname = 1\n");
    let (code, _, stderr) = run(&["test", "--config", "config/demo.toml", &bad]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

#[test]
fn explain_shows_each_rule_the_decision_and_the_response() {
    let de = "0a1b2c3d-0000-4000-8000-00000000de01";
    let gl = "0a1b2c3d-0000-4000-8000-0000000000a1";
    let user = format!("/v1/customers/{de}/users/u1");
    let (code, out, err) = run(&[
        "explain",
        "--config",
        "config/demo.toml",
        "-X",
        "PATCH",
        &user,
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/problem+json",
        "-d",
        "{\"passwordProfile\":{}}",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("germany-password-reset           MATCH (tenant"),
        "{out}"
    );
    assert!(
        out.contains("germany-customer-user-update     not reached"),
        "{out}"
    );
    assert!(
        out.contains("decision   answered by rule germany-password-reset"),
        "{out}"
    );
    assert!(out.contains("403 Forbidden"), "{out}");
    assert!(out.contains("\"rule\":\"germany-password-reset\""), "{out}");

    let (_, out, _) = run(&[
        "explain",
        "--config",
        "config/demo.toml",
        "-X",
        "PATCH",
        &user,
    ]);
    assert!(out.contains("needs the body to decide"), "{out}");

    let (_, out, _) = run(&[
        "explain",
        "--config",
        "config/demo.toml",
        "-X",
        "POST",
        &format!("/v1/customers/{gl}/users"),
    ]);
    assert!(
        out.contains("germany-customer-user-create     no: region global"),
        "{out}"
    );
    assert!(
        out.contains("decision   forwarded to the upstream"),
        "{out}"
    );

    let (_, out, _) = run(&[
        "explain",
        "--config",
        "config/demo.toml",
        "/v1/customers/x%2Fy",
    ]);
    assert!(
        out.contains("canonical  rejected: an encoded path separator"),
        "{out}"
    );
    assert!(out.contains("decision   refused by the proxy"), "{out}");
}

#[test]
fn check_warns_about_rules_an_earlier_rule_always_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "shadow.toml",
        r#"[[listeners]]
address = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:9"

[[rules]]
id = "all-writes"
[rules.match]
methods = ["POST", "PUT"]
path = "/v1/**"
[rules.action]
type = "deny"

[[rules]]
id = "create"
[rules.match]
methods = ["POST"]
path = "/v1/customers/{tenant}/users"
[rules.action]
type = "deny"
status = 451
"#,
    );
    let (code, _, stderr) = run(&["check", "--config", &path]);
    assert_eq!(code, 0, "a warning is not an error: {stderr}");
    assert!(
        stderr.contains("rule \"create\" can never match: rule \"all-writes\"")
            && stderr.contains("shadow.toml: rules[1]"),
        "{stderr}"
    );
}

/// A generated decision log: (file text, the records as values).
fn generated_log(n: usize, offset_hours: u64) -> (String, Vec<serde_json::Value>) {
    let rules = [
        "germany-customer-user-create",
        "germany-password-reset",
        "germany-license-read",
    ];
    let tenants = [
        "0a1b2c3d-0000-4000-8000-00000000de01",
        "0a1b2c3d-0000-4000-8000-00000000de02",
    ];
    let mut text = String::new();
    let mut records = Vec::new();
    for i in 0..n {
        let hour = (i as u64 / 7 + offset_hours) % 24;
        let rule = rules[i % 3];
        let (mode, action, status) = match i % 3 {
            2 => ("report-only", "explain", 200),
            _ => ("enforce", "explain", 403),
        };
        let r = serde_json::json!({
            "ts": format!("2026-11-20T{hour:02}:{:02}:00.000Z", i % 60),
            "decision_id": format!("d{i}"), "request_id": format!("r{i}"),
            "rule": rule, "mode": mode, "action": action, "status": status, "reason": null,
            "method": "POST", "host": "portal", "route": "/v1/customers/{tenant}/users",
            "path": format!("/v1/customers/{}/users", tenants[i % 2]),
            "target": "/x", "tenant": tenants[i % 2], "tenant_source": "path:tenant",
            "region": "germany", "region_source": "directory",
            "portal": "https://portal.microsoftazure.de", "client": null, "user_agent": null,
            "protocol": "HTTP/1.1", "duration_ms": 0.5
        });
        text += &r.to_string();
        text.push('\n');
        records.push(r);
    }
    (text, records)
}

#[test]
fn logs_filters_summarises_and_skips_malformed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (older, mut all) = generated_log(30, 0);
    let (newer, more) = generated_log(40, 5);
    all.extend(more);
    write(dir.path(), "decisions.jsonl.1", &older);
    let main = write(
        dir.path(),
        "decisions.jsonl",
        &format!("{newer}this is not json\n{{\"ts\":1}}\n"),
    );

    // JSON lines: rotated file first, malformed lines reported and skipped.
    let (code, out, err) = run(&["logs", "--json", &main]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 70);
    assert_eq!(lines[0]["decision_id"], "d0");
    assert_eq!(
        lines[30]["decision_id"], "d0",
        "the current file follows the rotated one"
    );
    assert!(
        err.contains("decisions.jsonl:41: malformed record skipped"),
        "{err}"
    );
    assert!(
        err.contains("decisions.jsonl:42: malformed record skipped"),
        "{err}"
    );
    assert!(err.contains("2 malformed lines skipped"), "{err}");

    // Every filter, against a count done here.
    let count = |pred: &dyn Fn(&serde_json::Value) -> bool| all.iter().filter(|r| pred(r)).count();
    let cases: Vec<(Vec<&str>, usize)> = vec![
        (
            vec!["--rule", "germany-password-reset"],
            count(&|r| r["rule"] == "germany-password-reset"),
        ),
        (
            vec!["--tenant", "{0A1B2C3D-0000-4000-8000-00000000DE02}"],
            count(&|r| r["tenant"] == "0a1b2c3d-0000-4000-8000-00000000de02"),
        ),
        (vec!["--status", "200"], count(&|r| r["status"] == 200)),
        (vec!["--action", "explain"], 70),
        (vec!["--action", "redirect"], 0),
        (
            vec!["--since", "2026-11-20T06:00:00Z"],
            count(&|r| r["ts"].as_str().unwrap() >= "2026-11-20T06"),
        ),
        (
            vec!["--until", "2026-11-20T02:59:59Z"],
            count(&|r| r["ts"].as_str().unwrap() < "2026-11-20T03"),
        ),
        (vec!["--path", "/v1/customers/{tenant}/users"], 70),
        (
            vec![
                "--path",
                "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de01",
            ],
            count(&|r| r["tenant"] == "0a1b2c3d-0000-4000-8000-00000000de01"),
        ),
        (vec!["--since", "1h"], 0),
        (
            vec!["--mode", "report-only"],
            count(&|r| r["mode"] == "report-only"),
        ),
        (
            vec!["--mode", "enforce"],
            count(&|r| r["mode"] == "enforce"),
        ),
    ];
    for (filter, expected) in cases {
        let mut a = vec!["logs", "--json"];
        a.extend(filter.iter().copied());
        a.push(&main);
        let (code, out, err) = run(&a);
        assert_eq!(code, 0, "{filter:?}: {err}");
        assert_eq!(out.lines().count(), expected, "{filter:?}");
    }

    // The summary's figures equal an independent count.
    let (code, out, _) = run(&["logs", "--summary", &main]);
    assert_eq!(code, 0);
    assert!(out.starts_with("70 decisions\n"), "{out}");
    for rule in [
        "germany-customer-user-create",
        "germany-password-reset",
        "germany-license-read",
    ] {
        let n = count(&|r| r["rule"] == rule);
        assert!(
            out.lines()
                .any(|l| l.starts_with(rule) && l.trim_end().ends_with(&format!(" {n}"))),
            "{rule} {n}:\n{out}"
        );
    }
    let ro = count(&|r| r["mode"] == "report-only");
    assert!(
        out.lines()
            .any(|l| l.starts_with("explain (report-only)")
                && l.trim_end().ends_with(&format!(" {ro}"))),
        "{out}"
    );
    let hour05 = count(&|r| r["ts"].as_str().unwrap().starts_with("2026-11-20T05"));
    let line = out
        .lines()
        .find(|l| l.starts_with("2026-11-20T05:00Z"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(&format!(" {hour05}  ")) && line.contains('█'),
        "{line}"
    );

    // The table has a header and one row per record.
    let (_, out, _) = run(&["logs", "--rule", "germany-password-reset", &main]);
    assert!(out.lines().next().unwrap().starts_with("time"));
    assert_eq!(
        out.lines().count(),
        1 + count(&|r| r["rule"] == "germany-password-reset")
    );

    // Report-only rows say so; a rejection shows its reason and target.
    let (_, out, _) = run(&["logs", "--mode", "report-only", &main]);
    let row = out.lines().nth(1).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(" report-only "), "{row}");
    let rejected = write(
        dir.path(),
        "rejected.jsonl",
        &(serde_json::json!({
            "ts": "2026-11-20T01:00:00.000Z", "decision_id": "d", "request_id": "r",
            "rule": null, "mode": "enforce", "action": "reject", "status": 400,
            "reason": "ambiguous_path", "method": "GET", "path": null,
            "target": "/v1/customers/~0123456789abcdef/users", "tenant": null
        })
        .to_string()
            + "\n"),
    );
    let (_, out, _) = run(&["logs", &rejected]);
    let header = out.lines().next().unwrap();
    assert!(
        header.contains(" mode ") && header.contains(" reason "),
        "{header}"
    );
    let row = out.lines().nth(1).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(" ambiguous_path "), "{row}");
    assert!(
        row.ends_with("/v1/customers/~0123456789abcdef/users"),
        "{row}"
    );

    // Values that can match nothing are usage errors, not empty results.
    for bad in [
        vec!["--since", "yesterday-ish"],
        vec!["--action", "bogus"],
        vec!["--mode", "sometimes"],
        vec!["--status", "42"],
        vec!["--tenant", "not-a-tenant"],
    ] {
        let mut a = vec!["logs"];
        a.extend(bad.iter().copied());
        a.push(&main);
        let (code, _, err) = run(&a);
        assert_eq!(code, 64, "{bad:?}: {err}");
    }
}

#[test]
fn operational_logs_in_json() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "c.toml", &config_for("http://127.0.0.1:9", ""));
    let mut child = Command::new(crate::support::child::bin())
        .args(["--log-format", "json", "serve", "--config", &path])
        .env_remove("PORTALGATE_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = std::io::BufReader::new(child.stderr.take().unwrap())
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    let json = |line: &String| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let (loading, listening) = (json(&lines[0]), json(&lines[1]));
    assert_eq!(loading["message"], "loading the configuration");
    assert_eq!(loading["config"], path.as_str());
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["message"], "listening");
    assert!(listening["addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(listening["timestamp"].is_string());
}

#[test]
fn logs_follow_survives_rotation() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (text, _) = generated_log(7, 0);
    let lines: Vec<&str> = text.lines().collect();
    let file = dir.path().join("decisions.jsonl");
    std::fs::write(&file, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let mut child = Command::new(crate::support::child::bin())
        .args(["logs", "--follow", "--json"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if tx
                .send(v["decision_id"].as_str().unwrap().to_string())
                .is_err()
            {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a followed record within 10 s")
    };
    assert_eq!((next(), next()), ("d0".to_string(), "d1".to_string()));

    let append = |s: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    append(&format!("{}\n", lines[2]));
    assert_eq!(next(), "d2");

    // Rotation as the proxy does it: rename, then a new file.
    std::fs::rename(&file, dir.path().join("decisions.jsonl.1")).unwrap();
    std::fs::write(&file, format!("{}\n{}\n", lines[3], lines[4])).unwrap();
    assert_eq!((next(), next()), ("d3".to_string(), "d4".to_string()));

    // A line written in two parts is printed once, whole.
    let (a, b) = lines[5].split_at(20);
    append(a);
    append(&format!("{b}\n"));
    assert_eq!(next(), "d5");
    // The next record printed is the next one written: nothing twice.
    append(&format!("{}\n", lines[6]));
    assert_eq!(next(), "d6");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_on_a_healthy_admin_listener_and_1_otherwise() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let url = format!("http://{}/healthz", proxy.admin);
    let (code, _, err) = tokio::task::spawn_blocking(move || run(&["healthcheck", "--url", &url]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let refused = crate::support::Refused::new();
    let dead = refused.addr;
    let url = format!("http://{dead}/healthz");
    let (code, _, err) = tokio::task::spawn_blocking(move || run(&["healthcheck", "--url", &url]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("healthz"), "{err}");
}

/// An `https://` URL is checked over TLS, with the server's name verified
/// against the given CA (or the web PKI roots); other schemes are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_speaks_tls_to_an_https_url() {
    let ca = crate::support::certs::Ca::new("healthcheck CA");
    let leaf = ca.leaf(&["localhost"]);
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .tls_cert(&leaf.cert_pem, &leaf.key_pem, &[])
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let https = format!("https://localhost:{}/echo", proxy.addr.port());
    let check = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&args)
        })
    };
    let args = |extra: &[&str]| {
        let mut a = vec!["healthcheck".to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let (code, _, err) = check(args(&["--url", &https, "--ca-file", &ca_file]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    // Not trusted by the web PKI roots: a failure, not a pass.
    let (code, _, err) = check(args(&["--url", &https])).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TLS"), "{err}");
    // Plain HTTP to the TLS listener gets no 200.
    let plain = format!("http://localhost:{}/echo", proxy.addr.port());
    let (code, _, err) = check(args(&["--url", &plain])).await.unwrap();
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = check(args(&["--url", "ftp://localhost/x"])).await.unwrap();
    assert_eq!(code, 64, "{err}");
}

/// SIGTERM while clients keep sending, over new connections and keep-alive:
/// every request that reached the backend is answered to its client (none in
/// flight is lost), new connections are refused once the listener has
/// closed, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_request_in_flight() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &config_for(
            &backend.url(),
            "[server]\ndrain_timeout = \"20s\"\nwatch = false",
        ),
        dir.path(),
    );
    let addr = served.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // New connection per request.
    for _ in 0..6 {
        let (stop, answered) = (stop.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                    break; // refused: the listener has closed
                };
                use tokio::io::AsyncWriteExt;
                if s.write_all(b"GET /slow?ms=40 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
                    .await
                    .is_err()
                {
                    continue;
                }
                let r = crate::support::client::read_response(&mut s).await;
                if r.starts_with("HTTP/1.1 200") && r.ends_with("slow done") {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Keep-alive clients.
    for _ in 0..2 {
        let (stop, answered) = (stop.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let client = crate::support::client::http1();
            while !stop.load(Ordering::Relaxed) {
                let url = format!("http://{addr}/slow?ms=40").parse().unwrap();
                match client.get(url).await {
                    Ok(resp) => {
                        let ok = resp.status() == 200;
                        let body = resp.into_body().collect().await;
                        if ok && body.is_ok_and(|b| b.to_bytes() == "slow done") {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) if e.is_connect() => break,
                    Err(_) => {}
                }
            }
        }));
    }
    // HTTP/2: streams on one connection until the GOAWAY.
    let h2_answered = Arc::new(AtomicUsize::new(0));
    {
        let (stop, answered, h2_answered) = (stop.clone(), answered.clone(), h2_answered.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = crate::support::client::h2c(addr).await;
            while !stop.load(Ordering::Relaxed) {
                let req = Request::get(format!("http://{addr}/slow?ms=40"))
                    .body(http_body_util::Full::<bytes::Bytes>::default())
                    .unwrap();
                match sender.send_request(req).await {
                    Ok(resp) => {
                        let ok = resp.status() == 200;
                        let body = resp.into_body().collect().await;
                        if ok && body.is_ok_and(|b| b.to_bytes() == "slow done") {
                            answered.fetch_add(1, Ordering::Relaxed);
                            h2_answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // GOAWAY: the connection takes no new stream.
                    Err(_) => break,
                }
            }
        }));
    }
    backend.wait_arrivals(40).await;
    served.signal("-TERM");
    let served = tokio::task::spawn_blocking(move || {
        served.wait_log("listeners closed");
        served
    })
    .await
    .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted after the listener closed"
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let mut served = served;
    let status = tokio::task::spawn_blocking(move || served.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let reached = backend.arrived_count();
    assert!(reached >= 40);
    assert_eq!(
        answered.load(Ordering::Relaxed),
        reached,
        "every request that reached the backend was answered to its client"
    );
    assert!(h2_answered.load(Ordering::Relaxed) > 0, "HTTP/2 took part");
}

/// Shell completions and the man page come from the CLI definition itself.
#[test]
fn completions_and_the_man_page_are_generated_from_the_cli() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in ["serve", "check", "logs", "healthcheck", "log-level"] {
            assert!(out.contains(sub), "{shell} lacks {sub}");
        }
    }
    // The bash script is valid bash.
    let (_, script, _) = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "portalgate.bash", &script);
    let syntax = std::process::Command::new("bash")
        .args(["-n", &path])
        .status()
        .unwrap();
    assert!(syntax.success());
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH portalgate"),
        "{page}"
    );
    for sub in [
        "serve",
        "check",
        "demo",
        "explain",
        "logs",
        "healthcheck",
        "test",
    ] {
        assert!(page.contains(sub), "the man page lacks {sub}");
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 64, "{err}");
}

/// A reader that stops early (`portalgate schema | head`, `portalgate check
/// | head -1`) is no failure: no panic, no message, and the exit code is
/// the command's own, as for any Unix filter.
#[test]
fn output_stops_quietly_when_the_reader_goes() {
    let demo = ["--config", "config/demo.toml"];
    for args in [
        &["schema"][..],
        &["man"],
        &["completions", "bash"],
        &["check", demo[0], demo[1]],
        &["explain", demo[0], demo[1], "/v1/customers"],
        &[
            "test",
            demo[0],
            demo[1],
            "config/policies/germany.cases.toml",
        ],
    ] {
        let mut child = std::process::Command::new(crate::support::child::bin())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The read end closes before the child writes: every write fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// The example configuration shows every key of the README's reference
/// (commented out where it is an alternative or needs a file), and passes
/// `check`.
#[test]
fn the_example_config_shows_every_key_of_the_reference() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("config/portalgate.example.toml")).unwrap();
    // Every dotted path the example spells: headers and keys, commented or not.
    let mut shown = std::collections::HashSet::new();
    let mut table = String::new();
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(h) = line.strip_prefix('[') {
            table = h.trim_matches(|c| c == '[' || c == ']').to_string();
            shown.insert(table.clone());
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.".contains(c))
            {
                let full = if table.is_empty() {
                    key.to_string()
                } else {
                    format!("{table}.{key}")
                };
                shown.insert(full);
            }
        }
    }
    let reference = readme
        .split("## Configuration reference")
        .nth(1)
        .and_then(|r| r.split("\n## ").next())
        .unwrap();
    let mut section = String::new();
    let mut checked = 0;
    for line in reference.lines() {
        if let Some(h) = line.strip_prefix("### `") {
            section = h
                .split('`')
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == '[' || c == ']')
                .to_string();
            continue;
        }
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let first = cell.split(" |").next().unwrap();
        let alternatives: Vec<String> = first
            .split(" / ")
            .map(|k| format!("{section}.{}", k.trim_matches('`').replace("[]", "")))
            .collect();
        assert!(
            alternatives.iter().any(|k| shown.contains(k)),
            "the example does not show {alternatives:?}"
        );
        checked += 1;
    }
    assert!(checked >= 60, "{checked} keys in the reference");
    let (code, _, err) = run(&["check", "--config", "config/portalgate.example.toml"]);
    assert_eq!(code, 0, "{err}");
}

/// Checks `value` against the subset of JSON Schema that schemars writes
/// ($ref, anyOf, type, properties, additionalProperties, items); appends
/// what fails.
fn schema_errors(
    root: &serde_json::Value,
    node: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value as V;
    if let Some(r) = node.get("$ref").and_then(V::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return schema_errors(root, &root["$defs"][name], value, at, errors);
    }
    if let Some(any) = node.get("anyOf").and_then(V::as_array) {
        let ok = any.iter().any(|alt| {
            let mut e = Vec::new();
            schema_errors(root, alt, value, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: matches no alternative"));
        }
        return;
    }
    if let Some(t) = node.get("type") {
        let types: Vec<&str> = match t {
            V::String(s) => vec![s.as_str()],
            V::Array(a) => a.iter().filter_map(V::as_str).collect(),
            _ => vec![],
        };
        let is = match value {
            V::Null => "null",
            V::Bool(_) => "boolean",
            V::Number(n) if n.is_i64() || n.is_u64() => "integer",
            V::Number(_) => "number",
            V::String(_) => "string",
            V::Array(_) => "array",
            V::Object(_) => "object",
        };
        if !types
            .iter()
            .any(|t| *t == is || (*t == "number" && is == "integer"))
        {
            errors.push(format!("{at}: {is}, the schema wants {types:?}"));
            return;
        }
    }
    match value {
        V::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}.{k}");
                if let Some(p) = node.get("properties").and_then(|p| p.get(k)) {
                    schema_errors(root, p, v, &here, errors);
                } else {
                    match node.get("additionalProperties") {
                        Some(V::Bool(false)) => errors.push(format!("{here}: unknown key")),
                        Some(s @ V::Object(_)) => schema_errors(root, s, v, &here, errors),
                        _ => {}
                    }
                }
            }
        }
        V::Array(items) => {
            if let Some(s) = node.get("items") {
                for (i, v) in items.iter().enumerate() {
                    schema_errors(root, s, v, &format!("{at}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// `portalgate schema` and `check` agree: every shipped configuration (and
/// policy pack) passes both, and a misspelt key or a wrong type fails both.
#[test]
fn the_schema_and_check_agree_on_every_shipped_config() {
    let (code, out, err) = run(&["schema"]);
    assert_eq!(code, 0, "{err}");
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    let valid = |text: &str| {
        let value: toml::Value = toml::from_str(text).unwrap();
        let json = serde_json::to_value(value).unwrap();
        let mut errors = Vec::new();
        schema_errors(&schema, &schema, &json, "$", &mut errors);
        errors
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = ["config", "config/policies"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| !p.to_string_lossy().ends_with(".cases.toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        let errors = valid(&std::fs::read_to_string(f).unwrap());
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
    }
    // The ConfigMap's configuration too.
    let cm: String =
        std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml")).unwrap();
    let start = cm.find("portalgate.toml: |").unwrap();
    let body: String = cm[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string() + "\n")
        .collect();
    assert!(body.contains("[upstream]"), "{body}");
    assert!(valid(&body).is_empty(), "{:?}", valid(&body));
    // Both refuse a misspelt key and a wrong type.
    let dir = tempfile::tempdir().unwrap();
    let base =
        "[[listeners]]\naddress = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n";
    for bad in [
        "[server]\nwokers = 2\n",
        "[server]\nworkers = \"two\"\n",
        "[admin]\npublic_metrics = \"yes\"\n",
    ] {
        let text = format!("{base}{bad}");
        assert!(!valid(&text).is_empty(), "the schema takes {bad:?}");
        let path = write(dir.path(), "bad.toml", &text);
        let (code, _, err) = run(&["check", "--config", &path]);
        assert_eq!(code, 64, "check takes {bad:?}: {err}");
    }
    assert!(valid(base).is_empty());
}
