//! Accounting for a finished request, whichever codec served it: the
//! metrics, one log line for a failure, and the decision record for a
//! request the policy did not simply forward.

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::telemetry::sharded::{Counter, Histogram};

use http::{Method, Version};

use super::failure::{RelayError, Side, UPSTREAM_WARNINGS};
use super::judge::Facts;
use super::request_id::Id;
use super::ProxyError;
use crate::config::Config;
use crate::policy::{Action, Matched, Mode, PathPattern};
use crate::telemetry::decision_log::DecisionLog;
use crate::telemetry::metrics::{
    Decision, DecisionLabels, Metrics, ModeLabel, RequestLabels, RuleLabels,
};
use crate::telemetry::pseudonym::Pseudonymizer;
use crate::telemetry::record::{Local, RawRecord, Recorder, RuleFacts, Texts};
use crate::upstream::UpstreamFailure;

/// The metrics and the decision log, as one configuration counts and
/// records.
#[derive(Debug)]
pub struct Accounts {
    log: Arc<DecisionLog>,
    metrics: Arc<Metrics>,
    /// Each thread's handle on the recorder of this configuration.
    recorders: Box<[Arc<Local>]>,
    /// Rule ids as metric label values, by rule index.
    rule_labels: Vec<Arc<String>>,
    /// Capture names that hold user identifiers.
    user_captures: Vec<String>,
    /// Every how-many-th forwarded request gets a record (0: none).
    forwarded_every: u64,
    forwarded_seen: AtomicU64,
    /// The counter of the common case (forwarded, no rule, 200), resolved
    /// once: a family lookup per request costs a lock and a hash of the
    /// labels.
    forwarded_ok: Counter,
    /// Each rule's counters, resolved on first use, by rule index.
    rule_counters: Vec<RuleCounters>,
    /// Each rule's `portalgate_rule_matches_total`, there from the start
    /// (`None` for a rule that is off), by rule index.
    rule_matches: Vec<Option<Counter>>,
    /// The duration histogram of each decision, resolved on first use.
    durations: [OnceLock<Histogram>; 6],
}

/// A counter of `portalgate_requests_total` and its labels (the rule is
/// the one it is kept for).
type Slot = OnceLock<(Decision, ModeLabel, u16, Counter)>;

/// The counters one rule counts into, resolved on first use. A rule
/// answers with one or two statuses and forwards when it reports, so three
/// slots hold them; anything else goes through the family.
#[derive(Debug, Default)]
struct RuleCounters {
    slots: [Slot; 3],
}

/// What the accounting learns of a finished request.
pub struct Finished<'a, 'j> {
    /// When its head was complete.
    pub start: Instant,
    /// When the response head was ready (or the request failed).
    pub answered: Instant,
    /// The method (`None` for a head that could not be read).
    pub method: Option<&'a Method>,
    /// The client's protocol.
    pub version: Version,
    /// The request target as received.
    pub target: &'a str,
    /// `User-Agent`.
    pub user_agent: Option<&'a [u8]>,
    /// The client address.
    pub peer: IpAddr,
    /// The request id.
    pub request_id: &'a Id,
    /// What the judgement found (borrowed: the facts are a few hundred
    /// bytes, and the record takes only what it keeps out of them).
    pub facts: &'a mut Facts<'j>,
    /// The status sent, or the failure.
    pub outcome: Result<u16, &'a ProxyError>,
    /// What failed, with its cause, when a codec knows more than the
    /// outcome says (also a relay that broke after the status was sent).
    pub cause: Option<Cause<'a>>,
}

/// A failure with its cause.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// The side that failed.
    pub side: Side,
    /// The error, with its sources.
    pub error: &'a (dyn std::error::Error + Send + Sync + 'static),
}

