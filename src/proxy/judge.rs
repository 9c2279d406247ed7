//! The one judgement of a request: from a [`HeadView`] to a [`Plan`].
//!
//! [`Judge::decide`] runs intake (limits, framing, `Host`), canonicalises
//! the path, resolves tenant and region and evaluates the rules, once, and
//! says what to do: forward (with the rewrite of the head), answer (the
//! rendered policy answer), reject (a [`ProxyError`]), read the body first
//! (a body-aware rule asked; [`Judge::resume`] goes on from there with the
//! body), or look up the tenant's region first (a rule names regions and
//! region discovery does not know the tenant yet; [`Judge::settle`] makes
//! the lookups and goes on). Both codecs execute the plan, and `portalgate
//! explain` shows it; the [`Facts`] it leaves are what the accounting
//! records.

use std::borrow::Cow;
use std::sync::Arc;

use http::header;

use super::answer::Answer;
use super::discover::{Discoverer, Lookup, Seen};
use super::error::ProxyError;
use super::intake::{self, Checked};
use super::request_id::Id;
use super::respond::{Answers, Ctx};
use super::ConnInfo;
use crate::canonical::{canonical_host, CanonicalPath};
use crate::config::{Config, Forwarding, Limits, OnFailure};
use crate::discovery::LookupError;
use crate::head::{text, HeadView};
use crate::policy::{
    Action, BearerTid, BodyView, Decision, Evaluation, Matched, Mode, PolicyError, Regions,
    RequestView, Resume, RuleSet,
};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::record::Texts;
use crate::tenant::{Directory, RegionSource, TenantId};

/// The most region lookups one request may wait for (one per tenant it
/// names to rules that need a region); more is refused.
const MAX_LOOKUPS: usize = 4;
use crate::upstream::headers::{via_token, Hop, RequestRewrite};

/// Everything a judgement needs, built once per configuration.
#[derive(Debug)]
pub struct Judge {
    limits: Limits,
    forwarding: Forwarding,
    /// The upstream's authority, sent as `Host` unless the client's is kept.
    upstream_authority: String,
    preserve_host: bool,
    rules: Arc<RuleSet<Action>>,
    directory: Arc<Directory>,
    discovery: Option<Discoverer>,
    max_inspect: usize,
    answers: Answers,
}

/// What the judgement of one request found.
#[derive(Debug)]
pub struct Judgement<'j, 'v> {
    /// The request id (the client's when well-formed).
    pub request_id: Id,
    /// What to do.
    pub plan: Plan<'j, 'v>,
    /// What the accounting records.
    pub facts: Facts<'j>,
}

impl<'j, 'v> Judgement<'j, 'v> {
    /// The judgement of a request no rule decided (or that was refused
    /// before any rule was asked): nothing to record of a rule.
    fn undecided(request_id: Id, plan: Plan<'j, 'v>) -> Judgement<'j, 'v> {
        Judgement {
            request_id,
            plan,
            facts: Facts::default(),
        }
    }
}

/// What to do with a request.
#[derive(Debug)]
// One per request, never stored: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Plan<'j, 'v> {
    /// Send it upstream.
    Forward(Forward<'v>),
    /// Answer it with this policy answer.
    Answer(Answer<'j>),
    /// Refuse it.
    Reject(ProxyError),
    /// A body-aware rule needs the body: read it (bounded by
    /// [`Judge::max_inspect`], JSON only) and [`Judge::resume`]. Boxed:
    /// the rare case should not make every plan larger to move.
    ReadBody(Box<Pending<'j, 'v>>),
    /// A rule names regions and the tenant's is not known: look it up and
    /// go on ([`Judge::settle`]). Boxed, as above.
    Discover(Box<Pending<'j, 'v>>),
}

/// A request to forward and how its head is rewritten.
#[derive(Debug)]
pub struct Forward<'v> {
    /// The canonical path, forwarded as judged.
    pub path: CanonicalPath<'v>,
    /// The query, as sent.
    pub query: Option<&'v str>,
    /// The body's length by `Content-Length`, if it has one.
    pub content_length: Option<u64>,
    /// The `Host` sent upstream.
    pub host: &'v str,
    /// The hop the request arrived on.
    pub hop: Hop<'v>,
    /// This proxy's `Via` token.
    pub via: &'static str,
    /// The protocol of an upgrade request, kept.
    pub upgrade: Option<&'v [u8]>,
    /// The request id sent upstream.
    pub request_id: Id,
}

