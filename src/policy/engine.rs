//! Evaluation: the first enforcing rule that matches, in file order, decides.
//!
//! All path patterns go into one index ([`super::index`]: a tree of
//! template segments, and a `RegexSet` for the rest), so a request is
//! matched against every rule's path in one pass and only the candidates
//! are looked at further: a decision costs about the same with 10 rules as
//! with 10,000.
//!
//! A rule that names regions needs the tenant's region. The directory
//! answers for listed tenants and hosts; for a tenant it does not list,
//! region discovery may know it ([`Regions::discovered`]); when it does not
//! yet, evaluation stops at that rule with [`Evaluation::NeedRegion`], as
//! it stops for a body, and [`RuleSet::resume`] goes on from there once
//! the answer is known. Rules without regions never wait for a lookup.
//!
//! Report-only rules do not end the evaluation: the first one that matches
//! is recorded as "would have", and evaluation goes on to the first
//! enforcing match. Otherwise adding a report-only rule could switch off a
//! later enforcing rule, and the policy would fail open.

use http::Method;
use regex::Regex;

use super::capture::Capture;
use super::index::{Candidates, Index};
use super::pattern::{segments, with_segments, PathPattern, PatternError, Segments};
use super::rule::{HeaderTest, Mode, Rule, TenantSource};
use crate::ascii::eq_ignore_case;
use crate::head::{text, Fields};
use crate::tenant::{Region, RegionSource, TenantId};

/// The parts of a request the policy looks at, already canonical.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a Method,
    /// The canonical host (lowercase, no port), if any.
    pub host: Option<&'a str>,
    /// The canonical path.
    pub path: &'a str,
    /// The query, as sent.
    pub query: Option<&'a str>,
    /// The request header fields.
    pub headers: Fields<'a>,
    /// What the bearer token says of the tenant, decoded by the caller when
    /// any rule asks for it ([`RuleSet::needs_bearer_tid`]).
    pub bearer_tid: BearerTid,
}

/// What a request's bearer token says of its tenant. An unreadable token
/// matters only to the rules that take the tenant from it (`jwt:tid`):
/// they cannot judge the request and refuse it; every other rule, and a
/// request no such rule matches, goes on as if there were no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BearerTid {
    /// No bearer token, or a JWT without a `tid` claim.
    #[default]
    Absent,
    /// The token's `tid`.
    Tid(TenantId),
    /// An opaque (non-JWT) token, or a `tid` that is malformed or repeated.
    Unreadable,
}

impl BearerTid {
    /// Reads an `Authorization` value.
    pub fn of(authorization: Option<&str>) -> BearerTid {
        match authorization.map(crate::tenant::bearer_tid) {
            None | Some(Ok(None)) => BearerTid::Absent,
            Some(Ok(Some(t))) => BearerTid::Tid(t),
            Some(Err(_)) => BearerTid::Unreadable,
        }
    }
}

/// Answers questions about a JSON body.
pub trait JsonFields {
    /// Whether the object path `path` exists.
    fn has(&self, path: &[String]) -> bool;
}

/// What the caller knows about the request body.
#[derive(Clone, Copy)]
pub enum BodyView<'a> {
    /// Not read (yet).
    NotRead,
    /// Read and parsed as JSON.
    Json(&'a (dyn JsonFields + Sync)),
    /// Read, but too large, not JSON, or not valid JSON.
    Unreadable,
}

/// The tenant and region a rule judged the request by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The tenant id, if any source named one.
    pub tenant: Option<TenantId>,
    /// Which source named it, e.g. `path:tenant`.
    pub tenant_source: Option<&'static str>,
    /// The region.
    pub region: Region,
    /// Where the region came from.
    pub region_source: RegionSource,
}

/// A rule that matched.
#[derive(Debug)]
pub struct Matched<'r, A> {
    /// Its position in the rule list.
    pub index: usize,
    /// The rule.
    pub rule: &'r Rule<A>,
    /// Path captures by name.
    pub captures: Vec<(&'r str, Capture)>,
    /// Tenant and region.
    pub resolved: Resolved,
}