impl Accounts {
    /// The accounts of a validated configuration.
    pub fn new(
        config: &Config,
        log: Arc<DecisionLog>,
        metrics: Arc<Metrics>,
        generation: u64,
    ) -> Accounts {
        let forwarded_ok = metrics
            .requests
            .get_or_create(&RequestLabels {
                decision: Decision::Forward,
                rule: None,
                mode: ModeLabel::None,
                status: 200,
            })
            .clone();
        let rules = config.rules.rules();
        let rule_matches = rules
            .iter()
            .map(|r| {
                let mode = match r.mode {
                    Mode::Enforce => ModeLabel::Enforce,
                    Mode::ReportOnly => ModeLabel::ReportOnly,
                    Mode::Off => return None,
                };
                let labels = RuleLabels {
                    rule: Arc::new(r.id.clone()),
                    mode,
                };
                Some(metrics.rule_matches.get_or_create(&labels).clone())
            })
            .collect();
        Accounts {
            log,
            metrics,
            recorders: Local::per_shard(&Arc::new(Recorder {
                pseudonyms: Pseudonymizer::new(&config.decision_log.key),
                client_address: config.decision_log.client_address,
                user_collections: config.decision_log.user_collections.clone(),
                generation,
                config_hash: config.hash.chars().take(12).collect(),
                known_hosts: config.directory.hosts(),
                rules: rules.iter().map(rule_facts).collect(),
            })),
            rule_labels: rules.iter().map(|r| Arc::new(r.id.clone())).collect(),
            user_captures: config.decision_log.user_captures.clone(),
            forwarded_every: config.decision_log.forwarded_every,
            forwarded_seen: AtomicU64::new(0),
            forwarded_ok,
            rule_counters: rules.iter().map(|_| RuleCounters::default()).collect(),
            rule_matches,
            durations: Default::default(),
        }
    }

    /// The metrics, shared (for a body that is still streaming when its
    /// request's accounting is done).
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The decision log.
    pub fn log(&self) -> &DecisionLog {
        &self.log
    }

    /// Counts the request, logs a failure once, and records the decision.
    /// Returns the wait for room in the decision log's queue when its
    /// outputs block (see [`DecisionLog::record`]); the caller awaits it.
    pub fn finish(&self, f: Finished<'_, '_>) -> Option<Wait<'_>> {
        // Moved into the record rather than copied.
        let texts = f.facts.texts.take();
        let (rule, decided) = deciding(f.facts);
        // Read once: an `Instant` difference costs a few dozen instructions.
        let elapsed = f.answered.saturating_duration_since(f.start);
        self.count(&f, rule, elapsed);
        log_failure(&f);
        let rec = self.record(&f, decided, texts, elapsed)?;
        // Boxed: the wait is rare (blocking outputs, a full queue), and
        // inline it would make every request's future, and every HTTP/2
        // stream's task, larger by the record it carries.
        self.log
            .record(rec)
            .map(|wait| -> Wait<'_> { Box::pin(wait) })
    }

    /// Counts by decision, rule, mode and status (or error).
    fn count(&self, f: &Finished<'_, '_>, rule: Option<Counted>, elapsed: Duration) {
        use crate::telemetry::metrics::{UpstreamErrorKind, UpstreamLabels};
        // The cause names the kind more closely than the status does (a
        // stalled body, a malformed chunk after the head went out).
        let cause_kind = f.cause.and_then(|c| {
            c.error
                .downcast_ref::<RelayError>()
                .and_then(RelayError::upstream_kind)
        });
        let (status, decision) = match f.outcome {
            Ok(status) => {
                if let Some(kind) = cause_kind {
                    self.metrics
                        .upstream_errors
                        .get_or_create(&UpstreamLabels { kind })
                        .inc();
                }
                (status, rule.map_or(Decision::Forward, |(_, _, d)| d))
            }
            Err(e) if e.is_upstream() => {
                let kind = cause_kind.unwrap_or(match e {
                    ProxyError::Upstream(UpstreamFailure::Connect) => UpstreamErrorKind::Connect,
                    ProxyError::Upstream(UpstreamFailure::ConnectTimeout) => {
                        UpstreamErrorKind::ConnectTimeout
                    }
                    ProxyError::Upstream(UpstreamFailure::Tls) => UpstreamErrorKind::Tls,
                    ProxyError::Upstream(UpstreamFailure::Protocol) => UpstreamErrorKind::Protocol,
                    _ => UpstreamErrorKind::Timeout,
                });
                self.metrics
                    .upstream_errors
                    .get_or_create(&UpstreamLabels { kind })
                    .inc();
                (e.status().as_u16(), Decision::UpstreamError)
            }
            Err(e) => (e.status().as_u16(), Decision::Reject),
        };
        let elapsed = elapsed.as_secs_f64();
        let Some((index, mode, _)) = rule else {
            if decision == Decision::Forward && status == 200 {
                self.forwarded_ok.inc();
                self.duration(decision).observe(elapsed);
                return;
            }
            self.family_counter(decision, None, ModeLabel::None, status)
                .inc();
            self.duration(decision).observe(elapsed);
            return;
        };
        let mode = if mode == Mode::ReportOnly {
            ModeLabel::ReportOnly
        } else {
            ModeLabel::Enforce
        };
        if let Some(Some(c)) = self.rule_matches.get(index) {
            c.inc();
        }
        let key = (decision, mode, status);
        let cached = self.rule_counters.get(index).and_then(|c| {
            c.slots.iter().find_map(|slot| {
                let (d, m, s, counter) = slot.get_or_init(|| {
                    let counter = self.family_counter(decision, Some(index), mode, status);
                    (decision, mode, status, counter)
                });
                ((*d, *m, *s) == key).then_some(counter)
            })
        });
        match cached {
            Some(counter) => {
                counter.inc();
            }
            None => {
                self.family_counter(decision, Some(index), mode, status)
                    .inc();
            }
        }
        self.duration(decision).observe(elapsed);
    }

