//! Decision records as taken on the request path ([`RawRecord`]: the facts,
//! unformatted) and their written form ([`DecisionRecord`]: pseudonymised,
//! without query values), made by [`RawRecord::format`] off the request
//! path: by the writer task, or when `/decisions/recent` is read.
//!
//! A raw record holds the request target and captures as received; it
//! lives only in memory (the ring of recent records and the writer's
//! queue). Nothing leaves the process unformatted.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::id::Id;
use super::pseudonym::{product_token, Pseudonymizer};
use crate::tenant::{Region, TenantId};

/// How client addresses appear in decision records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddress {
    /// As seen.
    Full,
    /// IPv4 to /24, IPv6 to /48.
    Truncated,
    /// Not at all.
    Omit,
}

/// One decision, as written. No bodies, credentials, cookies or query
/// values; user identifiers pseudonymised.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// RFC 3339 UTC.
    pub ts: String,
    /// The decision id sent to the client.
    pub decision_id: String,
    /// The request id.
    pub request_id: String,
    /// The rule, if a rule decided.
    pub rule: Option<String>,
    /// `enforce` or `report-only`.
    pub mode: &'static str,
    /// `explain`, `redirect`, `deny`, `reject` (the proxy refused it), or
    /// `forward` (a sampled forwarded request).
    pub action: &'static str,
    /// The status sent to the client.
    pub status: u16,
    /// Why a request was rejected (an error code), if it was.
    pub reason: Option<&'static str>,
    /// The method.
    pub method: String,
    /// The canonical host when `[tenants.hosts]` names it, else its
    /// pseudonym.
    pub host: Option<String>,
    /// The rule's route template, e.g. `/v1/customers/{tenant}/users/{user}`.
    pub route: Option<String>,
    /// The canonical path, pseudonymised.
    pub path: Option<String>,
    /// The request target as sent: every segment that is not plain text
    /// pseudonymised, the query reduced to its names.
    pub target: String,
    /// The tenant id.
    pub tenant: Option<String>,
    /// Where the tenant id came from.
    pub tenant_source: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Where the region came from.
    pub region_source: Option<&'static str>,
    /// The portal the answer names.
    pub portal: Option<String>,
    /// The client address (full, truncated or omitted, by configuration).
    pub client: Option<String>,
    /// The `User-Agent`'s first product token (`curl/8.5.0`), when it is
    /// plain; never its comments.
    pub user_agent: Option<String>,
    /// The configuration generation that decided.
    pub generation: u64,
    /// The first 12 hex digits of that configuration's SHA-256 (`/config`
    /// shows all of it).
    pub config: String,
    /// `HTTP/1.1`, `HTTP/2`, …
    pub protocol: &'static str,
    /// Time from the request head to the answer, in milliseconds.
    pub duration_ms: f64,
}

/// What formats the records of one configuration generation.
#[derive(Debug)]
pub struct Recorder {
    /// Keyed pseudonyms for user identifiers.
    pub pseudonyms: Pseudonymizer,
    /// Client address treatment.
    pub client_address: ClientAddress,
    /// Path segments after which a segment is a user identifier.
    pub user_collections: Vec<String>,
    /// The configuration generation.
    pub generation: u64,
    /// The configuration hash prefix.
    pub config_hash: String,
    /// The hosts `[tenants.hosts]` names: written as they are, any other
    /// (a client's free text) pseudonymised. Only these, not the whole
    /// directory: a record kept in the recent ring must not keep an old
    /// configuration's million tenants alive.
    pub known_hosts: Arc<crate::tenant::Hosts>,
    /// The facts of the configuration's rules, by index.
    pub rules: Vec<RuleFacts>,
}

/// One worker thread's handle on a [`Recorder`]: a record holds its
/// thread's own `Arc` (a count on cache lines of its own), not one count
/// that every core would write for every record.
#[derive(Debug)]
#[repr(align(128))]
pub struct Local(pub Arc<Recorder>);

