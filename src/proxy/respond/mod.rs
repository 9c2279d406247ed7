//! Answers the policy gives instead of forwarding: explanations, redirects
//! and denials, negotiated by `Accept` (JSON, HTML, plain text) and
//! `Accept-Language` (English, German, French).
//!
//! Explanations for API clients are RFC 9457 problem details, or Partner
//! Center's own error body `{code, description, data, source}` where the
//! rule asks for it and the client did not ask for problem details
//! explicitly. HTML pages are self-contained (no external assets) and show
//! the portals and docs as links. Every such response carries the request id
//! and the decision id, and echoes `MS-RequestId` / `MS-CorrelationId`.
//!
//! The bodies are rendered once per configuration ([`Answers::compile`]),
//! for every rule, format and language, with holes where the request's
//! values go (request id, decision id, region, redirect target); an
//! answer holds its compiled body, and the holes are filled as it is
//! written ([`Body::Holes`]). A redirect target without
//! placeholders is written in when the bodies are compiled, and the fields
//! every answer of a rule, format and language sends are compiled with
//! them ([`Preset`]). The renderers below are the only place the bodies
//! are written.

pub mod messages;

use std::borrow::Cow;

use http::header::HeaderValue;
use http::{Method, StatusCode};
use serde_json::json;

use super::answer::template::{self, escape, Hole, Template};
use super::answer::{Answer, Body, Preset};
use super::negotiate::{Format, Prefs};
use super::request_id::Id;
use crate::policy::{Action, DocLink, JsonFormat, Matched, Portal, RuleSet};
use messages::{labels, language, texts, Lang};

/// What a policy answer needs from the request.
pub struct Ctx<'a> {
    /// The method (it chooses the redirect status).
    pub method: &'a Method,
    /// `Accept`.
    pub accept: Option<&'a str>,
    /// `Accept-Language`.
    pub accept_language: Option<&'a str>,
    /// The request id.
    pub request_id: &'a Id,
    /// The decision id.
    pub decision_id: &'a Id,
    /// Partner Center's request header, echoed back.
    pub ms_request_id: Option<&'a [u8]>,
    /// Partner Center's correlation header, echoed back.
    pub ms_correlation_id: Option<&'a [u8]>,
}

/// The body variants an answer is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// RFC 9457 problem details (explanations, denials) or the redirect JSON.
    Json,
    /// Partner Center's error body (explanations whose rule asks for it).
    PartnerCenter,
    /// An HTML page.
    Html,
    /// Plain text.
    Text,
}

const VARIANTS: [Variant; 4] = [
    Variant::Json,
    Variant::PartnerCenter,
    Variant::Html,
    Variant::Text,
];
const LANGS: [Lang; 3] = [Lang::En, Lang::De, Lang::Fr];

/// The compiled answers of one rule.
struct RuleAnswers {
    /// The fixed fields (`Content-Type`, `X-Portalgate-Rule`, caching,
    /// `Content-Language`, a fixed `Location`) and the body, by variant
    /// and language.
    bodies: Vec<(Preset, Template)>,
    /// A redirect whose target has no placeholders: the target is written
    /// into the bodies and (when it is a valid field value) into the
    /// presets as `Location` when they are compiled, so nothing is filled
    /// per request.
    fixed: bool,
}

impl RuleAnswers {
    fn body(&self, variant: Variant, lang: Lang) -> Option<&(Preset, Template)> {
        let v = VARIANTS.iter().position(|x| *x == variant)?;
        let l = LANGS.iter().position(|x| *x == lang)?;
        self.bodies.get(v * LANGS.len() + l)
    }
}