impl Forward<'_> {
    /// The rewrite of the head towards the upstream.
    pub fn rewrite(&self) -> RequestRewrite<'_> {
        RequestRewrite {
            host: self.host,
            hop: self.hop,
            via: self.via,
            request_id: self.request_id.as_bytes(),
            upgrade: self.upgrade,
        }
    }

    /// The request target sent upstream: the canonical path and the query.
    pub fn target(&self) -> Cow<'_, str> {
        match self.query {
            None => Cow::Borrowed(self.path.as_str()),
            Some(q) => Cow::Owned(format!("{}?{q}", self.path.as_str())),
        }
    }
}

/// A judgement waiting for the body or a tenant's region.
#[derive(Debug)]
pub struct Pending<'j, 'v> {
    request_id: Id,
    resume: Resume<'j, Action>,
    checked: Checked<'v>,
    host: Option<Cow<'v, str>>,
    bearer_tid: BearerTid,
    /// Regions looked up for this request so far.
    learned: Vec<Lookup>,
}

impl Pending<'_, '_> {
    /// The tenant whose region is needed, for [`Plan::Discover`].
    pub fn tenant(&self) -> Option<TenantId> {
        self.resume.tenant()
    }
}

impl<'j, 'v> Pending<'j, 'v> {
    /// The plan of a judgement waiting here: a region lookup when the
    /// rule asked for a tenant's region, else the body.
    fn plan(self) -> Plan<'j, 'v> {
        if self.tenant().is_some() {
            Plan::Discover(Box::new(self))
        } else {
            Plan::ReadBody(Box::new(self))
        }
    }
}

/// What the accounting needs to know of a judgement.
#[derive(Debug, Default)]
pub struct Facts<'j> {
    /// The enforcing rule that decided (an `allow` too).
    pub enforced: Option<Matched<'j, Action>>,
    /// The first report-only rule that matched.
    pub report_only: Option<Matched<'j, Action>>,
    /// The decision id, for a request a rule decided or reported.
    pub decision_id: Option<Id>,
    /// The canonical host and path, with the target and `User-Agent`, for
    /// a request a rule decided or reported (or refused for its region):
    /// what its record keeps, in one allocation made here.
    pub texts: Option<Texts>,
    /// The tenant of a request refused because its region could not be
    /// discovered (no rule matched it, so no match names it).
    pub tenant: Option<TenantId>,
}

impl Judge {
    /// The judge of a validated configuration; region lookups are counted
    /// in `metrics`.
    pub fn new(config: &Config, metrics: &Metrics) -> Judge {
        Judge {
            discovery: config
                .discovery
                .as_ref()
                .map(|d| Discoverer::new(d, metrics)),
            limits: config.limits,
            forwarding: config.forwarding.clone(),
            upstream_authority: config.upstream.authority.as_str().to_owned(),
            preserve_host: config.upstream.preserve_host,
            rules: config.rules.clone(),
            directory: config.directory.clone(),
            max_inspect: config.max_inspect_body_bytes,
            answers: Answers::compile(&config.rules),
        }
    }

    /// Keeps the region discovery cache of `previous` (the configuration
    /// this one replaces) when it would hold the same answers.
    pub fn succeed(&mut self, previous: &Judge) {
        if let (Some(new), Some(old)) = (&mut self.discovery, &previous.discovery) {
            new.adopt(old);
        }
    }

