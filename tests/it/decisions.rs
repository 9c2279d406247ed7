//! The decision log: one record per decision, the documented fields, no
//! personal data in the raw output, stable pseudonyms, nothing lost on a
//! graceful stop.

use crate::policy::{call, delete_user, DE, GLOBAL};
use crate::support::*;

const KEY: &str = "test-pseudonym-key-0123456789";

/// A Germany proxy logging decisions to `decisions.jsonl` in `dir` (which
/// lives as long as the returned handle), with `pseudonym_key = key` and
/// `extra` lines in `[decision_log]`.
async fn logged(
    dir: tempfile::TempDir,
    key: &str,
    extra: &str,
) -> (Backend, proxy::RunningProxy, Logfile) {
    let backend = Backend::start().await;
    let path = dir.path().join("decisions.jsonl");
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        // One worker: the records' order is the order of the test's
        // sequential requests (a record is queued after its response is
        // written, so two workers' records may swap places).
        .section("[server]\nworkers = 1")
        .section(&format!(
            "[decision_log]\nfile = {:?}\npseudonym_key = {key:?}\n{extra}",
            path.display().to_string()
        ))
        .start()
        .await;
    (backend, proxy, Logfile { dir, path })
}

struct Logfile {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

/// Stops the proxy (drain, then the log is flushed) and reads the records.
async fn stop_and_read(
    mut proxy: proxy::RunningProxy,
    file: &Logfile,
) -> (Vec<serde_json::Value>, Vec<u8>) {
    proxy.begin_stop().await.unwrap();
    let raw = std::fs::read(&file.path).unwrap();
    let records = String::from_utf8_lossy(&raw)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (records, raw)
}

#[tokio::test]
async fn each_kind_of_decision_gives_exactly_one_record() {
    let (_backend, proxy, file) = logged(
        tempfile::tempdir().unwrap(),
        KEY,
        "client_address = \"full\"",
    )
    .await;
    let json = ("content-type", "application/json");
    let explained = call(
        &proxy,
        "POST",
        &format!("/v1/customers/{DE}/users"),
        &[json, ("user-agent", "pc-sdk/1.0")],
        "{}",
    )
    .await;
    let redirected = call(
        &proxy,
        "GET",
        &format!("/dashboard/customers/{DE}/users"),
        &[("accept", "text/html")],
        "",
    )
    .await;
    let reported = call(
        &proxy,
        "GET",
        &format!("/v1/customers/{DE}/users/u1/licenses"),
        &[],
        "",
    )
    .await;
    let rejected_path = call(&proxy, "GET", "/v1/customers%2Fx", &[], "").await;
    let rejected_tenant = call(
        &proxy,
        "POST",
        "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de0g/users",
        &[json],
        "{}",
    )
    .await;
    let forwarded = call(
        &proxy,
        "POST",
        &format!("/v1/customers/{GLOBAL}/users"),
        &[json],
        "{}",
    )
    .await;
    assert_eq!(
        [
            explained.status,
            redirected.status,
            reported.status,
            rejected_path.status,
            rejected_tenant.status,
            forwarded.status
        ],
        [403, 303, 200, 400, 400, 200]
    );
    let (records, _) = stop_and_read(proxy, &file).await;
    assert_eq!(records.len(), 5, "{records:#?}");

    let r = &records[0];
    assert_eq!(r["rule"], "germany-customer-user-create");
    assert_eq!(
        (
            r["mode"].as_str(),
            r["action"].as_str(),
            r["status"].as_u64()
        ),
        (Some("enforce"), Some("explain"), Some(403))
    );
    assert_eq!(
        r["decision_id"],
        explained.header("x-portalgate-decision-id")
    );
    assert_eq!(r["request_id"], explained.header("x-request-id"));
    assert_eq!(r["method"], "POST");
    assert_eq!(r["route"], "/v1/customers/{tenant}/users");
    assert_eq!(r["path"], format!("/v1/customers/{DE}/users"));
    assert_eq!(r["tenant"], DE);
    assert_eq!(r["tenant_source"], "path:tenant");
    assert_eq!(
        (r["region"].as_str(), r["region_source"].as_str()),
        (Some("germany"), Some("directory"))
    );
    assert_eq!(r["portal"], "https://portal.office.de/adminportal");
    assert_eq!(r["client"], "127.0.0.1");
    assert_eq!(r["user_agent"], "pc-sdk/1.0");
    assert_eq!(r["protocol"], "HTTP/1.1");
    assert!(r["duration_ms"].as_f64().unwrap() >= 0.0);
    let ts = r["ts"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );

    assert_eq!(
        (records[1]["action"].as_str(), records[1]["status"].as_u64()),
        (Some("redirect"), Some(303))
    );
    assert_eq!(records[1]["portal"], "https://portal.microsoftazure.de");
    assert_eq!(
        (
            records[2]["mode"].as_str(),
            records[2]["rule"].as_str(),
            records[2]["status"].as_u64()
        ),
        (Some("report-only"), Some("germany-license-read"), Some(200))
    );
    assert_eq!(
        (records[3]["action"].as_str(), records[3]["reason"].as_str()),
        (Some("reject"), Some("ambiguous_path"))
    );
    assert_eq!(
        (records[4]["action"].as_str(), records[4]["reason"].as_str()),
        (Some("reject"), Some("ambiguous_tenant"))
    );
}

#[tokio::test]
async fn no_personal_data_reaches_the_record() {
    let (_backend, proxy, file) = logged(
        tempfile::tempdir().unwrap(),
        KEY,
        "client_address = \"full\"",
    )
    .await;
    let email = "adele.vance@contoso.example";
    let password = "Sup3r-Secret-Pa55word";
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA";
    let cookie = "session=cookie-secret-value";
    let query_secret = "query-secret-value";
    let r = call(
        &proxy,
        "PATCH",
        &format!("/v1/customers/{DE}/users/{email}?token={query_secret}&x=1"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {token}")),
            ("cookie", cookie),
        ],
        &format!("{{\"passwordProfile\":{{\"password\":\"{password}\"}}}}"),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(
        &proxy,
        "GET",
        &format!("/v1/customers/{DE}/users/{email}/licenses?sig={query_secret}"),
        &[("cookie", cookie)],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let (records, raw) = stop_and_read(proxy, &file).await;
    assert_eq!(records.len(), 2);
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    for secret in [
        email,
        "adele",
        "contoso.example",
        password,
        token,
        "cookie-secret",
        query_secret,
    ] {
        assert!(
            !text.contains(&secret.to_ascii_lowercase()),
            "{secret:?} in the decision log:\n{text}"
        );
    }
    let target = records[0]["target"].as_str().unwrap();
    assert!(
        target.starts_with(&format!("/v1/customers/{DE}/users/~"))
            && target.ends_with("?token=&x="),
        "{target}"
    );
}

#[tokio::test]
async fn pseudonyms_correlate_per_key() {
    let user = "u-7f4b1c2e";
    let path = format!("/v1/customers/{DE}/users/{user}");
    let mut pseudonyms = Vec::new();
    for key in [KEY, KEY, "another-key-9876543210-abcdef"] {
        let (_backend, proxy, file) = logged(tempfile::tempdir().unwrap(), key, "").await;
        call(&proxy, "DELETE", &path, &[], "").await;
        call(&proxy, "DELETE", &path, &[], "").await;
        let (records, raw) = stop_and_read(proxy, &file).await;
        assert!(!String::from_utf8_lossy(&raw).contains(user));
        let p: Vec<String> = records
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(p[0], p[1], "the same user in two requests");
        pseudonyms.push(p[0].clone());
    }
    assert_eq!(
        pseudonyms[0], pseudonyms[1],
        "same key, same pseudonym across restarts"
    );
    assert_ne!(
        pseudonyms[0], pseudonyms[2],
        "another key, another pseudonym"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_right_after_a_burst_loses_no_record() {
    let (_backend, proxy, file) = logged(
        tempfile::tempdir().unwrap(),
        KEY,
        "client_address = \"full\"",
    )
    .await;
    let url = proxy.url(&format!("/v1/customers/{DE}/users"));
    let statuses = crate::support::client::burst(&url, 200).await;
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");
    let (records, _) = stop_and_read(proxy, &file).await;
    assert_eq!(records.len(), 200);
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["decision_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every record is a distinct decision");
}

/// The decision log writes to a pipe nobody reads: once the pipe is full
/// the writer stalls, the one-slot queue fills, and every further record is
/// dropped and counted, while requests keep being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_counts_drops_and_requests_do_not_wait() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    drop(admin);
    let pack =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies/germany.toml");
    let config = format!(
        "include = [{:?}]\n[[listeners]]\naddress = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n\
         [admin]\naddress = \"{admin_addr}\"\n[decision_log]\nstdout = true\nqueue_size = 1\n\
         pseudonym_key = \"{KEY}\"\n[[tenants.entries]]\nid = \"{DE}\"\nregion = \"germany\"\n",
        pack.display().to_string()
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(crate::support::child::bin())
        .args(["serve", "--config"])
        .arg(&path)
        .env("PORTALGATE_LOG", "info")
        .stdout(Stdio::piped()) // never read
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        loop {
            let line = lines.next().expect("the proxy logs its listener").unwrap();
            if let Some(rest) = line.split(" listening addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_string();
                // Keep draining stderr so the proxy never blocks on it.
                std::thread::spawn(move || for _ in lines {});
                return addr;
            }
        }
    })
    .await
    .unwrap();
    let url = format!("http://{addr}/v1/customers/{DE}/users");
    for _ in 0..600 {
        let r = crate::support::client::send(
            http::Request::post(&url)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 403);
    }
    let metrics = crate::support::client::get(&format!("http://{admin_addr}/metrics"))
        .await
        .text();
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("portalgate_decision_log_dropped_records_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    // 600 records of ~500 bytes; a 64 KiB pipe holds ~130 and the queue 1.
    assert!(dropped >= 300.0, "dropped {dropped}\n{metrics}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn size_rotation_keeps_at_most_the_configured_files() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, mut proxy, log) = logged(dir, KEY, "max_file_bytes = 2000\nkeep_files = 2").await;
    let file = log.path.clone();
    for i in 0..30 {
        let r = delete_user(&proxy, DE, &format!("u{i}")).await;
        assert_eq!(r.status, 403);
    }
    proxy.begin_stop().await.unwrap();
    let rotated = |n: usize| log.dir.path().join(format!("decisions.jsonl.{n}"));
    assert!(
        rotated(1).exists() && rotated(2).exists(),
        "two rotated files kept"
    );
    assert!(!rotated(3).exists(), "no more than keep_files");
    let mut total = 0;
    for f in [rotated(2), rotated(1), file.clone()] {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.len() <= 2000,
            "{} is {} bytes",
            f.display(),
            text.len()
        );
        total += text.lines().count();
    }
    let (code, out, err) = crate::support::child::run(&["logs", "--json", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["request_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), total);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, across the rotated files"
    );
    assert!(total < 30, "the oldest records were rotated away");
}

#[tokio::test]
async fn a_new_day_starts_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decisions.jsonl");
    std::fs::write(&file, "{\"old\":true}\n").unwrap();
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    let (_b, mut proxy, log) = logged(dir, KEY, "").await;
    let file = log.path.clone();
    assert_eq!(delete_user(&proxy, DE, "u1").await.status, 403);
    proxy.begin_stop().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(log.dir.path().join("decisions.jsonl.1")).unwrap(),
        "{\"old\":true}\n"
    );
    let today = std::fs::read_to_string(&file).unwrap();
    assert_eq!(today.lines().count(), 1);
    assert!(today.contains("germany-customer-user-update"));
}

#[tokio::test]
async fn forwarded_requests_can_be_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, mut proxy, log) = logged(dir, KEY, "forwarded_sample = 0.5").await;
    let file = log.path.clone();
    for i in 0..10 {
        let r = call(
            &proxy,
            "GET",
            &format!("/v1/customers/{GLOBAL}/users/u{i}"),
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(delete_user(&proxy, DE, "u1").await.status, 403);
    proxy.begin_stop().await.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let forwards = records.iter().filter(|r| r["action"] == "forward").count();
    assert_eq!(forwards, 5, "every second forwarded request");
    assert_eq!(
        records.iter().filter(|r| r["action"] == "explain").count(),
        1
    );
    assert!(
        !text.contains("/users/u"),
        "users are pseudonymised in sampled records too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_overflow_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let (_b, mut proxy, log) = logged(dir, KEY, "queue_size = 1\non_overflow = \"block\"").await;
    let file = log.path.clone();
    let url = proxy.url(&format!("/v1/customers/{DE}/users"));
    let statuses = crate::support::client::burst(&url, 100).await;
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");
    let metrics = crate::support::client::get(&format!("http://{}/metrics", proxy.admin))
        .await
        .text();
    assert!(
        metrics.contains("portalgate_decision_log_dropped_records_total 0"),
        "{metrics}"
    );
    proxy.begin_stop().await.unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 100);
}

/// The real binary with every output on: decision records to stdout and a
/// file, operational logs at debug level to stderr, /metrics and
/// /decisions/recent. None of the personal data sent appears in any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_of_the_binary_carries_personal_data() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    drop(admin);
    let log_file = dir.path().join("decisions.jsonl");
    let pack =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies/germany.toml");
    let config = format!(
        "include = [{:?}]\n[[listeners]]\naddress = \"127.0.0.1:0\"\n[upstream]\nurl = \"{}\"\n\
         [admin]\naddress = \"{admin_addr}\"\n[decision_log]\nstdout = true\nfile = {:?}\n\
         forwarded_sample = 1.0\npseudonym_key = \"{KEY}\"\n[[tenants.entries]]\nid = \"{DE}\"\nregion = \"germany\"\n",
        pack.display().to_string(),
        backend.url(),
        log_file.display().to_string(),
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(crate::support::child::bin())
        .args(["--log-level", "debug", "serve", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let err_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut sent = false;
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if !sent {
                let text = String::from_utf8_lossy(&all).to_string();
                if let Some(rest) = text.split(" listening addr=").nth(1) {
                    let _ = addr_tx.send(rest.split_whitespace().next().unwrap().to_string());
                    sent = true;
                }
            }
        }
        all
    });
    let out_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stdout.read_to_end(&mut all);
        all
    });
    let addr = addr_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();

