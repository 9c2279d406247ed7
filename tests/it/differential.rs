//! The two codecs side by side: every request of a corpus goes to a proxy
//! with the pass-through codec on and to one with it off (hyper for
//! everything), with the same configuration, and everything observable
//! must be the same: the status, the response head and body, what the
//! backend received, the change in `/metrics` and the decision record.
//! Generated values (request ids, decision ids, dates, durations) are
//! compared by presence.

use std::collections::BTreeMap;

use crate::policy::{DE, GLOBAL};
use crate::support::client::{find, get, status_of};
use crate::support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Extra rules beside the Germany pack: a denial and a header condition.
const EXTRA: &str = r#"[[rules]]
id = "deny-admin"
[rules.match]
path = "/admin/**"
[rules.action]
type = "deny"
status = 451

[[rules]]
id = "deny-secret-probe"
[rules.match]
path = "/probe/**"
body = { json_field_present = "secret" }
[rules.action]
type = "deny"
status = 403

[[rules]]
id = "redirect-legacy"
[rules.match]
path = "/legacy/{page}"
headers = [{ name = "x-legacy", present = true }]
[rules.action]
type = "redirect"
location = "https://portal.example.de/new/{page}"
"#;

/// The same pseudonyms on both proxies.
const KEY: &str = "[decision_log]\npseudonym_key = \"differential-test-key-0123\"";

/// A proxy with the pass-through codec on or off.
async fn proxy(backend: &Backend, fast: bool) -> proxy::RunningProxy {
    ProxyBuilder::new(&backend.url())
        .germany()
        .section(EXTRA)
        .section(KEY)
        .section(&format!(
            "[server]\nhttp1_fast_path = {fast}\nwatch = false"
        ))
        .start()
        .await
}

/// What one proxy did with one request.
#[derive(Debug, PartialEq)]
struct Observed {
    status: u16,
    head: Vec<(String, String)>,
    body: String,
    backend: Vec<String>,
    metrics: BTreeMap<String, f64>,
    records: Vec<serde_json::Value>,
}

/// `/metrics` as `name{labels} -> value`, for the families a request
/// changes.
async fn metrics(p: &proxy::RunningProxy) -> BTreeMap<String, f64> {
    let text = get(&format!("http://{}/metrics", p.admin)).await.text();
    text.lines()
        .filter(|l| {
            l.starts_with("portalgate_requests_total")
                || l.starts_with("portalgate_upstream_errors_total")
                || l.starts_with("portalgate_request_duration_seconds_count")
        })
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

async fn records(p: &proxy::RunningProxy) -> Vec<serde_json::Value> {
    let text = get(&format!("http://{}/decisions/recent?limit=1000", p.admin))
        .await
        .text();
    serde_json::from_str(&text).unwrap()
}

/// The head as (lowercase name, value) pairs; generated values by presence.
fn head_of(raw: &str, ids: &[String]) -> Vec<(String, String)> {
    let end = raw.find("\r\n\r\n").unwrap_or(raw.len());
    let mut fields: Vec<(String, String)> = raw[..end]
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), normalise(v.trim(), ids)))
        .filter(|(n, _)| n != "date")
        .collect();
    fields.sort();
    fields
}

/// `text` with the generated ids replaced.
fn normalise(text: &str, ids: &[String]) -> String {
    let mut t = text.to_owned();
    for id in ids {
        t = t.replace(id.as_str(), "<id>");
    }
    t
}

/// Reads the final response (interim 1xx responses are skipped; the
/// answer to `HEAD` has no body, whatever its `Content-Length` says).
async fn read_final(s: &mut TcpStream, head_only: bool) -> String {
    read_responses(s, 1, head_only).await.remove(0)
}