    /// Where the rules find regions, with `seen` (when discovery is on)
    /// for tenants the directory does not list.
    pub fn regions<'a>(&'a self, seen: Option<&'a Seen<'a>>) -> Regions<'a> {
        Regions {
            directory: &self.directory,
            discovered: seen.map(|s| s as &dyn crate::policy::Discovered),
        }
    }

    /// What the rules see of region discovery with `learned` on top.
    pub fn seen<'a>(&'a self, learned: &'a [Lookup]) -> Option<Seen<'a>> {
        self.discovery.as_ref().map(|d| Seen::new(d, learned))
    }

    /// The request limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The most body bytes read for a body-aware rule.
    pub fn max_inspect(&self) -> usize {
        self.max_inspect
    }

    /// The rules.
    pub fn rules(&self) -> &RuleSet<Action> {
        &self.rules
    }

    /// Judges a request head.
    pub fn decide<'j, 'v>(&'j self, view: &HeadView<'v>, conn: &ConnInfo) -> Judgement<'j, 'v>
    where
        'j: 'v,
    {
        // Built where it is returned, not assembled from parts: the
        // judgement is a few hundred bytes, and each move copies them.
        self.evaluate(view, conn, Id::for_request(view.known.request_id))
    }

    /// Makes the region lookups a [`Plan::Discover`] waits for and goes
    /// on with the answers, until the plan is something else; `body` is
    /// what is known of the body so far. A lookup that fails refuses the
    /// request (503, `on_failure = "refuse"`) or judges it in the default
    /// region (`"default"`). Any other plan is returned as it is.
    pub async fn settle<'j, 'v>(
        &'j self,
        mut judgement: Judgement<'j, 'v>,
        view: &HeadView<'v>,
        body: BodyView<'_>,
        conn: &ConnInfo,
    ) -> Judgement<'j, 'v>
    where
        'j: 'v,
    {
        for _ in 0..=MAX_LOOKUPS {
            let Judgement {
                request_id,
                plan: Plan::Discover(mut pending),
                facts,
            } = judgement
            else {
                return judgement;
            };
            let (Some(discovery), Some(tenant), true) = (
                &self.discovery,
                pending.tenant(),
                pending.learned.len() < MAX_LOOKUPS,
            ) else {
                return self.unavailable(request_id, &pending, LookupError::Busy, facts, view);
            };
            // An enforcing rule met a tenant whose lookup already failed.
            if let Some(Lookup::Failed(_, e)) =
                pending.learned.iter().find(|l| l.tenant() == tenant)
            {
                let e = e.clone();
                return self.unavailable(request_id, &pending, e, facts, view);
            }
            let learned = match discovery.lookup(tenant).await {
                Ok(found) => Lookup::Found(
                    tenant,
                    Discoverer::region_of(found),
                    RegionSource::Discovery,
                ),
                Err(e) => match discovery.on_failure() {
                    // A report-only rule asked: it is skipped, and only a
                    // rule that enforces refuses the request.
                    OnFailure::Refuse if pending.resume.rule().mode == Mode::ReportOnly => {
                        Lookup::Failed(tenant, e)
                    }
                    OnFailure::Refuse => {
                        return self.unavailable(request_id, &pending, e, facts, view)
                    }
                    OnFailure::Default => {
                        Lookup::Found(tenant, None, RegionSource::DiscoveryFailed)
                    }
                },
            };
            pending.learned.push(learned);
            judgement = self.resume(pending, view, body, conn);
        }
        judgement
    }

    /// The refusal of a request whose tenant's region is not known.
    fn unavailable<'j, 'v>(
        &'j self,
        request_id: Id,
        pending: &Pending<'j, 'v>,
        error: LookupError,
        mut facts: Facts<'j>,
        view: &HeadView<'_>,
    ) -> Judgement<'j, 'v> {
        facts.texts = Some(texts(
            view,
            pending.host.as_deref(),
            pending.checked.path.as_str(),
        ));
        facts.tenant = pending.tenant();
        Judgement {
            request_id,
            plan: Plan::Reject(ProxyError::RegionUnavailable(error)),
            facts,
        }
    }

    /// Goes on with a judgement that waited for the body or a region;
    /// `body` says what the body holds (or that it could not be read as
    /// JSON, or that it has not been read).
    pub fn resume<'j, 'v>(
        &'j self,
        pending: Box<Pending<'j, 'v>>,
        view: &HeadView<'v>,
        body: BodyView<'_>,
        conn: &ConnInfo,
    ) -> Judgement<'j, 'v>
    where
        'j: 'v,
    {
        let Pending {
            request_id,
            resume,
            checked,
            host,
            bearer_tid,
            learned,
        } = *pending;
        let req = policy_view(view, &checked, host.as_deref(), bearer_tid);
        let seen = self.seen(&learned);
        let evaluation = self
            .rules
            .resume(resume, &req, body, self.regions(seen.as_ref()));
        let plan = match evaluation {
            Err(e) => Plan::Reject(e.into()),
            // The body was given: a rule cannot ask for it again.
            Ok(Evaluation::NeedBody(r)) if !matches!(body, BodyView::NotRead) => Plan::Reject(
                PolicyError::UninspectableBody {
                    rule: r.rule().id.clone(),
                }
                .into(),
            ),
            Ok(Evaluation::NeedBody(resume) | Evaluation::NeedRegion(resume)) => Pending {
                request_id: request_id.clone(),
                resume,
                checked,
                host,
                bearer_tid,
                learned,
            }
            .plan(),
            Ok(Evaluation::Decided(d)) => {
                return self.conclude(d, view, checked, host, conn, request_id)
            }
        };
        Judgement::undecided(request_id, plan)
    }

    fn evaluate<'j, 'v>(
        &'j self,
        view: &HeadView<'v>,
        conn: &ConnInfo,
        request_id: Id,
    ) -> Judgement<'j, 'v>
    where
        'j: 'v,
    {
        let checked = match intake::check(view, &self.limits) {
            Ok(checked) => checked,
            Err(e) => return Judgement::undecided(request_id, Plan::Reject(e)),
        };
        if self.rules.rules().is_empty() {
            let plan = Plan::Forward(self.forward(view, checked, conn, &request_id));
            return Judgement::undecided(request_id, plan);
        }
        let host = checked.host.map(canonical_host);
        let bearer_tid = if self.rules.needs_bearer_tid() {
            BearerTid::of(view.known.authorization[0].and_then(text))
        } else {
            BearerTid::Absent
        };
        let req = policy_view(view, &checked, host.as_deref(), bearer_tid);
        let seen = self.seen(&[]);
        // Matched where it is returned: each move of the evaluation (a
        // few hundred bytes) would copy it.
        match self
            .rules
            .evaluate(&req, BodyView::NotRead, self.regions(seen.as_ref()))
        {
            Err(e) => Judgement::undecided(request_id, Plan::Reject(e.into())),
            Ok(Evaluation::NeedBody(resume) | Evaluation::NeedRegion(resume)) => {
                let plan = Pending {
                    request_id: request_id.clone(),
                    resume,
                    checked,
                    host,
                    bearer_tid,
                    learned: Vec::new(),
                }
                .plan();
                Judgement::undecided(request_id, plan)
            }
            Ok(Evaluation::Decided(d)) => self.conclude(d, view, checked, host, conn, request_id),
        }
    }

    /// The judgement of a decided request, with its facts.
    fn conclude<'j, 'v>(
        &'j self,
        decision: Decision<'j, Action>,
        view: &HeadView<'v>,
        checked: Checked<'v>,
        host: Option<Cow<'v, str>>,
        conn: &ConnInfo,
        request_id: Id,
    ) -> Judgement<'j, 'v>
    where
        'j: 'v,
    {
        let Decision {
            enforced,
            report_only,
        } = decision;
        if enforced.is_none() && report_only.is_none() {
            let plan = Plan::Forward(self.forward(view, checked, conn, &request_id));
            return Judgement::undecided(request_id, plan);
        }
        let decision_id = Id::new();
        let texts = texts(view, host.as_deref(), checked.path.as_str());
        // One literal, built in place: the plan borrows nothing of the
        // match it answers for, so the match moves into the facts after.
        Judgement {
            plan: match &enforced {
                Some(m) if m.rule.action != Action::Allow => {
                    let known = &view.known;
                    let ctx = Ctx {
                        method: view.method,
                        accept: known
                            .accept
                            .and_then(|a| crate::proxy::negotiate::common(a).or_else(|| text(a))),
                        accept_language: known.accept_language.and_then(text),
                        request_id: &request_id,
                        decision_id: &decision_id,
                        ms_request_id: known.ms_request_id,
                        ms_correlation_id: known.ms_correlation_id,
                    };
                    Plan::Answer(self.answers.answer(m, &ctx))
                }
                _ => Plan::Forward(self.forward(view, checked, conn, &request_id)),
            },
            // Only decided requests are recorded; the common forward pays
            // nothing.
            facts: Facts {
                texts: Some(texts),
                enforced,
                report_only,
                decision_id: Some(decision_id),
                tenant: None,
            },
            request_id,
        }
    }

    fn forward<'j, 'v>(
        &'j self,
        view: &HeadView<'v>,
        checked: Checked<'v>,
        conn: &ConnInfo,
        request_id: &Id,
    ) -> Forward<'v>
    where
        'j: 'v,
    {
        let peer = conn.peer.ip();
        let host = match (self.preserve_host, checked.host) {
            (true, Some(h)) => h,
            _ => self.upstream_authority.as_str(),
        };
        // Only an allowed protocol is asked of the backend; any other
        // `Upgrade` (h2c: HTTP/2 that would never be judged) is dropped
        // with the other hop-by-hop fields.
        let upgrade = checked
            .upgrade
            .then(|| view.fields.first(&header::UPGRADE))
            .flatten()
            .filter(|p| self.forwarding.upgrade_allowed(p));
        Forward {
            path: checked.path,
            query: view.query,
            content_length: checked.content_length,
            host,
            hop: Hop {
                peer,
                trusted: self.forwarding.is_trusted(peer),
                proto: if conn.tls { "https" } else { "http" },
                host: checked.host,
            },
            via: via_token(view.version),
            upgrade,
            request_id: request_id.clone(),
        }
    }
}

/// What a record keeps of a request's texts: canonical host and path, the
/// target as received, `User-Agent`.
fn texts(view: &HeadView<'_>, host: Option<&str>, path: &str) -> Texts {
    Texts::new(
        host,
        Some(path),
        view.target,
        view.known.user_agent.and_then(text),
    )
}

/// What the policy reads of a request that passed intake.
fn policy_view<'a>(
    view: &HeadView<'a>,
    checked: &'a Checked<'_>,
    host: Option<&'a str>,
    bearer_tid: BearerTid,
) -> RequestView<'a> {
    RequestView {
        method: view.method,
        host,
        path: checked.folded.as_deref().unwrap_or(checked.path.as_str()),
        query: view.query,
        headers: view.fields,
        bearer_tid,
    }
}

#[cfg(test)]
mod tests;