/// The result of evaluating a request.
#[derive(Debug)]
pub struct Decision<'r, A> {
    /// The enforcing rule that decides; `None` forwards the request.
    pub enforced: Option<Matched<'r, A>>,
    /// The first report-only rule that matched (what would have happened).
    pub report_only: Option<Matched<'r, A>>,
}

/// What evaluation needs or concludes.
#[derive(Debug)]
// Returned once per request and never stored: boxing would only add an
// allocation to the hot path.
#[allow(clippy::large_enum_variant)]
pub enum Evaluation<'r, A> {
    /// Decided.
    Decided(Decision<'r, A>),
    /// A candidate rule has a body condition: read the body (bounded) and
    /// go on with [`RuleSet::resume`], which continues where this stopped.
    NeedBody(Resume<'r, A>),
    /// A candidate rule names regions and the tenant's is not known yet:
    /// look it up ([`Resume::tenant`]) and go on with [`RuleSet::resume`],
    /// the answer now among [`Regions::discovered`].
    NeedRegion(Resume<'r, A>),
}

/// Where an evaluation stopped: the rule that asked, the candidates after
/// it, and a report-only match found before it.
#[derive(Debug)]
pub struct Resume<'r, A> {
    candidates: Candidates,
    at: At<'r, A>,
    report_only: Option<Matched<'r, A>>,
}

/// What the rule that stopped an evaluation needs.
#[derive(Debug)]
enum At<'r, A> {
    /// The body: everything else about the rule holds (its captures and
    /// tenant resolved).
    Body(Matched<'r, A>),
    /// The region of `tenant`; the rule is judged again from the start.
    Region {
        index: usize,
        rule: &'r Rule<A>,
        tenant: TenantId,
    },
}

impl<'r, A> Resume<'r, A> {
    /// The rule that asked.
    pub fn rule(&self) -> &'r Rule<A> {
        match &self.at {
            At::Body(m) => m.rule,
            At::Region { rule, .. } => rule,
        }
    }

    /// The tenant whose region is needed, when a region is what is needed.
    pub fn tenant(&self) -> Option<TenantId> {
        match &self.at {
            At::Body(_) => None,
            At::Region { tenant, .. } => Some(*tenant),
        }
    }
}

/// Requests the policy cannot judge safely: the proxy refuses them (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A source holds something GUID-like that is no GUID.
    #[error("the tenant id from {from} is malformed")]
    MalformedTenant {
        /// The source, e.g. `path:tenant`.
        from: String,
    },
    /// Two sources name different tenants.
    #[error("the tenant ids from {first} and {second} disagree")]
    ConflictingTenants {
        /// One source.
        first: String,
        /// The other.
        second: String,
    },
    /// A tenant header or query parameter was given more than once.
    #[error("the tenant source {0} was given more than once")]
    RepeatedTenantSource(String),
    /// A body-aware rule could not inspect the body.
    #[error("rule {rule} needs to inspect the request body, which is too large or not valid JSON")]
    UninspectableBody {
        /// The rule id.
        rule: String,
    },
}

/// Why a rule set cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A rule's path pattern is invalid.
    #[error("rule {index}: {source}")]
    Pattern {
        /// The rule's position.
        index: usize,
        /// The problem.
        #[source]
        source: PatternError,
    },
    /// The combined set is too large for the regex engine.
    #[error("the rule set's patterns cannot be combined: {0}")]
    Set(String),
}

/// The outcome of one rule for one request.
enum Step<'r, A> {
    Skip(Why),
    /// Everything but the body condition holds.
    NeedBody(Matched<'r, A>),
    /// The rule names regions; this tenant's is not known yet.
    NeedRegion(TenantId),
    Match(Matched<'r, A>),
}

/// Why a rule did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The rule is off.
    Off,
    /// The path pattern does not match.
    Path,
    /// The method is not one of the rule's.
    Method,
    /// The host is not one of the rule's.
    Host,
    /// A header condition does not hold.
    Header,
    /// The tenant's region is not one of the rule's.
    Region(Resolved),
    /// A report-only rule whose tenant's region could not be discovered.
    RegionUnavailable,
    /// The body lacks the rule's field.
    Body,
}