impl Local {
    /// A handle per thread shard ([`super::sharded::shard`]).
    pub fn per_shard(recorder: &Arc<Recorder>) -> Box<[Arc<Local>]> {
        (0..super::sharded::SHARDS)
            .map(|_| Arc::new(Local(recorder.clone())))
            .collect()
    }
}

/// What a rule contributes to every record it decides: computed once per
/// configuration.
#[derive(Debug)]
pub struct RuleFacts {
    /// The rule id.
    pub id: String,
    /// `enforce` or `report-only`.
    pub mode: &'static str,
    /// The route template (`~regex` for a regex rule).
    pub route: Option<String>,
    /// The portal the answer names.
    pub portal: Option<String>,
}

/// The texts of a request a record keeps, in one allocation: a record is
/// dropped a thousand decisions after it was taken (the ring of recent
/// records), when its memory has left every cache, and each allocation
/// freed then costs a miss.
#[derive(Debug, Default)]
pub struct Texts {
    text: Box<str>,
    /// Where host, path, target and `User-Agent` end in `text`; `None` for
    /// one that is absent.
    ends: [Option<u32>; 4],
}

impl Texts {
    /// The texts of one request.
    pub fn new(
        host: Option<&str>,
        path: Option<&str>,
        target: &str,
        user_agent: Option<&str>,
    ) -> Texts {
        let parts = [host, path, Some(target), user_agent];
        let mut text = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum());
        let mut ends = [None; 4];
        for (end, part) in ends.iter_mut().zip(parts) {
            if let Some(p) = part {
                text.push_str(p);
                // A text past 4 GiB is cut off (a head is at most 64 KiB).
                *end = Some(u32::try_from(text.len()).unwrap_or(u32::MAX));
            }
        }
        Texts {
            text: text.into_boxed_str(),
            ends,
        }
    }

    fn part(&self, i: usize) -> Option<&str> {
        let end = usize::try_from(self.ends.get(i).copied()??).ok()?;
        let start = self.ends[..i]
            .iter()
            .rev()
            .find_map(|e| *e)
            .map_or(0, |e| usize::try_from(e).unwrap_or(usize::MAX));
        self.text.get(start..end)
    }

    /// The canonical host.
    pub fn host(&self) -> Option<&str> {
        self.part(0)
    }

    /// The canonical path, as judged.
    pub fn path(&self) -> Option<&str> {
        self.part(1)
    }

    /// The request target as received.
    pub fn target(&self) -> &str {
        self.part(2).unwrap_or("")
    }

    /// The `User-Agent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.part(3)
    }
}

/// One decision as taken, not yet formatted.
#[derive(Debug)]
pub struct RawRecord {
    /// When the request was decided.
    pub at: SystemTime,
    /// The decision id.
    pub decision_id: Id,
    /// The request id.
    pub request_id: Id,
    /// The rule, if one decided or reported: its index in the recorder's
    /// rules.
    pub rule: Option<u32>,
    /// `explain`, `redirect`, `deny`, `reject`, `forward`, ….
    pub action: &'static str,
    /// The status sent.
    pub status: u16,
    /// Why a request was rejected.
    pub reason: Option<&'static str>,
    /// The method.
    pub method: http::Method,
    /// The canonical host and path, the target as received and the
    /// `User-Agent` (none of them pseudonymised yet).
    pub texts: Texts,
    /// The tenant id.
    pub tenant: Option<TenantId>,
    /// Where it came from.
    pub tenant_source: Option<&'static str>,
    /// The region.
    pub region: Option<Region>,
    /// Where the region came from.
    pub region_source: Option<&'static str>,
    /// Captured user identifiers (to pseudonymise in paths).
    pub users: Vec<String>,
    /// The client address.
    pub peer: IpAddr,
    /// `HTTP/1.1`, `HTTP/2`, …
    pub protocol: &'static str,
    /// Time from the request head to the answer, in milliseconds.
    pub duration_ms: f64,
    /// The formatting context of the configuration that decided.
    pub recorder: Arc<Local>,
}

