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

pub mod messages;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::json;

use super::body::ProxyBody;
use super::local::escape;
use super::negotiate::{negotiate, quality, Format};
use crate::policy::{Action, JsonFormat, Matched};
use messages::{labels, language, texts, Lang};

/// `X-Portalgate-Decision-Id`
pub static DECISION_ID: HeaderName = HeaderName::from_static("x-portalgate-decision-id");
/// `X-Portalgate-Rule`: the id of the rule that answered.
pub static RULE: HeaderName = HeaderName::from_static("x-portalgate-rule");
static MS_REQUEST_ID: HeaderName = HeaderName::from_static("ms-requestid");
static MS_CORRELATION_ID: HeaderName = HeaderName::from_static("ms-correlationid");

/// What a policy answer needs from the request.
pub struct Ctx<'a> {
    /// The method (it chooses the redirect status).
    pub method: &'a Method,
    /// `Accept`.
    pub accept: Option<&'a str>,
    /// `Accept-Language`.
    pub accept_language: Option<&'a str>,
    /// The request id.
    pub request_id: &'a HeaderValue,
    /// The decision id.
    pub decision_id: &'a HeaderValue,
    /// Partner Center's request headers, echoed back.
    pub ms_request_id: Option<&'a HeaderValue>,
    /// Partner Center's correlation header, echoed back.
    pub ms_correlation_id: Option<&'a HeaderValue>,
}