/// What became of one rule, for `portalgate explain`.
#[derive(Debug)]
pub enum Verdict {
    /// It did not match.
    Skipped(Why),
    /// It matched (a report-only rule lets evaluation go on).
    Matched(Resolved),
    /// It needs the body to decide, and none was given.
    NeedsBody,
    /// It needs this tenant's region, which region discovery does not know.
    NeedsRegion(TenantId),
    /// It refused the request (ambiguous tenant, unreadable body).
    Refused(PolicyError),
    /// An earlier rule decided.
    NotReached,
}

/// One rule's line in a trace.
#[derive(Debug)]
pub struct Trace<'r, A> {
    /// The rule.
    pub rule: &'r Rule<A>,
    /// What became of it.
    pub verdict: Verdict,
}

struct Compiled {
    /// The names of the rule's tenant sources, as records show them.
    source_names: Vec<&'static str>,
    regex: Option<Regex>,
    /// The template's steps, when captures can be read without the regex.
    segments: Option<Segments>,
    names: Vec<String>,
}

/// Rules compiled for evaluation.
pub struct RuleSet<A> {
    rules: Vec<Rule<A>>,
    compiled: Vec<Compiled>,
    index: Index,
    needs_bearer_tid: bool,
}

impl<A> std::fmt::Debug for RuleSet<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl<A> RuleSet<A> {
    /// Compiles `rules`, kept in their order.
    pub fn new(rules: Vec<Rule<A>>) -> Result<RuleSet<A>, BuildError> {
        let mut sources = Vec::with_capacity(rules.len());
        let mut compiled = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            match &rule.matcher.path {
                Some(p) => {
                    let (src, names) = p
                        .to_regex()
                        .map_err(|source| BuildError::Pattern { index, source })?;
                    let regex = Regex::new(&src).map_err(|e| BuildError::Pattern {
                        index,
                        source: PatternError::Regex(e.to_string()),
                    })?;
                    sources.push(src);
                    compiled.push(Compiled {
                        source_names: source_names(rule),
                        regex: Some(regex),
                        segments: Segments::of(p),
                        names,
                    });
                }
                None => {
                    sources.push(String::from("^"));
                    compiled.push(Compiled {
                        source_names: source_names(rule),
                        regex: None,
                        segments: None,
                        names: Vec::new(),
                    });
                }
            }
        }
        let patterns: Vec<Option<&PathPattern>> =
            rules.iter().map(|r| r.matcher.path.as_ref()).collect();
        let index = Index::new(&patterns, &sources).map_err(|e| BuildError::Set(e.to_string()))?;
        let needs_bearer_tid = rules
            .iter()
            .any(|r| r.matcher.tenant_from.contains(&TenantSource::BearerTid));
        Ok(RuleSet {
            rules,
            compiled,
            index,
            needs_bearer_tid,
        })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule<A>] {
        &self.rules
    }

    /// Whether any rule reads the bearer token's `tid`.
    pub fn needs_bearer_tid(&self) -> bool {
        self.needs_bearer_tid
    }

    /// Evaluates a request. `Err` means the request cannot be judged safely.
    pub fn evaluate<'r>(
        &'r self,
        req: &RequestView<'_>,
        body: BodyView<'_>,
        regions: Regions<'_>,
    ) -> Result<Evaluation<'r, A>, PolicyError> {
        with_segments(req.path, |segs| {
            let candidates = self.index.candidates_of(req.path, segs);
            self.run(candidates, 0, None, req, segs, body, regions)
        })
    }

    /// Goes on with an evaluation that stopped for the body, now that
    /// `body` tells what it holds: the rule that asked is judged on it, then
    /// the candidates after it. Nothing before it is evaluated again.
    pub fn resume<'r>(
        &'r self,
        pending: Resume<'r, A>,
        req: &RequestView<'_>,
        body: BodyView<'_>,
        regions: Regions<'_>,
    ) -> Result<Evaluation<'r, A>, PolicyError> {
        let Resume {
            candidates,
            at,
            mut report_only,
        } = pending;
        let asked = match at {
            At::Region { index, .. } => {
                return with_segments(req.path, |segs| {
                    self.run(candidates, index, report_only, req, segs, body, regions)
                });
            }
            At::Body(asked) => asked,
        };
        let next = asked.index + 1;
        match body_holds(asked.rule, body)? {
            None => {
                return Ok(Evaluation::NeedBody(Resume {
                    candidates,
                    at: At::Body(asked),
                    report_only,
                }))
            }
            Some(false) => {}
            Some(true) if asked.rule.mode == Mode::ReportOnly => {
                report_only.get_or_insert(asked);
            }
            Some(true) => {
                return Ok(Evaluation::Decided(Decision {
                    enforced: Some(asked),
                    report_only,
                }))
            }
        }
        with_segments(req.path, |segs| {
            self.run(candidates, next, report_only, req, segs, body, regions)
        })
    }

    /// Tries the candidates from rule `from` on, in order.
    #[allow(clippy::too_many_arguments)]
    fn run<'r>(
        &'r self,
        candidates: Candidates,
        from: usize,
        mut report_only: Option<Matched<'r, A>>,
        req: &RequestView<'_>,
        segs: &[&str],
        body: BodyView<'_>,
        regions: Regions<'_>,
    ) -> Result<Evaluation<'r, A>, PolicyError> {
        // By position: a return below takes `candidates` along.
        for pos in 0..candidates.len() {
            let Some(index) = candidates.get(pos).filter(|&i| i >= from) else {
                continue;
            };
            let matched = match self.step(index, req, segs, body, regions)? {
                Step::Skip(_) => continue,
                Step::NeedBody(asked) => {
                    return Ok(Evaluation::NeedBody(Resume {
                        candidates,
                        at: At::Body(asked),
                        report_only,
                    }))
                }
                Step::NeedRegion(tenant) => {
                    return Ok(Evaluation::NeedRegion(Resume {
                        candidates,
                        at: At::Region {
                            index,
                            rule: &self.rules[index],
                            tenant,
                        },
                        report_only,
                    }))
                }
                Step::Match(m) => m,
            };
            if matched.rule.mode == Mode::ReportOnly {
                report_only.get_or_insert(matched);
                continue;
            }
            return Ok(Evaluation::Decided(Decision {
                enforced: Some(matched),
                report_only,
            }));
        }
        Ok(Evaluation::Decided(Decision {
            enforced: None,
            report_only,
        }))
    }

    /// Every rule with the reason it matched or not, for `portalgate
    /// explain`. Uses the same per-rule step as [`RuleSet::evaluate`];
    /// rules after the deciding one are marked as not reached.
    pub fn trace<'r>(
        &'r self,
        req: &RequestView<'_>,
        body: BodyView<'_>,
        regions: Regions<'_>,
    ) -> Vec<Trace<'r, A>> {
        let mut segs = Vec::with_capacity(16);
        segments(req.path, &mut segs);
        let candidates = self.index.candidates_of(req.path, &segs);
        let mut decided = false;
        let mut out = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let verdict = if decided {
                Verdict::NotReached
            } else if !candidates.contains(index) {
                Verdict::Skipped(Why::Path)
            } else {
                match self.step(index, req, &segs, body, regions) {
                    Err(e) => {
                        decided = true;
                        Verdict::Refused(e)
                    }
                    Ok(Step::Skip(why)) => Verdict::Skipped(why),
                    Ok(Step::NeedBody(_)) => {
                        decided = true;
                        Verdict::NeedsBody
                    }
                    Ok(Step::NeedRegion(tenant)) => {
                        decided = true;
                        Verdict::NeedsRegion(tenant)
                    }
                    Ok(Step::Match(m)) => {
                        decided = m.rule.mode == Mode::Enforce;
                        Verdict::Matched(m.resolved)
                    }
                }
            };
            out.push(Trace { rule, verdict });
        }
        out
    }

    /// One rule against one request whose path the rule's pattern matched.
    fn step<'r>(
        &'r self,
        index: usize,
        req: &RequestView<'_>,
        segs: &[&str],
        body: BodyView<'_>,
        regions: Regions<'_>,
    ) -> Result<Step<'r, A>, PolicyError> {
        let rule = &self.rules[index];
        let m = &rule.matcher;
        if rule.mode == Mode::Off {
            return Ok(Step::Skip(Why::Off));
        }
        // Methods compare case-insensitively, as ASP.NET's router does:
        // `patch` is PATCH to the backend.
        if !(m.methods.is_empty()
            || m.methods
                .iter()
                .any(|x| eq_ignore_case(x.as_str().as_bytes(), req.method.as_str().as_bytes())))
        {
            return Ok(Step::Skip(Why::Method));
        }
        if !(m.hosts.is_empty()
            || req
                .host
                .is_some_and(|h| m.hosts.iter().any(|p| host_matches(p, h))))
        {
            return Ok(Step::Skip(Why::Host));
        }
        if !m
            .headers
            .iter()
            .all(|c| header_holds(req.headers, &c.name, &c.test))
        {
            return Ok(Step::Skip(Why::Header));
        }
        let captures = self.captures(index, req.path, segs);
        let names = &self.compiled[index].source_names;
        let (resolved, unknown) = resolve(&m.tenant_from, names, &captures, req, regions)?;
        if !m.regions.is_empty() {
            match unknown {
                Some((_, true)) if rule.mode == Mode::ReportOnly => {
                    return Ok(Step::Skip(Why::RegionUnavailable))
                }
                Some((tenant, _)) => return Ok(Step::NeedRegion(tenant)),
                None => {}
            }
            if !m.regions.contains(&resolved.region) {
                return Ok(Step::Skip(Why::Region(resolved)));
            }
        }
        let matched = Matched {
            index,
            rule,
            captures,
            resolved,
        };
        Ok(match body_holds(rule, body)? {
            None => Step::NeedBody(matched),
            Some(false) => Step::Skip(Why::Body),
            Some(true) => Step::Match(matched),
        })
    }

    fn captures<'r>(&'r self, index: usize, path: &str, segs: &[&str]) -> Vec<(&'r str, Capture)> {
        let c = &self.compiled[index];
        let (Some(re), false) = (&c.regex, c.names.is_empty()) else {
            return Vec::new();
        };
        if let Some(segments) = &c.segments {
            let mut out = Vec::with_capacity(c.names.len());
            let mut names = c.names.iter();
            let push = |v| {
                if let Some(n) = names.next() {
                    out.push((n.as_str(), Capture::new(v)));
                }
            };
            // A rule the index's tree holds matched there segment by
            // segment: its captures are at their positions.
            let all = if self.index.holds(index) {
                segments.captures_of_match(segs, push);
                Some(())
            } else {
                segments.captures_with(segs, push)
            };
            if all.is_some() {
                return out;
            }
        }
        let Some(caps) = re.captures(path) else {
            return Vec::new();
        };
        c.names
            .iter()
            .filter_map(|n| caps.name(n).map(|m| (n.as_str(), Capture::new(m.as_str()))))
            .collect()
    }
}

