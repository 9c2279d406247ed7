//! Prometheus metrics (prometheus-client), served on the admin listener.
//!
//! Labels carry only rule ids and fixed enums, never a tenant id, a user or
//! a path value: metric labels are stored and shipped far more widely than
//! logs.

use std::sync::Arc;

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;

use super::sharded;
use prometheus_client::registry::Registry;

/// What happened to a request.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded to the upstream.
    Forward,
    /// Answered with an explanation.
    Explain,
    /// Redirected.
    Redirect,
    /// Denied.
    Deny,
    /// Refused by the proxy (malformed, ambiguous, over a limit).
    Reject,
    /// The upstream failed (502/504).
    UpstreamError,
}

/// The mode of the rule involved.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ModeLabel {
    /// No rule.
    None,
    /// An enforcing rule.
    Enforce,
    /// A report-only rule (the request was forwarded).
    ReportOnly,
}

/// Lowercase label values, as operators write them in queries.
macro_rules! label_values {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                encoder.write_str(match self { $(Self::$v => $s),* })
            }
        }
    };
}

label_values!(Decision {
    Forward => "forward",
    Explain => "explain",
    Redirect => "redirect",
    Deny => "deny",
    Reject => "reject",
    UpstreamError => "upstream_error",
});
label_values!(ModeLabel { None => "none", Enforce => "enforce", ReportOnly => "report-only" });
label_values!(UpstreamErrorKind {
    Connect => "connect",
    ConnectTimeout => "connect_timeout",
    Tls => "tls",
    Protocol => "protocol",
    Timeout => "timeout",
    ReadTimeout => "read_timeout",
});

/// Labels of `portalgate_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// What happened.
    pub decision: Decision,
    /// The rule id, empty when no rule was involved.
    pub rule: Option<Arc<String>>,
    /// The rule's mode.
    pub mode: ModeLabel,
    /// The status sent.
    pub status: u16,
}

/// Upstream failure kinds.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// Refused or unreachable.
    Connect,
    /// Connect timeout.
    ConnectTimeout,
    /// TLS handshake.
    Tls,
    /// Broken exchange.
    Protocol,
    /// Response header timeout.
    Timeout,
    /// No response body bytes within the read timeout.
    ReadTimeout,
}

/// Labels of `portalgate_upstream_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// The kind.
    pub kind: UpstreamErrorKind,
}

/// The outcome of a reload.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReloadResult {
    /// Applied.
    Success,
    /// Rejected; the old configuration keeps serving.
    Error,
}

label_values!(ReloadResult { Success => "success", Error => "error" });

/// Labels of `portalgate_config_reload_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// The outcome.
    pub result: ReloadResult,
}

/// Why a region lookup gave no region.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum DiscoveryErrorKind {
    /// No answer within the timeout.
    Timeout,
    /// A status that says nothing about the tenant (5xx, 3xx, 429...).
    Status,
    /// A 200 that is not the metadata expected.
    Garbage,
    /// Connection or TLS failure.
    Transport,
    /// The cache is full of lookups in flight.
    Busy,
}

label_values!(DiscoveryErrorKind {
    Timeout => "timeout",
    Status => "status",
    Garbage => "garbage",
    Transport => "transport",
    Busy => "busy",
});

/// Labels of `portalgate_discovery_errors_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiscoveryErrorLabels {
    /// The kind.
    pub kind: DiscoveryErrorKind,
}

/// Region discovery's metrics (no tenant id in any label).
#[derive(Debug, Clone)]
pub struct DiscoveryMetrics {
    /// Lookups made (one per tenant however many requests wait).
    pub lookups: Counter,
    /// Regions a rule needed that the cache held.
    pub hits: Counter,
    /// Requests that waited for a lookup (started or joined).
    pub misses: Counter,
    /// Lookups and waits that gave no region, by kind.
    pub errors: Family<DiscoveryErrorLabels, Counter>,
    /// Time a lookup took, failures and timeouts included.
    pub duration: prometheus_client::metrics::histogram::Histogram,
}

