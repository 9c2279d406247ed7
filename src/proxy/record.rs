//! Building decision records: what the inner handler decided (the trail),
//! completed by the outer handler with the final status and duration.

use std::net::IpAddr;
use std::time::Instant;

use http::{HeaderValue, Method, Version};

use crate::config::ClientAddress;
use crate::policy::{Action, Matched, PathPattern};
use crate::telemetry::decision_log::{timestamp, DecisionRecord};
use crate::telemetry::pseudonym::{strip_query_values, Pseudonymizer};

/// What a rule decided, kept until the response is known.
pub struct Draft {
    pub decision_id: HeaderValue,
    pub rule: String,
    pub mode: &'static str,
    pub action: &'static str,
    pub route: Option<String>,
    pub tenant: Option<String>,
    pub tenant_source: Option<String>,
    pub region: String,
    pub region_source: &'static str,
    pub portal: Option<String>,
    /// Captured user identifiers, to pseudonymise in paths.
    pub users: Vec<String>,
}

impl Draft {
    /// A draft for a matched rule; `user_captures` names the captures that
    /// hold user identifiers.
    pub fn new(
        m: &Matched<'_, Action>,
        decision_id: HeaderValue,
        user_captures: &[String],
    ) -> Draft {
        let route = match &m.rule.matcher.path {
            Some(PathPattern::Template { template, .. }) => Some(template.clone()),
            Some(PathPattern::Regex(r)) => Some(format!("~{r}")),
            None => None,
        };
        let portal = match &m.rule.action {
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
        Draft {
            decision_id,
            rule: m.rule.id.clone(),
            mode: m.rule.mode.as_str(),
            action: m.rule.action.kind(),
            route,
            tenant: m.resolved.tenant.map(|t| t.to_string()),
            tenant_source: m.resolved.tenant_source.clone(),
            region: m.resolved.region.to_string(),
            region_source: m.resolved.region_source.as_str(),
            portal,
            users: m
                .captures
                .iter()
                .filter(|(n, _)| user_captures.iter().any(|u| u == n))
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }
}

/// What the outer handler knows about every request.
pub struct Seen {
    pub start: Instant,
    pub method: Method,
    pub version: Version,
    pub raw_target: http::Uri,
    pub user_agent: Option<HeaderValue>,
    pub peer: IpAddr,
}

/// The request's trail through the inner handler.
#[derive(Default)]
pub struct Trail {
    /// The deciding (or report-only) rule: index, mode, and what the
    /// client got (a report-only match is still a forward).
    pub outcome: Option<(
        usize,
        crate::policy::Mode,
        crate::telemetry::metrics::Decision,
    )>,
    pub draft: Option<Draft>,
    pub canonical_path: Option<String>,
    pub host: Option<String>,
}

/// Everything needed to write records without personal data.
#[derive(Debug)]
pub struct Recorder {
    pub pseudonyms: Pseudonymizer,
    pub client_address: ClientAddress,
    pub user_captures: Vec<String>,
    /// Path segments after which a segment is a user identifier.
    pub user_collections: Vec<String>,
    /// The configuration generation, written into every record.
    pub generation: u64,
    /// The configuration hash prefix, written into every record.
    pub config_hash: String,
}

impl Recorder {
    /// The finished record.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        seen: &Seen,
        trail: &Trail,
        request_id: &HeaderValue,
        decision_id: &HeaderValue,
        status: u16,
        action: &'static str,
        reason: Option<&'static str>,
    ) -> DecisionRecord {
        let draft = trail.draft.as_ref();
        let (raw_path, query) = (seen.raw_target.path(), seen.raw_target.query());
        // User identifiers: the rule's user captures, and, for every record
        // (a sampled forward has no rule), the segment after a collection
        // name such as `users`.
        let mut users: Vec<&str> =
            draft.map_or(Vec::new(), |d| d.users.iter().map(String::as_str).collect());
        for path in [Some(raw_path), trail.canonical_path.as_deref()]
            .into_iter()
            .flatten()
        {
            let segs: Vec<&str> = path.split('/').collect();
            for w in segs.windows(2) {
                if self
                    .user_collections
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(w[0]))
                    && !w[1].is_empty()
                {
                    users.push(w[1]);
                }
            }
        }
        let mut target = self.pseudonyms.path(raw_path, &users);
        if let Some(q) = query {
            target.push('?');
            target.push_str(&strip_query_values(q, &self.pseudonyms));
        }
        DecisionRecord {
            ts: timestamp(),
            decision_id: decision_id.to_str().unwrap_or("").to_owned(),
            request_id: request_id.to_str().unwrap_or("").to_owned(),
            rule: draft.map(|d| d.rule.clone()),
            mode: draft.map_or("enforce", |d| d.mode),
            action,
            status,
            reason,
            method: seen.method.to_string(),
            host: trail.host.clone(),
            route: draft.and_then(|d| d.route.clone()),
            path: trail
                .canonical_path
                .as_deref()
                .map(|p| self.pseudonyms.path(p, &users)),
            target,
            tenant: draft.and_then(|d| d.tenant.clone()),
            tenant_source: draft.and_then(|d| d.tenant_source.clone()),
            region: draft.map(|d| d.region.clone()),
            region_source: draft.map(|d| d.region_source),
            portal: draft.and_then(|d| d.portal.clone()),
            client: self.client(seen.peer),
            user_agent: seen
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            generation: self.generation,
            config: self.config_hash.clone(),
            protocol: match seen.version {
                Version::HTTP_10 => "HTTP/1.0",
                Version::HTTP_2 => "HTTP/2",
                _ => "HTTP/1.1",
            },
            duration_ms: seen.start.elapsed().as_secs_f64() * 1000.0,
        }
    }

    fn client(&self, ip: IpAddr) -> Option<String> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match self.client_address {
            ClientAddress::Omit => None,
            ClientAddress::Full => Some(ip.to_string()),
            ClientAddress::Truncated => Some(match ip {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
                }
                IpAddr::V6(v6) => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
                }
            }),
        }
    }
}