fn source_names<A>(rule: &Rule<A>) -> Vec<&'static str> {
    rule.matcher
        .tenant_from
        .iter()
        .map(|s| crate::interned::intern(&s.describe()))
        .collect()
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => pattern == host,
    }
}

/// Whether `rule`'s body condition holds: `Some(true)` also for a rule
/// without one, `None` when the body has not been read.
fn body_holds<A>(rule: &Rule<A>, body: BodyView<'_>) -> Result<Option<bool>, PolicyError> {
    let Some(cond) = &rule.matcher.body else {
        return Ok(Some(true));
    };
    match body {
        BodyView::NotRead => Ok(None),
        BodyView::Unreadable => Err(PolicyError::UninspectableBody {
            rule: rule.id.clone(),
        }),
        BodyView::Json(j) => Ok(Some(j.has(&cond.json_field_present))),
    }
}

fn header_holds(headers: Fields<'_>, name: &http::HeaderName, test: &HeaderTest) -> bool {
    let mut values = headers.get_all(name);
    match test {
        HeaderTest::Present => values.next().is_some(),
        HeaderTest::Absent => values.next().is_none(),
        HeaderTest::Equals(want) => {
            values.any(|v| text(v).is_some_and(|s| s.trim().eq_ignore_ascii_case(want)))
        }
        HeaderTest::Matches(re) => values.any(|v| text(v).is_some_and(|s| re.is_match(s))),
    }
}

mod resolve;
#[cfg(test)]
mod tests;

use resolve::resolve;
pub use resolve::{Discovered, Learned, Regions};
