//! The privacy probe: the real binary at `--log-level trace`, with decision
//! records on stdout and in a file, gets requests that carry a marked
//! secret in every place a client can put one (path, query, every header,
//! the method, the body), over HTTP/1.1 and HTTP/2, forwarded, answered,
//! rejected and failed upstream. Then every byte it wrote (stderr, stdout,
//! the decision log file, `/decisions/recent`) is searched for the marks.

use std::process::Stdio;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};

use crate::policy::{DE, GLOBAL};
use crate::support::child::Served;
use crate::support::client::{h2c, raw, status_of};
use crate::support::script::Script;

/// Every secret starts with this; nothing else the binary writes does.
const MARK: &str = "probex";

/// Header fields, each with a marked value.
fn secret_headers() -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {MARK}auth.token")),
        ("cookie", format!("session={MARK}cookie")),
        (
            "user-agent",
            format!("probe/1.0 (mailto:{MARK}ua@contoso.example)"),
        ),
        ("x-request-id", format!("{MARK}requestid")),
        ("referer", format!("https://portal.example/{MARK}referer")),
        ("x-custom", format!("{MARK}custom")),
        ("x-ms-correlation-id", format!("{MARK}correlation")),
        ("accept-language", format!("de-DE;{MARK}lang")),
    ]
}

/// Targets, each with marked secrets where a client could put them.
fn secret_targets(script: bool) -> Vec<(&'static str, String)> {
    let mut t = vec![
        // Forwarded (and recorded: every forward is sampled).
        (
            "GET",
            format!("/v1/customers/{GLOBAL}/users/{MARK}user?token={MARK}query&{MARK}bare&{MARK}%40name=1"),
        ),
        // Answered by a Germany rule.
        (
            "DELETE",
            format!("/v1/customers/{DE}/users/{MARK}upn@contoso.example?{MARK}bare2"),
        ),
        (
            "DELETE",
            format!("/v1/customers/{DE}/users/{MARK}upn%EF%BC%A0contoso.example"),
        ),
        // Forwarded with a body.
        ("POST", format!("/v1/customers/{GLOBAL}/orders?x={MARK}post")),
        // A method of the client's own.
        ("PROBEXMETHOD", "/v1/customers".to_string()),
    ];
    if script {
        // Failed upstream (ambiguous framing: 502).
        t.push(("GET", format!("/cl-te?token={MARK}upstream")));
    }
    t
}

/// Raw HTTP/1.1 requests the canonicaliser rejects, with secrets in the
/// parts it cannot judge.
fn rejected_targets() -> Vec<String> {
    vec![
        format!("/v1/customers/{DE};jsessionid={MARK}jsession/users"),
        format!("/v1/customers/{DE}/users/{MARK}double%2540contoso.example"),
        format!("/v1/customers/a%2F{MARK}slash/users"),
        format!("/v1/customers/{DE}/users/%2e%2e/{MARK}dots%00"),
    ]
}

fn config(upstream: &str, dir: &std::path::Path) -> String {
    let germany =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies/germany.toml");
    format!(
        r#"include = ["{germany}"]
[[listeners]]
address = "127.0.0.1:0"
[upstream]
url = "{upstream}"
[admin]
address = "127.0.0.1:0"
[decision_log]
stdout = true
file = "{file}"
forwarded_sample = 1.0
[tenants]
default_region = "global"
[[tenants.entries]]
id = "{DE}"
region = "germany"
"#,
        germany = germany.display(),
        file = dir.join("decisions.jsonl").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_a_client_sends_reaches_any_byte_the_binary_writes() {
    let script = Script::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stdout_path = dir.path().join("stdout.txt");
    let stdout = std::fs::File::create(&stdout_path).unwrap();
    let served = Served::start_with(
        &config(&script.url(), dir.path()),
        dir.path(),
        &["--log-level", "trace"],
        Stdio::from(stdout),
    );
    let admin = served.wait_log("admin listening");
    let admin = admin
        .split("addr=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();

    let headers = secret_headers();
    let body = format!("{{\"passwordProfile\":{{\"password\":\"{MARK}body\"}}}}");
    let mut statuses = Vec::new();
    // HTTP/1.1, raw: the pass-through codec.
    for (method, target) in secret_targets(true) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {MARK}host.example\r\n");
        for (n, v) in &headers {
            req += &format!("{n}: {v}\r\n");
        }
        req += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        statuses.push(status_of(&raw(served.addr, req.as_bytes()).await));
    }
    for target in rejected_targets() {
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: portal\r\n");
        for (n, v) in &headers {
            req += &format!("{n}: {v}\r\n");
        }
        req += "\r\n";
        let reply = raw(served.addr, req.as_bytes()).await;
        assert_eq!(status_of(&reply), 400, "{target}: {reply}");
    }
    // HTTP/2 (prior knowledge): hyper's codec.
    let mut h2 = h2c(served.addr).await;
    for (method, target) in secret_targets(true) {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("http://{MARK}host.example{target}"));
        for (n, v) in &headers {
            b = b.header(*n, v.as_str());
        }
        let req = b
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let resp = h2.send_request(req).await.unwrap();
        statuses.push(resp.status().as_u16());
        let _ = resp.into_body().collect().await;
    }
    // Every kind of outcome was probed.
    for status in [200, 403, 502] {
        assert!(statuses.contains(&status), "{status} missing: {statuses:?}");
    }

    // What the admin listener shows.
    let recent =
        crate::support::client::get(&format!("http://{admin}/decisions/recent?limit=1000"))
            .await
            .text();
    // The records have been written when /decisions/recent shows them all;
    // the file is flushed by the exit.
    served.signal("-TERM");
    let mut served = served;
    assert!(served.wait_exit().success());
    let stderr = served.lines_now().join("\n");
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let file = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap();

    // The probe saw records and logs of every kind (so the search below
    // searched something).
    for action in ["\"forward\"", "\"explain\"", "\"reject\""] {
        assert!(recent.contains(action), "no {action} record: {recent}");
        assert!(file.contains(action), "no {action} record in the file");
        assert!(stdout.contains(action), "no {action} record on stdout");
    }
    assert!(stderr.contains("WARN"), "no upstream warning: {stderr}");
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "not at trace: {stderr}"
    );
    for (name, text) in [
        ("stderr", &stderr),
        ("stdout", &stdout),
        ("the decision log file", &file),
        ("/decisions/recent", &recent),
    ] {
        let lower = text.to_ascii_lowercase();
        if let Some(at) = lower.find(MARK) {
            let from = at.saturating_sub(200);
            panic!(
                "{name} carries a secret: …{}…",
                &text[from..(at + 100).min(text.len())]
            );
        }
    }
}