    /// The counter of these labels, looked up in the family.
    fn family_counter(
        &self,
        decision: Decision,
        rule: Option<usize>,
        mode: ModeLabel,
        status: u16,
    ) -> Counter {
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                decision,
                rule: rule.and_then(|i| self.rule_labels.get(i).cloned()),
                mode,
                status,
            })
            .clone()
    }

    /// The duration histogram of `decision`.
    fn duration(&self, decision: Decision) -> &Histogram {
        let i = match decision {
            Decision::Forward => 0,
            Decision::Explain => 1,
            Decision::Redirect => 2,
            Decision::Deny => 3,
            Decision::Reject => 4,
            Decision::UpstreamError => 5,
        };
        self.durations[i].get_or_init(|| {
            self.metrics
                .duration
                .get_or_create(&DecisionLabels { decision })
                .clone()
        })
    }

    /// Exactly one record for a request the policy did not simply forward:
    /// an answer by a rule, a report-only match, or a rejection by the
    /// canonicaliser or the policy; and, when sampling is configured, for
    /// every n-th forwarded request.
    fn record(
        &self,
        f: &Finished<'_, '_>,
        decided: Option<&Matched<'_, Action>>,
        texts: Option<Texts>,
        elapsed: Duration,
    ) -> Option<RawRecord> {
        let status = match f.outcome {
            Ok(s) => s,
            Err(e) => e.status().as_u16(),
        };
        let (action, reason) = match (decided, f.outcome) {
            (Some(m), _) => (m.rule.action.kind(), None),
            (
                None,
                Err(
                    e @ (ProxyError::AmbiguousPath(_)
                    | ProxyError::Policy(_)
                    | ProxyError::RegionUnavailable(_)),
                ),
            ) => ("reject", Some(e.code())),
            (None, Ok(_)) if self.forwarded_every > 0 => {
                let n = self.forwarded_seen.fetch_add(1, Ordering::Relaxed);
                if !n.is_multiple_of(self.forwarded_every) {
                    return None;
                }
                ("forward", None)
            }
            _ => return None,
        };
        let decision_id = match (decided, &f.facts.decision_id) {
            (Some(_), Some(id)) => id.clone(),
            _ => Id::new(),
        };
        let resolved = decided.map(|m| &m.resolved);
        Some(RawRecord {
            at: crate::clock::wall(f.answered),
            decision_id,
            request_id: f.request_id.clone(),
            rule: decided.and_then(|m| u32::try_from(m.index).ok()),
            action,
            status,
            reason,
            method: f.method.cloned().unwrap_or_default(),
            texts: texts.unwrap_or_else(|| {
                Texts::new(
                    None,
                    None,
                    f.target,
                    f.user_agent.and_then(crate::head::text),
                )
            }),
            tenant: resolved.and_then(|r| r.tenant).or(f.facts.tenant),
            tenant_source: resolved.and_then(|r| r.tenant_source),
            region: resolved.map(|r| r.region),
            region_source: resolved.map(|r| r.region_source.as_str()),
            users: decided.map_or(Vec::new(), |m| {
                m.captures
                    .iter()
                    .filter(|(n, _)| self.user_captures.iter().any(|u| u == n))
                    .map(|(_, v)| v.to_string())
                    .collect()
            }),
            peer: f.peer,
            protocol: match f.version {
                Version::HTTP_10 => "HTTP/1.0",
                Version::HTTP_2 => "HTTP/2",
                _ => "HTTP/1.1",
            },
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            recorder: self.recorders[crate::telemetry::sharded::shard() % self.recorders.len()]
                .clone(),
        })
    }
}

