//! The request handler.
//!
//! [`Proxy::handle`] is the outer handler: it always produces a response
//! (forwarded or local) and logs failures once. `Proxy::forward` is the
//! inner handler, written with `?`: intake checks, header rewriting, the
//! upstream exchange and protocol upgrades. Every failure is a
//! [`ProxyError`], whose status comes from the single table in [`error`].

mod account;
pub mod body;
pub mod error;
pub mod inspect;
mod intake;
pub mod local;
pub mod negotiate;
pub mod pass;
mod record;
pub mod request_id;
pub mod respond;
mod tunnel;

use std::net::SocketAddr;

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::canonical::canonical_host;
use crate::config::{Config, Forwarding, Limits, Upstream};
use crate::policy::{Action, BodyView, Evaluation, Mode, PolicyError, RequestView, RuleSet};
use crate::tenant::Directory;
use crate::upstream::headers::{append_via, apply_forwarding, strip_hop_by_hop, Hop};
use crate::upstream::{UpstreamError, UpstreamFailure, UpstreamPool};
pub use body::{ForwardBody, ProxyBody};
pub use error::ProxyError;

/// Parses a body as JSON the way body-aware rules see it (for `explain`).
pub fn inspect_json(body: &str) -> Option<inspect::Json> {
    serde_json::from_str(body).ok().map(inspect::Json)
}

/// `X-Request-Id`
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the server knows about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Everything a request needs, built once per configuration.
#[derive(Debug)]
pub struct Proxy {
    pool: UpstreamPool,
    upstream: Upstream,
    limits: Limits,
    forwarding: Forwarding,
    ids: request_id::RequestIds,
    rules: std::sync::Arc<RuleSet<Action>>,
    directory: std::sync::Arc<Directory>,
    max_inspect: usize,
    decision_ids: request_id::RequestIds,
    log: std::sync::Arc<crate::telemetry::decision_log::DecisionLog>,
    recorder: record::Recorder,
    metrics: std::sync::Arc<crate::telemetry::metrics::Metrics>,
    /// Rule ids as metric label values, by rule index.
    rule_labels: Vec<std::sync::Arc<String>>,
    /// Every how-many-th forwarded request gets a record (0: none).
    forwarded_every: u64,
    forwarded_seen: std::sync::atomic::AtomicU64,
    generation: u64,
    /// The counter and histogram of the common case (forwarded, no rule,
    /// 200), resolved once: a family lookup per request costs a lock and a
    /// hash.
    forwarded_ok: prometheus_client::metrics::counter::Counter,
    forwarded_duration: prometheus_client::metrics::histogram::Histogram,
}

/// What the policy made of a request.
enum Judged {
    /// Forward it, with this body.
    Forward(ForwardBody),
    /// Answer it locally.
    Answer(Response<ProxyBody>),
}

impl Proxy {
    /// Builds the handler and its upstream client from a validated config;
    /// decisions go to `log`.
    pub fn new(
        config: &Config,
        log: std::sync::Arc<crate::telemetry::decision_log::DecisionLog>,
        metrics: std::sync::Arc<crate::telemetry::metrics::Metrics>,
        generation: u64,
    ) -> Self {
        use crate::telemetry::metrics::{Decision, DecisionLabels, ModeLabel, RequestLabels};
        let forwarded_ok = metrics
            .requests
            .get_or_create(&RequestLabels {
                decision: Decision::Forward,
                rule: None,
                mode: ModeLabel::None,
                status: 200,
            })
            .clone();
        let forwarded_duration = metrics
            .duration
            .get_or_create(&DecisionLabels {
                decision: Decision::Forward,
            })
            .clone();
        Proxy {
            pool: UpstreamPool::new(&config.upstream),
            upstream: config.upstream.clone(),
            limits: config.limits,
            forwarding: config.forwarding.clone(),
            ids: request_id::RequestIds::default(),
            rules: config.rules.clone(),
            directory: config.directory.clone(),
            max_inspect: config.max_inspect_body_bytes,
            decision_ids: request_id::RequestIds::default(),
            log,
            recorder: record::Recorder {
                pseudonyms: crate::telemetry::pseudonym::Pseudonymizer::new(
                    &config.decision_log.key,
                ),
                client_address: config.decision_log.client_address,
                user_captures: config.decision_log.user_captures.clone(),
                user_collections: config.decision_log.user_collections.clone(),
                generation,
                config_hash: config.hash.chars().take(12).collect(),
            },
            metrics,
            forwarded_every: config.decision_log.forwarded_every,
            generation,
            forwarded_ok,
            forwarded_duration,
            forwarded_seen: std::sync::atomic::AtomicU64::new(0),
            rule_labels: config
                .rules
                .rules()
                .iter()
                .map(|r| std::sync::Arc::new(r.id.clone()))
                .collect(),
        }
    }

