//! Accounting for a finished request: the metrics, and the decision record
//! for one the policy did not simply forward. The handler and the
//! pass-through path both count and record through these two methods.

use http::HeaderValue;

use super::{record, Proxy, ProxyError};
use crate::policy::Mode;
use crate::upstream::UpstreamFailure;

impl Proxy {
    /// Counts the request: by decision, rule, mode and status (or error);
    /// `elapsed`: until the response head was ready.
    pub(super) fn count(
        &self,
        elapsed: std::time::Duration,
        trail: &record::Trail,
        outcome: Result<u16, &ProxyError>,
    ) {
        use crate::telemetry::metrics::{
            Decision, DecisionLabels, ModeLabel, RequestLabels, UpstreamErrorKind, UpstreamLabels,
        };
        let (status, decision) = match outcome {
            Ok(status) => (
                status,
                trail.outcome.map_or(Decision::Forward, |(_, _, d)| d),
            ),
            Err(e) if e.is_upstream() => {
                let kind = match e {
                    ProxyError::Upstream(UpstreamFailure::Connect) => UpstreamErrorKind::Connect,
                    ProxyError::Upstream(UpstreamFailure::ConnectTimeout) => {
                        UpstreamErrorKind::ConnectTimeout
                    }
                    ProxyError::Upstream(UpstreamFailure::Tls) => UpstreamErrorKind::Tls,
                    ProxyError::Upstream(UpstreamFailure::Protocol) => UpstreamErrorKind::Protocol,
                    _ => UpstreamErrorKind::Timeout,
                };
                self.metrics
                    .upstream_errors
                    .get_or_create(&UpstreamLabels { kind })
                    .inc();
                (e.status().as_u16(), Decision::UpstreamError)
            }
            Err(e) => (e.status().as_u16(), Decision::Reject),
        };
        let (rule, mode) = match trail.outcome {
            Some((i, m, _)) => (
                self.rule_labels.get(i).cloned(),
                if m == Mode::ReportOnly {
                    ModeLabel::ReportOnly
                } else {
                    ModeLabel::Enforce
                },
            ),
            None => (None, ModeLabel::None),
        };
        let elapsed = elapsed.as_secs_f64();
        if decision == Decision::Forward && rule.is_none() && status == 200 {
            self.forwarded_ok.inc();
            self.forwarded_duration.observe(elapsed);
            return;
        }
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                decision,
                rule,
                mode,
                status,
            })
            .inc();
        self.metrics
            .duration
            .get_or_create(&DecisionLabels { decision })
            .observe(elapsed);
    }

    /// Exactly one record for a request the policy did not simply forward:
    /// an answer by a rule, a report-only match, or a rejection by the
    /// canonicaliser or the policy; and, when sampling is configured, for
    /// every n-th forwarded request.
    pub(super) fn decision_record(
        &self,
        seen: &record::Seen,
        trail: &record::Trail,
        rid: &HeaderValue,
        outcome: Result<u16, &ProxyError>,
    ) -> Option<crate::telemetry::decision_log::DecisionRecord> {
        let status = match outcome {
            Ok(s) => s,
            Err(e) => e.status().as_u16(),
        };
        let rec = match (&trail.draft, outcome) {
            (Some(d), _) => {
                self.recorder
                    .record(seen, trail, rid, &d.decision_id, status, d.action, None)
            }
            (None, Err(e @ (ProxyError::AmbiguousPath(_) | ProxyError::Policy(_)))) => {
                let did = self.decision_ids.for_request(None);
                self.recorder
                    .record(seen, trail, rid, &did, status, "reject", Some(e.code()))
            }
            (None, Ok(status)) if self.forwarded_every > 0 => {
                let n = self
                    .forwarded_seen
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n % self.forwarded_every != 0 {
                    return None;
                }
                let did = self.decision_ids.for_request(None);
                self.recorder
                    .record(seen, trail, rid, &did, status, "forward", None)
            }
            _ => return None,
        };
        Some(rec)
    }
}