/// The answer for an enforced rule (never called for `allow`).
pub fn answer(m: &Matched<'_, Action>, ctx: &Ctx<'_>) -> Response<ProxyBody> {
    let lang = language(ctx.accept_language);
    let mut resp = match &m.rule.action {
        Action::Explain { .. } => explain(m, ctx, lang),
        Action::Redirect {
            location, status, ..
        } => redirect(m, location, *status, ctx, lang),
        Action::Deny { status } => deny(m, *status, ctx),
        Action::Allow => deny(m, StatusCode::INTERNAL_SERVER_ERROR, ctx),
    };
    let h = resp.headers_mut();
    h.insert(super::X_REQUEST_ID.clone(), ctx.request_id.clone());
    h.insert(DECISION_ID.clone(), ctx.decision_id.clone());
    if let Ok(v) = HeaderValue::from_str(&m.rule.id) {
        h.insert(RULE.clone(), v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Language"),
    );
    h.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    if let Some(v) = ctx.ms_request_id {
        h.insert(MS_REQUEST_ID.clone(), v.clone());
    }
    if let Some(v) = ctx.ms_correlation_id {
        h.insert(MS_CORRELATION_ID.clone(), v.clone());
    }
    resp
}

fn with(status: StatusCode, content_type: &'static str, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::local(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn ids<'a>(ctx: &Ctx<'a>) -> (&'a str, &'a str) {
    (
        ctx.request_id.to_str().unwrap_or(""),
        ctx.decision_id.to_str().unwrap_or(""),
    )
}

fn explain(m: &Matched<'_, Action>, ctx: &Ctx<'_>, lang: Lang) -> Response<ProxyBody> {
    let Action::Explain {
        feature,
        portals,
        docs,
        json,
        status,
        messages,
    } = &m.rule.action
    else {
        return deny(m, StatusCode::FORBIDDEN, ctx);
    };
    let names: Vec<&str> = portals.iter().map(|p| p.name.as_str()).collect();
    let t = texts(
        feature,
        &names,
        lang,
        messages.get(lang.tag()).map(String::as_str),
    );
    let l = labels(lang);
    let (rid, did) = ids(ctx);
    let region = m.resolved.region.as_str();
    match negotiate(ctx.accept) {
        Format::Json => {
            let problem_asked = ctx
                .accept
                .is_some_and(|a| a.to_ascii_lowercase().contains("application/problem+json"))
                && quality(ctx.accept, "application/problem+json")
                    >= quality(ctx.accept, "application/json");
            if *json == JsonFormat::PartnerCenter && !problem_asked {
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
                return with(
                    *status,
                    "application/json; charset=utf-8",
                    body.to_string() + "\n",
                );
            }
            let body = json!({
                "type": format!("urn:portalgate:feature-unavailable:{feature}"),
                "title": t.title,
                "status": status.as_u16(),
                "detail": t.detail,
                "region": region,
                "portal": portals.first().map(|p| json!({"name": p.name, "url": p.url})),
                "portals": portals.iter().map(|p| json!({"name": p.name, "url": p.url})).collect::<Vec<_>>(),
                "docs": docs.iter().map(|d| json!({"title": d.title, "url": d.url})).collect::<Vec<_>>(),
                "rule": m.rule.id,
                "decision_id": did,
                "request_id": rid,
            });
            with(*status, "application/problem+json", body.to_string() + "\n")
        }
        Format::Html => {
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
                rid = escape(rid),
                did = escape(did),
            );
            with(*status, "text/html; charset=utf-8", page)
        }
        Format::Text => {
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
            with(*status, "text/plain; charset=utf-8", s)
        }
    }
}

/// `{name}` replaced by the capture (or `{tenant}` by the tenant id), each
/// value percent-encoded except unreserved characters.
fn fill(template: &str, m: &Matched<'_, Action>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &rest[start + 1..start + end];
        let value = if name == "tenant" {
            m.resolved.tenant.map(|t| t.to_string())
        } else {
            None
        }
        .or_else(|| {
            m.captures
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_default();
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
    out
}

fn redirect(
    m: &Matched<'_, Action>,
    location: &str,
    fixed: Option<StatusCode>,
    ctx: &Ctx<'_>,
    lang: Lang,
) -> Response<ProxyBody> {
    // 303 sends browsers on with GET; 307 keeps other methods and bodies.
    let status = fixed.unwrap_or(match *ctx.method {
        Method::GET | Method::HEAD | Method::POST => StatusCode::SEE_OTHER,
        _ => StatusCode::TEMPORARY_REDIRECT,
    });
    let target = fill(location, m);
    let l = labels(lang);
    let (rid, did) = ids(ctx);
    let mut r = match negotiate(ctx.accept) {
        Format::Html => with(
            status,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
                 <body><main><p>{} <a href=\"{t}\">{t}</a></p><p><small>{}: <code>{}</code></small></p></main></body></html>\n",
                lang.tag(),
                escape(&target),
                escape(l.redirected),
                escape(l.decision_id),
                escape(did),
                t = escape(&target),
            ),
        ),
        Format::Json => with(
            status,
            "application/json; charset=utf-8",
            json!({"location": target, "rule": m.rule.id, "decision_id": did, "request_id": rid}).to_string() + "\n",
        ),
        Format::Text => with(status, "text/plain; charset=utf-8", format!("{} {target}\n", l.redirected)),
    };
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn deny(m: &Matched<'_, Action>, status: StatusCode, ctx: &Ctx<'_>) -> Response<ProxyBody> {
    let (rid, did) = ids(ctx);
    let title = status.canonical_reason().unwrap_or("Denied");
    match negotiate(ctx.accept) {
        Format::Json => with(
            status,
            "application/problem+json",
            json!({
                "type": "about:blank",
                "title": title,
                "status": status.as_u16(),
                "detail": format!("denied by rule {}", m.rule.id),
                "rule": m.rule.id,
                "decision_id": did,
                "request_id": rid,
            })
            .to_string()
                + "\n",
        ),
        Format::Html => with(
            status,
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {t}</title></head>\
                 <body><main><h1>{code} {t}</h1><p>Denied by rule <code>{}</code>.</p>\
                 <p><small>Decision id: <code>{}</code></small></p></main></body></html>\n",
                escape(&m.rule.id),
                escape(did),
                code = status.as_u16(),
                t = escape(title),
            ),
        ),
        Format::Text => with(
            status,
            "text/plain; charset=utf-8",
            format!("{} {title}\ndenied by rule {}\ndecision id: {did}\n", status.as_u16(), m.rule.id),
        ),
    }
}