    /// The configuration generation this snapshot was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The metrics.
    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.metrics
    }

    /// The decision log (closed by the server after the drain).
    pub fn decision_log(&self) -> &crate::telemetry::decision_log::DecisionLog {
        &self.log
    }

    /// The outer handler: always a response, never an error.
    pub async fn handle(&self, req: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let rid = self.ids.for_request(req.headers().get(&X_REQUEST_ID));
        let accept = req.headers().get(header::ACCEPT).cloned();
        let seen = record::Seen {
            start: std::time::Instant::now(),
            method: req.method().clone(),
            version: req.version(),
            raw_target: req.uri().clone(),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
            peer: conn.peer.ip(),
        };
        let mut trail = record::Trail::default();
        // Boxed once: the inner future is a few KiB, and hyper moves the
        // service future into place; one allocation is cheaper than the copies.
        let result = Box::pin(self.forward(req, conn, &rid, &mut trail)).await;
        let outcome = result.as_ref().map(|r| r.status().as_u16());
        self.count(seen.start.elapsed(), &trail, outcome);
        if let Some(rec) = self.decision_record(&seen, &trail, &rid, outcome) {
            self.log.record(rec).await;
        }
        match result {
            Ok(resp) => resp,
            Err(err) => {
                log_error(&err, &rid, Some(&seen.method));
                let accept = accept.as_ref().and_then(|v| v.to_str().ok());
                local::error_response(&err, accept, &rid)
            }
        }
    }

    /// The inner handler.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        conn: ConnInfo,
        rid: &HeaderValue,
        trail: &mut record::Trail,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let checked = intake::check(&req, &self.limits)?;
        let client_upgrade = checked.upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let version = parts.version;

        // Origin-form towards the upstream (the connection already names
        // it), with the canonical path intake judged.
        let target = match checked.target {
            Some(canonical) => canonical,
            None => parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        };
        parts.uri = Uri::from(target);
        parts.version = Version::HTTP_11;

        let forward_body = match self
            .judge(&parts, body, checked.host.as_ref(), rid, trail)
            .await?
        {
            Judged::Forward(b) => b,
            Judged::Answer(resp) => return Ok(resp),
        };

        let headers = &mut parts.headers;
        let upgrade_protocol = checked
            .upgrade
            .then(|| headers.get(header::UPGRADE).cloned())
            .flatten();
        strip_hop_by_hop(headers);
        if let Some(p) = upgrade_protocol {
            headers.insert(header::UPGRADE, p);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let host = if self.upstream.preserve_host {
            checked.host.clone()
        } else {
            None
        };
        let upstream_host = match host {
            Some(h) => h,
            None => HeaderValue::from_str(self.upstream.authority.as_str())
                .map_err(|_| ProxyError::BadRequest("invalid authority"))?,
        };
        headers.insert(header::HOST, upstream_host);
        let hop = Hop {
            peer: conn.peer.ip(),
            trusted: self.forwarding.is_trusted(conn.peer.ip()),
            proto: if conn.tls { "https" } else { "http" },
            host: checked.host.as_ref().and_then(|h| h.to_str().ok()),
        };
        apply_forwarding(headers, &hop);
        append_via(headers, version);
        headers.insert(X_REQUEST_ID.clone(), rid.clone());

        let up_req = Request::from_parts(parts, forward_body);
        let timeout = self.upstream.response_header_timeout;
        let (mut resp, lease) = match tokio::time::timeout(timeout, self.pool.send(up_req)).await {
            Err(_) => return Err(ProxyError::UpstreamTimeout),
            Ok(Err(e)) => return Err(upstream_error(&e)),
            Ok(Ok(r)) => r,
        };

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return Err(ProxyError::Upstream(
                    crate::upstream::UpstreamFailure::Protocol,
                ));
            };
            tunnel::spawn(client_upgrade, hyper::upgrade::on(&mut resp));
            let (mut rparts, body) = resp.into_parts();
            append_via(&mut rparts.headers, Version::HTTP_11);
            rparts.headers.insert(X_REQUEST_ID.clone(), rid.clone());
            return Ok(Response::from_parts(
                rparts,
                ProxyBody::upstream(body, None),
            ));
        }

        let (mut rparts, body) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        append_via(&mut rparts.headers, Version::HTTP_11);
        rparts.headers.insert(X_REQUEST_ID.clone(), rid.clone());
        Ok(Response::from_parts(
            rparts,
            ProxyBody::upstream(body, Some(lease)),
        ))
    }
}