/// Every rule's answers, compiled for one configuration.
pub struct Answers {
    rules: Vec<RuleAnswers>,
    /// The fields of an answer for a rule not compiled here (never, for
    /// the rules of the configuration it was compiled for).
    fallback: Preset,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl Answers {
    /// Renders every rule's bodies with holes.
    pub fn compile(rules: &RuleSet<Action>) -> Answers {
        let rules = rules
            .rules()
            .iter()
            .map(|rule| {
                // `X-Portalgate-Rule`, when the id is a valid header value.
                let rule_header = HeaderValue::from_str(&rule.id).ok();
                let fixed = fixed_target(&rule.action);
                let location = fixed.filter(|t| valid_field(t)).map(str::as_bytes);
                let mut bodies = Vec::with_capacity(VARIANTS.len() * LANGS.len());
                for variant in VARIANTS {
                    for lang in LANGS {
                        let (content_type, body) = render(&rule.id, &rule.action, variant, lang);
                        let preset = preset(content_type, rule_header.as_ref(), lang, location);
                        bodies.push((preset, Template::parse(&body, escaper(variant))));
                    }
                }
                RuleAnswers {
                    bodies,
                    fixed: fixed.is_some(),
                }
            })
            .collect();
        Answers {
            rules,
            fallback: preset("text/plain; charset=utf-8", None, Lang::En, None),
        }
    }

    /// The answer for an enforced rule (never called for `allow`).
    pub fn answer<'j>(&'j self, m: &Matched<'j, Action>, ctx: &Ctx<'_>) -> Answer<'j> {
        let lang = language(ctx.accept_language);
        let prefs = Prefs::of(ctx.accept);
        let format = prefs.format();
        let compiled = self.rules.get(m.index);
        let fixed = compiled.is_some_and(|c| c.fixed);
        let (status, variant, location) = match &m.rule.action {
            Action::Explain { json, status, .. } => {
                let variant = match format {
                    Format::Json
                        if *json == JsonFormat::PartnerCenter && !prefs.problem_asked() =>
                    {
                        Variant::PartnerCenter
                    }
                    f => variant_of(f),
                };
                (*status, variant, None)
            }
            Action::Redirect {
                location, status, ..
            } => {
                // 303 sends browsers on with GET; 307 keeps other methods and bodies.
                let status = status.unwrap_or(match *ctx.method {
                    Method::GET | Method::HEAD | Method::POST => StatusCode::SEE_OTHER,
                    _ => StatusCode::TEMPORARY_REDIRECT,
                });
                // A fixed target is in the bodies and the preset already.
                let location = (!fixed).then(|| fill(location, m));
                (status, variant_of(format), location)
            }
            Action::Deny { status } => (*status, variant_of(format), None),
            Action::Allow => (StatusCode::INTERNAL_SERVER_ERROR, variant_of(format), None),
        };
        // Filled when written: straight into the pass-through codec's
        // output, or into hyper's response.
        let (preset, body) = match compiled.and_then(|c| c.body(variant, lang)) {
            Some((preset, template)) => (
                preset,
                Body::Holes {
                    template,
                    region: m.resolved.region.as_str(),
                    target: location.clone().unwrap_or_default(),
                },
            ),
            None => (&self.fallback, Body::Bytes(Vec::new())),
        };
        // Ids are held inline (no allocation for the ones made here).
        let ids = (ctx.request_id.clone(), ctx.decision_id.clone());
        let mut a = Answer::preset(status, preset, body, ids);
        match location.filter(|t| valid_field(t)) {
            Some(Cow::Borrowed(target)) => a.field("location", target.as_bytes()),
            Some(Cow::Owned(target)) => a.field("location", target.into_bytes()),
            None => {}
        }
        if let Some(v) = ctx.ms_request_id {
            a.field("ms-requestid", v.to_vec());
        }
        if let Some(v) = ctx.ms_correlation_id {
            a.field("ms-correlationid", v.to_vec());
        }
        a
    }
}