    let email = "adele.vance@contoso.example";
    let password = "Sup3r-Secret-Pa55word";
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA";
    let cookie = "cookie-secret-value";
    let query_secret = "query-secret-value";
    let user_id = "u-9f8e7d6c";
    let requests = [
        (
            "PATCH",
            format!("/v1/customers/{DE}/users/{email}?token={query_secret}"),
            format!("{{\"passwordProfile\":{{\"password\":\"{password}\"}}}}"),
        ),
        (
            "DELETE",
            format!("/v1/customers/{DE}/users/{user_id}?sig={query_secret}"),
            String::new(),
        ),
        (
            "GET",
            format!("/v1/customers/{GLOBAL}/users/{email}?q={query_secret}"),
            String::new(),
        ),
        (
            "GET",
            format!("/v1/customers/{DE}/users/{user_id}/licenses?q={query_secret}"),
            String::new(),
        ),
    ];
    for (method, target, body) in &requests {
        let r = crate::support::client::send(
            http::Request::builder()
                .method(*method)
                .uri(format!("http://{addr}{target}"))
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {token}"))
                .header("cookie", format!("session={cookie}"))
                .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
                .unwrap(),
        )
        .await;
        assert!(
            r.status.is_success() || r.status == 403,
            "{method} {target}: {}",
            r.status
        );
    }
    let metrics = crate::support::client::get(&format!("http://{admin_addr}/metrics"))
        .await
        .body;
    let recent =
        crate::support::client::get(&format!("http://{admin_addr}/decisions/recent?limit=100"))
            .await
            .body;
    assert!(!recent.is_empty());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let outputs: Vec<(&str, Vec<u8>)> = vec![
        ("stdout (decision records)", out_reader.join().unwrap()),
        ("stderr (operational logs)", err_reader.join().unwrap()),
        ("/metrics", metrics.to_vec()),
        ("/decisions/recent", recent.to_vec()),
        ("decision log file", std::fs::read(&log_file).unwrap()),
    ];
    let records = String::from_utf8_lossy(&outputs[0].1).lines().count();
    assert_eq!(
        records, 4,
        "two enforced, one report-only, one sampled forward"
    );
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        for secret in [
            email,
            "adele",
            "contoso.example",
            password,
            token,
            cookie,
            query_secret,
            user_id,
        ] {
            assert!(
                !text.contains(&secret.to_ascii_lowercase()),
                "{secret:?} in {name}:\n{text}"
            );
        }
    }
}