/// Labels with only a decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// What happened.
    pub decision: Decision,
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests by decision, rule, mode and status (sharded per thread).
    pub requests: Family<RequestLabels, sharded::Counter>,
    /// Request duration by decision (sharded per thread).
    pub duration: Family<DecisionLabels, sharded::Histogram>,
    /// Upstream errors by kind.
    pub upstream_errors: Family<UpstreamLabels, Counter>,
    /// Open client connections.
    pub open_connections: Gauge,
    /// Records waiting in the decision log queue (set at scrape time).
    pub decision_log_queue: Gauge,
    /// Records dropped because the queue was full (brought up to the log's
    /// own count at scrape time).
    pub decision_log_dropped: Counter,
    /// The configuration generation in force.
    pub config_generation: Gauge,
    /// Reloads by result.
    pub config_reloads: Family<ReloadLabels, Counter>,
    /// Requests a rule matched (enforced or reported), by rule and mode;
    /// every configured rule is there from the start, at zero.
    pub rule_matches: Family<RuleLabels, sharded::Counter>,
    /// Region discovery.
    pub discovery: DiscoveryMetrics,
}

/// Labels of `portalgate_rule_matches_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The rule id.
    pub rule: Arc<String>,
    /// The rule's mode.
    pub mode: ModeLabel,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portalgate");
        let requests = Family::<RequestLabels, sharded::Counter>::default();
        let duration = Family::<DecisionLabels, sharded::Histogram>::new_with_constructor(|| {
            sharded::Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let upstream_errors = Family::<UpstreamLabels, Counter>::default();
        let open_connections = Gauge::default();
        let decision_log_queue = Gauge::default();
        let decision_log_dropped = Counter::default();
        let config_generation = Gauge::default();
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        let rule_matches = Family::<RuleLabels, sharded::Counter>::default();
        registry.register(
            "requests",
            "Requests by decision, rule, mode and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head",
            duration.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream failures by kind",
            upstream_errors.clone(),
        );
        registry.register(
            "open_connections",
            "Open client connections",
            open_connections.clone(),
        );
        registry.register(
            "decision_log_queue_depth",
            "Decision records waiting to be written",
            decision_log_queue.clone(),
        );
        registry.register(
            "decision_log_dropped_records",
            "Decision records dropped because the queue was full",
            decision_log_dropped.clone(),
        );
        registry.register(
            "config_generation",
            "Generation of the configuration in force",
            config_generation.clone(),
        );
        registry.register(
            "config_reload",
            "Configuration reloads by result",
            config_reloads.clone(),
        );
        registry.register(
            "rule_matches",
            "Requests a rule matched, by rule and mode (every configured rule from the start)",
            rule_matches.clone(),
        );
        let discovery = DiscoveryMetrics {
            lookups: Counter::default(),
            hits: Counter::default(),
            misses: Counter::default(),
            errors: Family::default(),
            duration: prometheus_client::metrics::histogram::Histogram::new(exponential_buckets(
                0.001, 2.0, 14,
            )),
        };
        registry.register(
            "discovery_lookups",
            "Tenant region lookups made (OpenID metadata)",
            discovery.lookups.clone(),
        );
        registry.register(
            "discovery_cache_hits",
            "Tenant regions a rule needed that the discovery cache held",
            discovery.hits.clone(),
        );
        registry.register(
            "discovery_cache_misses",
            "Requests that waited for a tenant region lookup",
            discovery.misses.clone(),
        );
        registry.register(
            "discovery_errors",
            "Tenant region lookups that gave no region, by kind",
            discovery.errors.clone(),
        );
        registry.register(
            "discovery_lookup_duration_seconds",
            "Time a tenant region lookup took",
            discovery.duration.clone(),
        );
        for kind in [
            DiscoveryErrorKind::Timeout,
            DiscoveryErrorKind::Status,
            DiscoveryErrorKind::Garbage,
            DiscoveryErrorKind::Transport,
            DiscoveryErrorKind::Busy,
        ] {
            let _ = discovery
                .errors
                .get_or_create(&DiscoveryErrorLabels { kind });
        }
        config_generation.set(1);
        // Every series an alert reads exists from the start, at zero: a rate
        // over a series that appears with its first event reads "no data".
        for kind in [
            UpstreamErrorKind::Connect,
            UpstreamErrorKind::ConnectTimeout,
            UpstreamErrorKind::Tls,
            UpstreamErrorKind::Protocol,
            UpstreamErrorKind::Timeout,
            UpstreamErrorKind::ReadTimeout,
        ] {
            let _ = upstream_errors.get_or_create(&UpstreamLabels { kind });
        }
        for result in [ReloadResult::Success, ReloadResult::Error] {
            let _ = config_reloads.get_or_create(&ReloadLabels { result });
        }
        Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            open_connections,
            decision_log_queue,
            decision_log_dropped,
            config_generation,
            config_reloads,
            rule_matches,
            discovery,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