/// Sends `request` on a new connection and observes everything.
async fn observe(
    p: &proxy::RunningProxy,
    backend: &Backend,
    request: &[u8],
    counted: bool,
) -> Observed {
    let before = metrics(p).await;
    let records_before = records(p).await.len();
    let seen_before = backend.seen().len();
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let raw = read_final(&mut s, request.starts_with(b"HEAD ")).await;
    drop(s);
    // The accounting follows the response: wait for it to be counted
    // (hyper's parser answers what it cannot parse itself, uncounted).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut after = metrics(p).await;
    while after == before && counted {
        assert!(
            std::time::Instant::now() < deadline,
            "the request was never counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        after = metrics(p).await;
    }
    // A scrape may land between a request's counter and its histogram
    // (one accounting writes both, the scrape reads both): read again
    // until two scrapes agree, which takes one more read once it is done.
    loop {
        let again = metrics(p).await;
        if again == after {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never settled"
        );
        after = again;
    }
    let delta: BTreeMap<String, f64> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .collect();
    let lower = raw.to_ascii_lowercase();
    let ids: Vec<String> = ["x-request-id:", "x-portalgate-decision-id:"]
        .iter()
        .filter_map(|name| {
            let at = lower.find(name)?;
            let rest = &raw[at + name.len()..];
            Some(rest[..rest.find("\r\n")?].trim().to_owned())
        })
        .filter(|id| !id.is_empty())
        .collect();
    let body_at = find(raw.as_bytes(), b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    let mut seen: Vec<String> = backend.seen()[seen_before..]
        .iter()
        .map(|s| {
            let mut h: Vec<String> = s
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", normalise(v.to_str().unwrap_or("?"), &ids)))
                .collect();
            h.sort();
            format!(
                "{} {} {:?} {:?} {}",
                s.method,
                s.uri,
                s.version,
                h,
                String::from_utf8_lossy(&s.body)
            )
        })
        .collect();
    seen.sort();
    let records = records(p).await[records_before..]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(o) = r.as_object_mut() {
                for generated in ["ts", "decision_id", "request_id", "duration_ms", "config"] {
                    o.remove(generated);
                }
            }
            r
        })
        .collect();
    Observed {
        status: status_of(&raw),
        head: head_of(&raw, &ids),
        body: normalise(&raw[body_at..], &ids),
        backend: seen,
        metrics: delta
            .into_iter()
            .filter(|(k, _)| !k.contains("_bucket"))
            .collect(),
        records,
    }
}