/// The wait for room in the decision log's queue.
pub type Wait<'a> = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A rule's part in what the client got: index, mode, decision.
type Counted = (usize, Mode, Decision);

/// The rule that decided what the client got (for the metrics), and the
/// match a record is about: an enforcing rule other than `allow`, else a
/// report-only one.
fn deciding<'f, 'j>(facts: &'f Facts<'j>) -> (Option<Counted>, Option<&'f Matched<'j, Action>>) {
    match (&facts.enforced, &facts.report_only) {
        (Some(m), _) if m.rule.action != Action::Allow => (
            Some((m.index, Mode::Enforce, answered_as(&m.rule.action))),
            Some(m),
        ),
        (_, Some(r)) => (
            Some((r.index, Mode::ReportOnly, Decision::Forward)),
            Some(r),
        ),
        _ => (None, None),
    }
}

/// What the client gets from an enforced action, for the metrics. The match
/// is exhaustive so a new action cannot be counted as a forward by accident.
fn answered_as(action: &Action) -> Decision {
    match action {
        Action::Allow => Decision::Forward,
        Action::Deny { .. } => Decision::Deny,
        Action::Redirect { .. } => Decision::Redirect,
        Action::Explain { .. } => Decision::Explain,
    }
}

fn rule_facts(rule: &crate::policy::Rule<Action>) -> RuleFacts {
    let route = match &rule.matcher.path {
        Some(PathPattern::Template { template, .. }) => Some(template.clone()),
        Some(PathPattern::Regex(r)) => Some(format!("~{r}")),
        None => None,
    };
    let portal = match &rule.action {
        Action::Explain { portals, .. } => portals.first().map(|p| p.url.clone()),
        Action::Redirect {
            portal, location, ..
        } => Some(
            portal
                .as_ref()
                .map_or_else(|| location.clone(), |p| p.url.clone()),
        ),
        _ => None,
    };
    RuleFacts {
        id: rule.id.clone(),
        mode: rule.mode.as_str(),
        route,
        portal,
    }
}

/// Logs an answer the client did not take (the write failed), as
/// the accounting logs any failure on the client's side.
pub fn log_cut_short(
    request_id: &Id,
    method: Option<&Method>,
    status: u16,
    cause: &dyn std::fmt::Display,
) {
    let request_id = request_id.redacted(crate::telemetry::pseudonym::for_logs());
    let request_id = &*request_id;
    let method = method.map_or("-", crate::telemetry::record::method_name);
    let cause = cause.to_string();
    let cause = cause.as_str();
    tracing::debug!(
        request_id,
        method,
        status,
        cause,
        "the response was cut short"
    );
}

/// Logs a failed request once: upstream failures as warnings (throttled),
/// the client's own errors at debug level; with the cause when the codec
/// knows it.
fn log_failure(f: &Finished<'_, '_>) {
    if f.outcome.is_ok() && f.cause.is_none() {
        return;
    }
    // As records carry them: a client's free-text id or method never
    // reaches the log as sent.
    let request_id = f
        .request_id
        .redacted(crate::telemetry::pseudonym::for_logs());
    let request_id = &*request_id;
    let method = f.method.map_or("-", crate::telemetry::record::method_name);
    let cause = f.cause.map(|c| c.error.to_string());
    let cause = cause.as_deref().unwrap_or("-");
    match (f.outcome, f.cause) {
        (Err(err), _) => {
            let (status, code) = (err.status().as_u16(), err.code());
            if err.is_upstream() {
                if UPSTREAM_WARNINGS.allow() {
                    tracing::warn!(request_id, method, status, code, cause, "{err}");
                }
            } else {
                tracing::debug!(request_id, method, status, code, cause, "{err}");
            }
        }
        (Ok(status), Some(c)) if c.side == Side::Upstream && UPSTREAM_WARNINGS.allow() => {
            tracing::warn!(
                request_id,
                method,
                status,
                cause,
                "the response was cut short"
            );
        }
        (Ok(status), Some(c)) => log_cut_short(f.request_id, f.method, status, c.error),
        (Ok(_), None) => {}
    }
}
