//! Rules: what a rule matches and in which mode it runs. The action is a
//! type parameter so this core knows nothing of how responses are rendered.

use http::header::HeaderName;
use http::Method;

use super::pattern::PathPattern;
use crate::tenant::Region;

/// How a rule takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The action is carried out.
    Enforce,
    /// The request is forwarded; what the rule would have done is recorded.
    ReportOnly,
    /// The rule is skipped.
    Off,
}

impl Mode {
    /// A stable name for logs and tools.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::ReportOnly => "report-only",
            Mode::Off => "off",
        }
    }
}

/// Where a rule takes the tenant id from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    /// A path capture, e.g. `{tenant}` in the template.
    Capture(String),
    /// A request header.
    Header(HeaderName),
    /// The first DNS label of the host (`{tenant}.portal.example`).
    Host,
    /// The `tid` claim of the bearer token (the partner's own tenant).
    BearerTid,
    /// A query parameter, by name (compared ASCII-case-insensitively, as
    /// ASP.NET's model binding does; the name may be percent-encoded).
    Query(String),
}

impl TenantSource {
    /// A stable name for logs and tools, e.g. `path:tenant`.
    pub fn describe(&self) -> String {
        match self {
            TenantSource::Capture(n) => format!("path:{n}"),
            TenantSource::Header(h) => format!("header:{h}"),
            TenantSource::Host => "host".into(),
            TenantSource::BearerTid => "jwt:tid".into(),
            TenantSource::Query(n) => format!("query:{n}"),
        }
    }
}

/// A condition on one header.
#[derive(Debug, Clone)]
pub enum HeaderTest {
    /// The header is present.
    Present,
    /// The header is absent.
    Absent,
    /// One of its values equals this (ASCII case-insensitively).
    Equals(String),
    /// One of its values matches this anchored regex.
    Matches(regex::Regex),
}

/// A header condition.
#[derive(Debug, Clone)]
pub struct HeaderCond {
    /// The header.
    pub name: HeaderName,
    /// The test.
    pub test: HeaderTest,
}

/// A condition on the JSON request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCond {
    /// A field (path of object keys) that must be present, e.g.
    /// `["passwordProfile"]`.
    pub json_field_present: Vec<String>,
}

/// Everything a request must satisfy for a rule to match. Empty lists
/// mean "any".
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// Methods.
    pub methods: Vec<Method>,
    /// Canonical hosts; `*.example.de` matches any subdomain.
    pub hosts: Vec<String>,
    /// The path; `None` matches every path.
    pub path: Option<PathPattern>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderCond>,
    /// Regions the request's tenant must be in.
    pub regions: Vec<Region>,
    /// Where to find the tenant id, in order; all present ones must agree.
    pub tenant_from: Vec<TenantSource>,
    /// A body condition; rules with one read the body (bounded).
    pub body: Option<BodyCond>,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule<A> {
    /// Unique id, used in logs, metrics and responses.
    pub id: String,
    /// What the rule is for.
    pub description: String,
    /// How it takes effect.
    pub mode: Mode,
    /// What it matches.
    pub matcher: Matcher,
    /// What it does.
    pub action: A,
}