impl Proxy {
    /// What the policy sees of a request: its canonical host and, when a
    /// rule asks, the bearer token's `tid`.
    fn policy_inputs(
        &self,
        headers: &http::HeaderMap,
        host: Option<&str>,
    ) -> Result<(Option<String>, Option<crate::tenant::TenantId>), ProxyError> {
        let host = host.map(canonical_host);
        let bearer_tid = if self.rules.needs_bearer_tid() {
            match headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
            {
                Some(a) => crate::tenant::bearer_tid(a).map_err(|_| {
                    ProxyError::Policy(PolicyError::MalformedTenant {
                        from: "jwt:tid".into(),
                    })
                })?,
                None => None,
            }
        } else {
            None
        };
        Ok((host, bearer_tid))
    }

    /// Evaluates the policy on the canonical request; reads the body
    /// (bounded, JSON only) only when a candidate rule needs it.
    async fn judge(
        &self,
        parts: &http::request::Parts,
        body: Incoming,
        host: Option<&HeaderValue>,
        rid: &HeaderValue,
        trail: &mut record::Trail,
    ) -> Result<Judged, ProxyError> {
        let limit = self.limits.max_request_body_bytes;
        if self.rules.rules().is_empty() {
            return Ok(Judged::Forward(ForwardBody::new(body, limit)));
        }
        let (host, bearer_tid) =
            self.policy_inputs(&parts.headers, host.and_then(|h| h.to_str().ok()))?;
        let view = RequestView {
            method: &parts.method,
            host: host.as_deref(),
            path: parts.uri.path(),
            headers: &parts.headers,
            bearer_tid,
        };
        let (decision, forward_body) =
            match self
                .rules
                .evaluate(&view, BodyView::NotRead, &self.directory)?
            {
                Evaluation::Decided(d) => (d, ForwardBody::new(body, limit)),
                Evaluation::NeedBody => {
                    match inspect::inspect(&parts.headers, body, self.max_inspect).await? {
                        inspect::Inspected::Json(bytes, json) => {
                            match self.rules.evaluate(
                                &view,
                                BodyView::Json(&json),
                                &self.directory,
                            )? {
                                Evaluation::Decided(d) => (d, ForwardBody::buffered(bytes)),
                                Evaluation::NeedBody => return Err(uninspectable()),
                            }
                        }
                        // Fail closed: the rule that asked cannot judge this body.
                        inspect::Inspected::Unreadable => {
                            return Err(
                                match self.rules.evaluate(
                                    &view,
                                    BodyView::Unreadable,
                                    &self.directory,
                                ) {
                                    Err(e) => e.into(),
                                    Ok(_) => uninspectable(),
                                },
                            )
                        }
                    }
                }
            };
        let request_id = rid.to_str().unwrap_or("");
        if decision.enforced.is_some() || decision.report_only.is_some() {
            // Only decided requests are recorded; the common forward pays nothing.
            trail.host = host.clone();
            trail.canonical_path = Some(parts.uri.path().to_owned());
        }
        if let Some(r) = &decision.report_only {
            trail.outcome = Some((
                r.index,
                Mode::ReportOnly,
                crate::telemetry::metrics::Decision::Forward,
            ));
            let did = self.decision_ids.for_request(None);
            trail.draft = Some(record::Draft::new(r, did, &self.recorder.user_captures));
            tracing::info!(
                request_id,
                rule = r.rule.id,
                action = r.rule.action.kind(),
                region = %r.resolved.region,
                "report-only rule matched; forwarding"
            );
        }
        match decision.enforced {
            Some(m) if m.rule.action != Action::Allow => {
                let did = self.decision_ids.for_request(None);
                trail.outcome = Some((m.index, Mode::Enforce, answered_as(&m.rule.action)));
                trail.draft = Some(record::Draft::new(
                    &m,
                    did.clone(),
                    &self.recorder.user_captures,
                ));
                tracing::info!(
                    request_id,
                    decision_id = did.to_str().unwrap_or(""),
                    rule = m.rule.id,
                    action = m.rule.action.kind(),
                    region = %m.resolved.region,
                    "request intercepted"
                );
                let str_of = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
                let ctx = respond::Ctx {
                    method: &parts.method,
                    accept: str_of("accept"),
                    accept_language: str_of("accept-language"),
                    request_id: rid,
                    decision_id: &did,
                    ms_request_id: parts.headers.get("ms-requestid"),
                    ms_correlation_id: parts.headers.get("ms-correlationid"),
                };
                Ok(Judged::Answer(respond::answer(&m, &ctx)))
            }
            _ => Ok(Judged::Forward(forward_body)),
        }
    }
}