/// The fields every answer in `content_type` and `lang` sends, with a
/// redirect's `location` when it is the same for every request.
fn preset(
    content_type: &str,
    rule: Option<&HeaderValue>,
    lang: Lang,
    location: Option<&[u8]>,
) -> Preset {
    let mut fields: Vec<(&'static str, Box<[u8]>)> =
        vec![("content-type", content_type.as_bytes().into())];
    if let Some(rule) = rule {
        fields.push(("x-portalgate-rule", rule.as_bytes().into()));
    }
    fields.extend([
        ("cache-control", b"no-store"[..].into()),
        ("vary", b"Accept, Accept-Language"[..].into()),
        ("content-language", lang.tag().as_bytes().into()),
    ]);
    if let Some(location) = location {
        fields.push(("location", location.into()));
    }
    Preset::new(fields)
}

/// What `HeaderValue` takes: visible ASCII, space and tab.
fn valid_field(t: &str) -> bool {
    t.bytes().all(|b| b == b'\t' || (b' '..0x7f).contains(&b))
}

/// A redirect's target when it has no placeholders to fill.
fn fixed_target(action: &Action) -> Option<&str> {
    match action {
        Action::Redirect { location, .. } if !location.contains('{') => Some(location),
        _ => None,
    }
}

fn variant_of(format: Format) -> Variant {
    match format {
        Format::Json => Variant::Json,
        Format::Html => Variant::Html,
        Format::Text => Variant::Text,
    }
}

/// How a value is escaped where a body's hole is.
fn escaper(variant: Variant) -> template::Escape {
    match variant {
        Variant::Json | Variant::PartnerCenter => template::Escape::Json,
        Variant::Html => template::Escape::Html,
        Variant::Text => template::Escape::None,
    }
}

/// The body of `action` in `variant` and `lang`, with [`Hole`] markers
/// where the request's values go.
fn render(rule: &str, action: &Action, variant: Variant, lang: Lang) -> (&'static str, String) {
    let (rid, did) = (Hole::RequestId.marker(), Hole::DecisionId.marker());
    match action {
        Action::Explain {
            feature,
            portals,
            docs,
            status,
            messages,
            ..
        } => explain(
            &Explanation {
                rule,
                feature,
                portals,
                docs,
                status: *status,
                messages: messages.get(lang.tag()).map(String::as_str),
            },
            variant,
            lang,
        ),
        Action::Redirect { .. } => {
            let target = fixed_target(action).unwrap_or(Hole::Target.marker());
            redirect(target, variant, lang, rid, did, rule)
        }
        Action::Deny { status } => deny(rule, *status, variant, rid, did),
        Action::Allow => deny(rule, StatusCode::INTERNAL_SERVER_ERROR, variant, rid, did),
    }
}

/// What an explanation says.
struct Explanation<'a> {
    rule: &'a str,
    feature: &'a str,
    portals: &'a [Portal],
    docs: &'a [DocLink],
    status: StatusCode,
    messages: Option<&'a str>,
}

fn explain(e: &Explanation<'_>, variant: Variant, lang: Lang) -> (&'static str, String) {
    let names: Vec<&str> = e.portals.iter().map(|p| p.name.as_str()).collect();
    let t = texts(e.feature, &names, lang, e.messages);
    let l = labels(lang);
    let (rid, did) = (Hole::RequestId.marker(), Hole::DecisionId.marker());
    let (portals, docs) = (e.portals, e.docs);
    match variant {
        Variant::PartnerCenter => {
            let mut data: Vec<String> = portals
                .iter()
                .map(|p| format!("{}: {}", p.name, p.url))
                .collect();
            data.extend(docs.iter().map(|d| format!("{}: {}", d.title, d.url)));
            let body = json!({
                "code": "FeatureUnavailableInRegion",
                "description": format!("{}. {}", t.title, t.detail),
                "data": data,
                "source": "portalgate",
            });
            ("application/json; charset=utf-8", body.to_string() + "\n")
        }
        Variant::Json => {
            let body = json!({
                "type": format!("urn:portalgate:feature-unavailable:{}", e.feature),
                "title": t.title,
                "status": e.status.as_u16(),
                "detail": t.detail,
                "region": Hole::Region.marker(),
                "portal": portals.first().map(|p| json!({"name": p.name, "url": p.url})),
                "portals": portals.iter().map(|p| json!({"name": p.name, "url": p.url})).collect::<Vec<_>>(),
                "docs": docs.iter().map(|d| json!({"title": d.title, "url": d.url})).collect::<Vec<_>>(),
                "rule": e.rule,
                "decision_id": did,
                "request_id": rid,
            });
            ("application/problem+json", body.to_string() + "\n")
        }
        Variant::Html => {
            let portal_items: String = portals
                .iter()
                .map(|p| {
                    format!(
                        "<li><a href=\"{}\">{} {}</a></li>",
                        escape(&p.url),
                        escape(l.go_to),
                        escape(&p.name)
                    )
                })
                .collect();
            let doc_items: String = docs
                .iter()
                .map(|d| {
                    format!(
                        "<li><a href=\"{}\">{}</a></li>",
                        escape(&d.url),
                        escape(&d.title)
                    )
                })
                .collect();
            let docs_section = if docs.is_empty() {
                String::new()
            } else {
                format!("<h2>{}</h2><ul>{doc_items}</ul>", escape(l.docs))
            };
            let page = format!(
                "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:40rem;\
                 margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}}a{{color:#0050a0}}\
                 small{{color:#555}}</style></head>\n<body><main><h1>{title}</h1><p>{detail}</p>\
                 <ul>{portal_items}</ul>{docs_section}<p><small>{rl}: <code>{rid}</code> · {dl}: \
                 <code>{did}</code></small></p></main></body></html>\n",
                lang = lang.tag(),
                title = escape(&t.title),
                detail = escape(&t.detail),
                rl = escape(l.request_id),
                dl = escape(l.decision_id),
            );
            ("text/html; charset=utf-8", page)
        }
        Variant::Text => {
            let mut s = format!("{}\n{}\n", t.title, t.detail);
            for p in portals {
                s.push_str(&format!("{} {}: {}\n", l.go_to, p.name, p.url));
            }
            for d in docs {
                s.push_str(&format!("{}: {} {}\n", l.docs, d.title, d.url));
            }
            s.push_str(&format!(
                "{}: {rid}\n{}: {did}\n",
                l.request_id, l.decision_id
            ));
            ("text/plain; charset=utf-8", s)
        }
    }
}

