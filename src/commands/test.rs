//! `portalgate test`: table-driven policy cases, run through the real proxy.
//!
//! The configuration is served in-process on 127.0.0.1 port 0 with its
//! upstream replaced by a stub that marks what reached it, so each case
//! travels exactly the path a production request does: intake,
//! canonicalisation, tenant, rules, body inspection, response rendering.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::cli::TestArgs;
use crate::config::Config;
use crate::server::Server;

use super::{load_config, Exit};

/// The header the stub upstream adds: the request was forwarded.
pub const REACHED: &str = "x-portalgate-test-upstream";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    cases: Vec<Case>,
}

/// One case: a request and what must happen to it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    name: String,
    #[serde(default = "get")]
    method: String,
    /// Path and query (the Host header comes from `headers`, default
    /// `portal`), or a full `http(s)://host/path?query` URL whose host is
    /// sent as `Host` unless `headers` names one.
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
    expect: Expect,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// forward, explain, redirect, deny or reject.
    decision: String,
    status: Option<u16>,
    rule: Option<String>,
    location: Option<String>,
    /// A portal URL the answer must name (body or Location).
    portal: Option<String>,
}

/// What happened to a request.
#[derive(Debug)]
struct Outcome {
    decision: String,
    status: u16,
    rule: Option<String>,
    location: Option<String>,
    body: String,
}

pub async fn run(args: TestArgs) -> Exit {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let cases = match load_cases(&args.cases) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Usage;
        }
    };
    let harness = match Harness::start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    let mut failed = 0;
    for case in &cases {
        match harness.run(case).await {
            Ok(outcome) => {
                let problems = check(case, &outcome);
                if problems.is_empty() {
                    out!("PASS  {}", case.name);
                } else {
                    failed += 1;
                    out!("FAIL  {}", case.name);
                    for p in problems {
                        out!("      {p}");
                    }
                }
            }
            Err(e) => {
                failed += 1;
                out!("FAIL  {}\n      {e}", case.name);
            }
        }
    }
    out!("\n{} passed, {failed} failed", cases.len() - failed);
    if failed == 0 {
        Exit::Ok
    } else {
        Exit::Runtime
    }
}

fn load_cases(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: CasesFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file.cases)
}

fn check(case: &Case, o: &Outcome) -> Vec<String> {
    let e = &case.expect;
    let mut problems = Vec::new();
    if o.decision != e.decision {
        problems.push(format!(
            "decision: expected {}, got {} (status {})",
            e.decision, o.decision, o.status
        ));
    }
    if let Some(s) = e.status {
        if s != o.status {
            problems.push(format!("status: expected {s}, got {}", o.status));
        }
    }
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    if let Some(rule) = e.rule.as_ref().filter(|r| Some(*r) != o.rule.as_ref()) {
        problems.push(format!("rule: expected {rule}, got {}", shown(&o.rule)));
    }
    if let Some(loc) = e
        .location
        .as_ref()
        .filter(|l| Some(*l) != o.location.as_ref())
    {
        problems.push(format!(
            "location: expected {loc}, got {}",
            shown(&o.location)
        ));
    }
    // A refusal says why: its code, from the error body.
    if o.decision == "reject" && !problems.is_empty() {
        if let Some(code) = error_code(&o.body) {
            problems.push(format!("the proxy refused it: {code}"));
        }
    }
    if let Some(p) = &e.portal {
        if !(o.body.contains(p.as_str())
            || o.location
                .as_deref()
                .is_some_and(|l| l.starts_with(p.as_str())))
        {
            problems.push(format!(
                "portal {p} is named neither in the body nor in Location"
            ));
        }
    }
    problems
}

/// The `code` of an error body (problem JSON, HTML or text all carry it).
fn error_code(body: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(c) = v.get("code").and_then(|c| c.as_str()) {
            let detail = v.get("detail").and_then(|d| d.as_str()).unwrap_or("");
            return Some(format!("{c} ({detail})"));
        }
    }
    body.lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().chars().take(160).collect())
}

/// The request target and the Host of a case's `url`: a path as it is, or
/// a full URL split into its path and host.
fn target(url: &str) -> Result<(String, Option<String>), String> {
    if url.starts_with('/') {
        return Ok((url.to_string(), None));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("url {url:?}: {e}: write a path (/v1/...) or a full http(s) URL"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(authority)) => Ok((
            uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            Some(authority.to_string()),
        )),
        _ => Err(format!(
            "url {url:?}: write a path (/v1/...) or a full http(s) URL"
        )),
    }
}

/// The configuration served in-process with a stub upstream.
pub struct Harness {
    proxy: SocketAddr,
    actions: BTreeMap<String, &'static str>,
    _stop: tokio::sync::oneshot::Sender<()>,
    stub: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stub.abort();
    }
}

impl Harness {
    /// Serves `config` on 127.0.0.1:0 with a stub upstream.
    pub async fn start(mut config: Config) -> Result<Harness, String> {
        let stub = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot start the stub upstream: {e}"))?;
        let stub_addr = stub.local_addr().map_err(|e| e.to_string())?;
        let stub_task = tokio::spawn(serve_stub(stub));
        config.listeners.truncate(1);
        if let Some(l) = config.listeners.first_mut() {
            l.address = SocketAddr::from(([127, 0, 0, 1], 0));
            l.tls = None;
            l.certificates = None;
        }
        config.admin = None;
        // A dry run: the configured decision log is not written to.
        config.decision_log.outputs.file = None;
        config.decision_log.outputs.stdout = false;
        config.upstream.scheme = http::uri::Scheme::HTTP;
        config.upstream.authority = stub_addr.to_string().parse().map_err(|e| format!("{e}"))?;
        let actions = config
            .rules
            .rules()
            .iter()
            .map(|r| (r.id.clone(), r.action.kind()))
            .collect();
        let server = Server::bind(&config, None)
            .await
            .map_err(|e| e.to_string())?;
        let proxy = server.local_addrs().first().copied().ok_or("no listener")?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Ok(Harness {
            proxy,
            actions,
            _stop: tx,
            stub: stub_task,
        })
    }

    /// Sends one case's request and classifies what happened.
    async fn run(&self, case: &Case) -> Result<Outcome, String> {
        let resp = self
            .send(&case.method, &case.url, &case.headers, case.body.clone())
            .await?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let rule = header("x-portalgate-rule");
        let location = header("location");
        let decision = if resp.headers().contains_key(REACHED) {
            "forward".to_string()
        } else if let Some(r) = &rule {
            self.actions
                .get(r)
                .copied()
                .unwrap_or("unknown")
                .to_string()
        } else {
            "reject".to_string()
        };
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Outcome {
            decision,
            status,
            rule,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Sends a request over a fresh HTTP/1.1 connection; `Host` defaults
    /// to `portal`.
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: String,
    ) -> Result<Response<Incoming>, String> {
        let (path, host) = target(url)?;
        let mut sender = crate::oneshot::connect(self.proxy).await?;
        let mut b = Request::builder().method(method).uri(path);
        if !headers.keys().any(|k| k.eq_ignore_ascii_case("host")) {
            b = b.header("host", host.as_deref().unwrap_or("portal"));
        }
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("invalid request: {e}"))?;
        sender.send_request(req).await.map_err(|e| e.to_string())
    }
}

async fn serve_stub(listener: tokio::net::TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let _ = req.into_body().collect().await;
                let mut r = Response::new(Full::new(Bytes::from_static(b"forwarded\n")));
                r.headers_mut()
                    .insert(REACHED, http::HeaderValue::from_static("reached"));
                Ok::<_, Infallible>(r)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