/// Logs a failed request once: upstream failures as warnings, the client's
/// own errors at debug level.
fn log_error(err: &ProxyError, rid: &HeaderValue, method: Option<&http::Method>) {
    let status = err.status().as_u16();
    let request_id = rid.to_str().unwrap_or("");
    let method = method.map_or("-", http::Method::as_str);
    if err.is_upstream() {
        tracing::warn!(request_id, method, status, code = err.code(), "{err}");
    } else {
        tracing::debug!(request_id, method, status, code = err.code(), "{err}");
    }
}

/// What the client gets from an enforced action, for the metrics. The match
/// is exhaustive so a new action cannot be counted as a forward by accident.
fn answered_as(action: &Action) -> crate::telemetry::metrics::Decision {
    use crate::telemetry::metrics::Decision;
    match action {
        Action::Allow => Decision::Forward,
        Action::Deny { .. } => Decision::Deny,
        Action::Redirect { .. } => Decision::Redirect,
        Action::Explain { .. } => Decision::Explain,
    }
}

fn uninspectable() -> ProxyError {
    ProxyError::Policy(PolicyError::UninspectableBody {
        rule: String::from("(body-aware rule)"),
    })
}

/// Maps an upstream error to the proxy error it stands for; a failure of
/// the request body is the client's fault, not the upstream's.
fn upstream_error(e: &UpstreamError) -> ProxyError {
    match e {
        UpstreamError::Connect(failure, _) => ProxyError::Upstream(*failure),
        UpstreamError::Exchange(err) => {
            for s in crate::upstream::pool::chain(err) {
                if let Some(b) = s.downcast_ref::<body::ForwardBodyError>() {
                    return match b {
                        body::ForwardBodyError::TooLarge(n) => ProxyError::BodyTooLarge(*n),
                        body::ForwardBodyError::Client(_) => ProxyError::ClientBody,
                    };
                }
            }
            ProxyError::Upstream(UpstreamFailure::Protocol)
        }
    }
}