/// `{name}` replaced by the capture (or `{tenant}` by the tenant id), each
/// value percent-encoded except unreserved characters.
fn fill<'t>(template: &'t str, m: &Matched<'_, Action>) -> Cow<'t, str> {
    if !template.as_bytes().contains(&b'{') {
        return Cow::Borrowed(template);
    }
    let mut out = String::with_capacity(template.len() + 36);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return Cow::Owned(out);
        };
        let name = &rest[start + 1..start + end];
        let tenant = (name == "tenant")
            .then(|| m.resolved.tenant.map(|t| t.to_string()))
            .flatten();
        let value: Cow<'_, str> = match tenant {
            Some(t) => Cow::Owned(t),
            None => m
                .captures
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Cow::Borrowed(""), |(_, v)| Cow::Borrowed(v.as_str())),
        };
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn redirect(
    target: &str,
    variant: Variant,
    lang: Lang,
    rid: &str,
    did: &str,
    rule: &str,
) -> (&'static str, String) {
    let l = labels(lang);
    match variant {
        Variant::Html => (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
                 <body><main><p>{} <a href=\"{t}\">{t}</a></p><p><small>{}: <code>{}</code></small></p></main></body></html>\n",
                lang.tag(),
                escape(target),
                escape(l.redirected),
                escape(l.decision_id),
                escape(did),
                t = escape(target),
            ),
        ),
        Variant::Json | Variant::PartnerCenter => (
            "application/json; charset=utf-8",
            json!({"location": target, "rule": rule, "decision_id": did, "request_id": rid}).to_string() + "\n",
        ),
        Variant::Text => ("text/plain; charset=utf-8", format!("{} {target}\n", l.redirected)),
    }
}

fn deny(
    rule: &str,
    status: StatusCode,
    variant: Variant,
    rid: &str,
    did: &str,
) -> (&'static str, String) {
    let title = status.canonical_reason().unwrap_or("Denied");
    match variant {
        Variant::Json | Variant::PartnerCenter => (
            "application/problem+json",
            json!({
                "type": "about:blank",
                "title": title,
                "status": status.as_u16(),
                "detail": format!("denied by rule {rule}"),
                "rule": rule,
                "decision_id": did,
                "request_id": rid,
            })
            .to_string()
                + "\n",
        ),
        Variant::Html => (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {t}</title></head>\
                 <body><main><h1>{code} {t}</h1><p>Denied by rule <code>{}</code>.</p>\
                 <p><small>Decision id: <code>{}</code></small></p></main></body></html>\n",
                escape(rule),
                escape(did),
                code = status.as_u16(),
                t = escape(title),
            ),
        ),
        Variant::Text => (
            "text/plain; charset=utf-8",
            format!("{} {title}\ndenied by rule {rule}\ndecision id: {did}\n", status.as_u16()),
        ),
    }
}

#[cfg(test)]
mod tests;