/// The corpus: forwards, every kind of answer, body reads, rejections,
/// and heads that the pass-through codec hands to hyper.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let h = "Host: partner.example\r\n";
    let users = format!("/v1/customers/{DE}/users");
    let user = format!("/v1/customers/{DE}/users/u1");
    let json = "Content-Type: application/json\r\n";
    let post = |accept: &str, lang: &str| {
        let body = r#"{"userPrincipalName":"adele@contoso.example"}"#;
        format!(
            "POST {users} HTTP/1.1\r\n{h}{json}Accept: {accept}\r\nAccept-Language: {lang}\r\n\
             MS-RequestId: ms-1\r\nMS-CorrelationId: corr-1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let patch = |ct: &str, body: &str| {
        format!(
            "PATCH {user} HTTP/1.1\r\n{h}Content-Type: {ct}\r\nAccept: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let big = format!("{{\"displayName\":\"{}\"}}", "x".repeat(20_000));
    let many: String = (0..70).map(|i| format!("X-F{i}: v\r\n")).collect();
    let cases: Vec<(&str, String)> = vec![
        ("forward", format!("GET /v1/customers/{GLOBAL}/users HTTP/1.1\r\n{h}\r\n")),
        ("germany read", format!("GET {users} HTTP/1.1\r\n{h}Accept: application/json\r\n\r\n")),
        ("explain, partner-center JSON", post("application/json", "en")),
        ("explain, problem JSON", post("application/problem+json", "en")),
        ("explain, HTML in German", post("text/html", "de-DE")),
        ("explain, text in French", post("text/plain", "fr;q=0.9, en;q=0.1")),
        ("password reset", patch("application/json", r#"{"passwordProfile":{"password":"s3cret!"}}"#)),
        ("user update", patch("application/json", r#"{"displayName":"Adele"}"#)),
        ("body not JSON", patch("application/json", "not json")),
        ("body of another type", patch("text/plain", "{}")),
        ("body too large to inspect", patch("application/json", &big)),
        ("delete", format!("DELETE {user} HTTP/1.1\r\n{h}\r\n")),
        ("report-only", format!("GET {user}/licenses HTTP/1.1\r\n{h}\r\n")),
        ("browser redirect", format!("GET /dashboard/customers/{DE}/users/x HTTP/1.1\r\n{h}Accept: text/html\r\n\r\n")),
        ("redirect of HEAD", format!("HEAD /dashboard/customers/{DE}/users/x HTTP/1.1\r\n{h}\r\n")),
        ("germany host", "GET /dashboard/account/usermanagement/x HTTP/1.1\r\nHost: partnercenter.microsoftonline.de\r\n\r\n".to_string()),
        ("deny", format!("GET /admin/x HTTP/1.1\r\n{h}Accept: text/plain\r\n\r\n")),
        ("header condition", format!("GET /legacy/p%20q HTTP/1.1\r\n{h}X-Legacy: 1\r\n\r\n")),
        ("header condition unmet", format!("GET /legacy/p HTTP/1.1\r\n{h}\r\n")),
        ("encoded slash", format!("GET /v1/customers/x%2Fy/users HTTP/1.1\r\n{h}\r\n")),
        ("dot segments", format!("GET /v1/./customers/../customers/{GLOBAL}/users HTTP/1.1\r\n{h}\r\n")),
        ("malformed tenant", format!("POST /v1/customers/{{0a1b2c3d-0000-4000-8000-00000000de0}}/users HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n")),
        ("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into()),
        ("no host", "GET / HTTP/1.1\r\n\r\n".into()),
        ("bad content-length", format!("POST /echo HTTP/1.1\r\n{h}Content-Length: abc\r\n\r\n")),
        ("uri too long", format!("GET /{} HTTP/1.1\r\n{h}\r\n", "a".repeat(9000))),
        ("forwarding headers", format!("POST /echo?q=1 HTTP/1.1\r\n{h}X-Request-Id: abc-123\r\nX-Forwarded-For: 192.0.2.1\r\nVia: 1.1 edge\r\nConnection: x-secret\r\nX-Secret: 1\r\nContent-Length: 5\r\n\r\nhello")),
        ("lowercase method", format!("get /echo HTTP/1.1\r\n{h}\r\n")),
        ("many fields", format!("GET /echo HTTP/1.1\r\n{h}{many}\r\n")),
        ("chunked upload", format!("POST /echo HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")),
        ("expect", format!("POST /echo HTTP/1.1\r\n{h}Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")),
        ("HTTP/1.0", "GET /echo HTTP/1.0\r\nHost: partner.example\r\n\r\n".into()),
        ("absolute form", "GET http://partner.example/echo HTTP/1.1\r\nHost: partner.example\r\n\r\n".into()),
    ];
    cases
        .into_iter()
        .map(|(n, r)| (n, r.into_bytes()))
        .collect()
}

/// Cases hyper's own parser refuses before the handler sees them.
const HYPER_REFUSES: [&str; 1] = ["bad content-length"];

#[tokio::test]
async fn both_codecs_give_the_same_answers_forwards_metrics_and_records() {
    let backend = Backend::start().await;
    let fast = proxy(&backend, true).await;
    let hyper = proxy(&backend, false).await;
    for (name, request) in corpus() {
        eprintln!("case: {name}");
        if HYPER_REFUSES.contains(&name) {
            // hyper's parser answers a bare 400 before any handler runs;
            // the pass-through codec's intake gives the 400 with a body.
            let a = observe(&fast, &backend, &request, true).await;
            let b = observe(&hyper, &backend, &request, false).await;
            assert_eq!((a.status, b.status), (400, 400), "{name}");
            assert!(
                a.body.contains("bad_request") && a.backend.is_empty(),
                "{name}"
            );
            continue;
        }
        let a = observe(&fast, &backend, &request, true).await;
        let b = observe(&hyper, &backend, &request, true).await;
        assert_eq!(a, b, "{name}: the pass-through codec and hyper differ");
    }
}

#[tokio::test]
async fn both_codecs_answer_an_unreachable_upstream_the_same() {
    let refused = crate::support::Refused::new();
    let url = format!("http://{}", refused.addr);
    let backend = Backend::start().await;
    let start = |fast: bool| {
        ProxyBuilder::new(&url)
            .section(&format!(
                "[server]\nhttp1_fast_path = {fast}\nwatch = false"
            ))
            .start()
    };
    let (fast, hyper) = (start(true).await, start(false).await);
    let request = b"GET /x HTTP/1.1\r\nHost: p\r\nAccept: application/json\r\n\r\n";
    let a = observe(&fast, &backend, request, true).await;
    let b = observe(&hyper, &backend, request, true).await;
    assert_eq!(a.status, 502);
    assert_eq!(a, b);
}

/// On one keep-alive connection: bodies read for a rule (answered, or
/// forwarded when the rule does not match), an answered request with a
/// body, and a forward with one; each next request is read where the
/// previous one ended, on both codecs.
#[tokio::test]
async fn bodies_read_or_skipped_leave_the_next_request_intact() {
    let backend = Backend::start().await;
    for fast in [true, false] {
        let p = proxy(&backend, fast).await;
        let user = format!("/v1/customers/{DE}/users/u1");
        let patch = |body: &str| {
            format!(
                "PATCH {user} HTTP/1.1\r\nHost: partner.example\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let post = format!(
            "POST /v1/customers/{DE}/users HTTP/1.1\r\nHost: partner.example\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        let echo = "POST /echo HTTP/1.1\r\nHost: partner.example\r\nContent-Length: 5\r\n\r\nhello";
        // Read for the rule, which does not match: forwarded with its body.
        let probe =
            "POST /probe/x HTTP/1.1\r\nHost: partner.example\r\nContent-Type: application/json\r\n\
                     Content-Length: 7\r\n\r\n{\"a\":1}";
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        for (request, status, rule) in [
            (
                patch(r#"{"passwordProfile":{}}"#),
                403,
                "germany-password-reset",
            ),
            (
                patch(r#"{"displayName":"x"}"#),
                403,
                "germany-customer-user-update",
            ),
            (post.clone(), 403, "germany-customer-user-create"),
            (echo.to_string(), 200, "hello"),
            (probe.to_string(), 200, "{\"a\":1}"),
            (
                patch(r#"{"passwordProfile":{}}"#),
                403,
                "germany-password-reset",
            ),
        ] {
            s.write_all(request.as_bytes()).await.unwrap();
            let reply = read_final(&mut s, false).await;
            assert_eq!(status_of(&reply), status, "fast={fast}: {reply}");
            assert!(reply.contains(rule), "fast={fast}: {reply}");
        }
        // The same, all written at once (pipelined).
        let all: String = [
            patch(r#"{"passwordProfile":{}}"#),
            probe.to_string(),
            post,
            echo.to_string(),
        ]
        .concat();
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(all.as_bytes()).await.unwrap();
        let replies = read_responses(&mut s, 4, false).await;
        let statuses: Vec<u16> = replies.iter().map(|r| status_of(r)).collect();
        assert_eq!(statuses, [403, 200, 403, 200], "fast={fast}: {replies:?}");
        assert!(replies[3].ends_with("hello"), "fast={fast}: {replies:?}");
    }
}

/// Reads `n` final responses, however the bytes arrive: 1xx responses
/// are skipped, bodies end by `Content-Length`, and with `head_only` (the
/// answers to `HEAD`) there are none.
async fn read_responses(s: &mut TcpStream, n: usize, head_only: bool) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut out = Vec::new();
    let read = async {
        while out.len() < n {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                if head.starts_with("http/1.1 1") {
                    buf.drain(..end + 4);
                    continue;
                }
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .filter(|_| !head_only)
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let rest = buf.split_off(end + 4 + len);
                    out.push(String::from_utf8_lossy(&buf).into_owned());
                    buf = rest;
                    continue;
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("not every response within 10 s");
    if out.len() < n {
        // A response cut short (the connection closed): as much as came.
        out.push(String::from_utf8_lossy(&buf).into_owned());
    }
    out
}