impl RawRecord {
    /// The facts of the rule that decided or reported.
    pub fn rule_facts(&self) -> Option<&RuleFacts> {
        self.rule
            .and_then(|i| self.recorder.0.rules.get(usize::try_from(i).ok()?))
    }

    /// The record as written: user identifiers pseudonymised, query values
    /// removed, the client address as configured.
    pub fn format(&self) -> DecisionRecord {
        let r = &self.recorder.0;
        let t = &self.texts;
        let (raw_path, query) = match t.target().split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (t.target(), None),
        };
        // User identifiers: the rule's user captures, and, for every record
        // (a sampled forward has no rule), the segment after a collection
        // name such as `users`.
        let mut users: Vec<&str> = self.users.iter().map(String::as_str).collect();
        for path in [Some(raw_path), t.path()].into_iter().flatten() {
            let segs: Vec<&str> = path.split('/').collect();
            for w in segs.windows(2) {
                if r.user_collections
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(w[0]))
                    && !w[1].is_empty()
                {
                    users.push(w[1]);
                }
            }
        }
        let mut target = r.pseudonyms.path(raw_path, &users);
        if let Some(q) = query {
            target.push('?');
            target.push_str(&r.pseudonyms.query_names(q));
        }
        let rule = self.rule_facts();
        DecisionRecord {
            ts: humantime::format_rfc3339_millis(self.at).to_string(),
            decision_id: self.decision_id.as_str().to_owned(),
            request_id: self.request_id.redacted(&r.pseudonyms).into_owned(),
            rule: rule.map(|f| f.id.clone()),
            mode: rule.map_or("enforce", |f| f.mode),
            action: self.action,
            status: self.status,
            reason: self.reason,
            method: method_name(&self.method).to_owned(),
            host: t.host().map(|h| {
                if r.known_hosts.contains_key(h) {
                    h.to_owned()
                } else {
                    r.pseudonyms.pseudonym(h)
                }
            }),
            route: rule.and_then(|f| f.route.clone()),
            path: t.path().map(|p| r.pseudonyms.path(p, &users)),
            target,
            tenant: self.tenant.map(|t| t.to_string()),
            tenant_source: self.tenant_source.map(str::to_owned),
            region: self.region.as_ref().map(|r| r.as_str().to_owned()),
            region_source: self.region_source,
            portal: rule.and_then(|f| f.portal.clone()),
            client: client(r.client_address, self.peer),
            user_agent: t.user_agent().and_then(product_token).map(str::to_owned),
            generation: r.generation,
            config: r.config_hash.clone(),
            protocol: self.protocol,
            duration_ms: self.duration_ms,
        }
    }
}

/// A standard method's name; any other method is a client's free text,
/// written as `OTHER`.
pub fn method_name(m: &http::Method) -> &'static str {
    use http::Method;
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    STANDARD
        .iter()
        .find(|s| *s == m)
        .map_or("OTHER", Method::as_str)
}

fn client(mode: ClientAddress, ip: IpAddr) -> Option<String> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match mode {
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

#[cfg(test)]
mod tests {
    use super::Texts;

    #[test]
    fn texts_keep_each_part_and_its_absence() {
        let t = Texts::new(
            Some("api.partnercenter.microsoft.com"),
            Some("/v1/customers/c1/users"),
            "/v1/customers/c1/users?size=10",
            Some("curl/8.0"),
        );
        assert_eq!(t.host(), Some("api.partnercenter.microsoft.com"));
        assert_eq!(t.path(), Some("/v1/customers/c1/users"));
        assert_eq!(t.target(), "/v1/customers/c1/users?size=10");
        assert_eq!(t.user_agent(), Some("curl/8.0"));
        let t = Texts::new(None, Some(""), "/", None);
        assert_eq!(t.host(), None);
        assert_eq!(t.path(), Some(""));
        assert_eq!(t.target(), "/");
        assert_eq!(t.user_agent(), None);
        assert_eq!(Texts::default().target(), "");
    }
}
