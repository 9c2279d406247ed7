//! Validation of portals, docs and rules into the policy's types.

use std::collections::{BTreeMap, HashSet};

use http::{HeaderName, Method, StatusCode};

use super::locate::KeyPath;
use super::raw::{RawAction, RawDoc, RawHeaderCond, RawMatch, RawPortal, RawRule};
use super::validate::Ctx;
use crate::canonical::canonical_host;
use crate::policy::{
    Action, BodyCond, DocLink, HeaderCond, HeaderTest, JsonFormat, Matcher, Mode, PathPattern,
    Portal, Rule, TenantSource,
};
use crate::tenant::Region;

/// Portals and docs from every file, then the rules in order.
#[derive(Default)]
pub struct Parts {
    pub portals: BTreeMap<String, Portal>,
    pub docs: BTreeMap<String, DocLink>,
    pub rules: Vec<Rule<Action>>,
    /// Where each rule was defined: (file index, key path).
    pub origins: Vec<(usize, KeyPath)>,
    ids: HashSet<String>,
}

fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn url_ok(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && u.parse::<http::Uri>().is_ok()
}

/// `[portals.KEY]` and `[docs.KEY]`.
pub fn definitions(
    portals: &BTreeMap<String, RawPortal>,
    docs: &BTreeMap<String, RawDoc>,
    ctx: &mut Ctx<'_>,
    parts: &mut Parts,
) {
    let root = KeyPath::default();
    for (key, p) in portals {
        let path = root.key("portals").key(key);
        let (Some(name), Some(url)) = (&p.name, &p.url) else {
            ctx.error(&path, "a portal needs `name` and `url`");
            continue;
        };
        if !key_ok(key) || !url_ok(url) || parts.portals.contains_key(key) {
            ctx.error(
                &path,
                format!(
                    "portal {key:?}: the key must be unique ([A-Za-z0-9._-]) and the url http(s)"
                ),
            );
            continue;
        }
        parts.portals.insert(
            key.clone(),
            Portal {
                key: key.clone(),
                name: name.clone(),
                url: url.clone(),
            },
        );
    }
    for (key, d) in docs {
        let path = root.key("docs").key(key);
        let (Some(title), Some(url)) = (&d.title, &d.url) else {
            ctx.error(&path, "a doc link needs `title` and `url`");
            continue;
        };
        if !key_ok(key) || !url_ok(url) || parts.docs.contains_key(key) {
            ctx.error(
                &path,
                format!("doc {key:?}: the key must be unique ([A-Za-z0-9._-]) and the url http(s)"),
            );
            continue;
        }
        parts.docs.insert(
            key.clone(),
            DocLink {
                title: title.clone(),
                url: url.clone(),
            },
        );
    }
}

/// `[[rules]]` of one file, appended in order.
pub fn rules(raw: &[RawRule], file: usize, ctx: &mut Ctx<'_>, parts: &mut Parts) {
    for (i, r) in raw.iter().enumerate() {
        let path = KeyPath::default().key("rules").index(i);
        if let Some(rule) = rule(r, &path, ctx, parts) {
            parts.rules.push(rule);
            parts.origins.push((file, path));
        }
    }
}

fn rule(r: &RawRule, path: &KeyPath, ctx: &mut Ctx<'_>, parts: &mut Parts) -> Option<Rule<Action>> {
    let id = match &r.id {
        Some(id) if key_ok(id) => id.clone(),
        Some(id) => {
            ctx.error(
                &path.key("id"),
                format!("{id:?}: use letters, digits, '-', '_' or '.'"),
            );
            return None;
        }
        None => {
            ctx.error(path, "every rule needs an `id`");
            return None;
        }
    };
    if !parts.ids.insert(id.clone()) {
        ctx.error(
            &path.key("id"),
            format!("rule id {id:?} is used by an earlier rule"),
        );
    }
    let mode = match r.mode.as_deref() {
        None | Some("enforce") => Mode::Enforce,
        Some("report-only") => Mode::ReportOnly,
        Some("off") => Mode::Off,
        Some(other) => {
            ctx.error(
                &path.key("mode"),
                format!("{other:?}: use enforce, report-only or off"),
            );
            Mode::Off
        }
    };
    let Some(m) = &r.matcher else {
        ctx.error(path, "every rule needs a [rules.match] table");
        return None;
    };
    let matcher = matcher(m, &path.key("match"), ctx)?;
    let Some(a) = &r.action else {
        ctx.error(path, "every rule needs a [rules.action] table");
        return None;
    };
    let captures = capture_names(&matcher);
    let action = action(a, &path.key("action"), &captures, ctx, parts)?;
    Some(Rule {
        id,
        description: r.description.clone().unwrap_or_default(),
        mode,
        matcher,
        action,
    })
}

fn capture_names(m: &Matcher) -> Vec<String> {
    m.path
        .as_ref()
        .and_then(|p| p.to_regex().ok())
        .map(|(_, names)| names)
        .unwrap_or_default()
}

fn matcher(m: &RawMatch, path: &KeyPath, ctx: &mut Ctx<'_>) -> Option<Matcher> {
    let mut ok = true;
    let mut methods = Vec::new();
    for (i, s) in m.methods.iter().enumerate() {
        match Method::from_bytes(s.to_ascii_uppercase().as_bytes()) {
            Ok(x) => methods.push(x),
            Err(_) => {
                ctx.error(
                    &path.key("methods").index(i),
                    format!("{s:?} is not a method"),
                );
                ok = false;
            }
        }
    }
    let hosts = m
        .hosts
        .iter()
        .map(|h| canonical_host(h).into_owned())
        .collect();
    let pattern = match (&m.path, &m.path_regex) {
        (Some(_), Some(_)) => {
            ctx.error(
                &path.key("path_regex"),
                "use either `path` or `path_regex`, not both",
            );
            ok = false;
            None
        }
        (Some(t), None) => Some((
            "path",
            PathPattern::Template {
                template: t.clone(),
                case_insensitive: m.case_insensitive.unwrap_or(true),
            },
        )),
        (None, Some(r)) => Some(("path_regex", PathPattern::Regex(r.clone()))),
        (None, None) => None,
    };
    let mut captures = Vec::new();
    if let Some((key, p)) = &pattern {
        match p.to_regex() {
            Ok((_, names)) => captures = names,
            Err(e) => {
                ctx.error(&path.key(key), e.to_string());
                ok = false;
            }
        }
    }
    let mut headers = Vec::new();
    for (i, h) in m.headers.iter().enumerate() {
        match header_cond(h, &path.key("headers").index(i), ctx) {
            Some(c) => headers.push(c),
            None => ok = false,
        }
    }
    let mut regions = Vec::new();
    for (i, r) in m.regions.iter().enumerate() {
        if !key_ok(r) {
            ctx.error(
                &path.key("regions").index(i),
                format!("{r:?}: use letters, digits, '-' or '_'"),
            );
            ok = false;
        }
        regions.push(Region::new(r));
    }
    let tenant_from = match &m.tenant_from {
        // By default a `{tenant}` capture names the tenant.
        None if captures.iter().any(|c| c == "tenant") => {
            vec![TenantSource::Capture("tenant".into())]
        }
        None => Vec::new(),
        Some(list) => {
            let mut out = Vec::new();
            for (i, s) in list.iter().enumerate() {
                let p = path.key("tenant_from").index(i);
                let source = match s.split_once(':') {
                    Some(("path", name)) if captures.iter().any(|c| c == name) => {
                        TenantSource::Capture(name.into())
                    }
                    Some(("path", name)) => {
                        ctx.error(&p, format!("the path has no capture {{{name}}}"));
                        ok = false;
                        continue;
                    }
                    Some(("header", name)) => match HeaderName::from_bytes(name.as_bytes()) {
                        Ok(h) => TenantSource::Header(h),
                        Err(_) => {
                            ctx.error(&p, format!("{name:?} is not a header name"));
                            ok = false;
                            continue;
                        }
                    },
                    Some(("query", name))
                        if !name.is_empty()
                            && name.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'$')
                            }) =>
                    {
                        TenantSource::Query(name.to_string())
                    }
                    None if s == "host" => TenantSource::Host,
                    Some(("jwt", "tid")) => TenantSource::BearerTid,
                    _ => {
                        ctx.error(
                            &p,
                            format!(
                                "{s:?}: use path:NAME, header:NAME, query:NAME, host or jwt:tid"
                            ),
                        );
                        ok = false;
                        continue;
                    }
                };
                out.push(source);
            }
            out
        }
    };
    if !regions.is_empty() && tenant_from.is_empty() {
        // Without a tenant source the region comes from the host or the
        // default only; allowed, but say so where it is surely a mistake.
        if captures
            .iter()
            .any(|c| c.contains("tenant") || c.contains("customer"))
        {
            ctx.error(
                &path.key("tenant_from"),
                "the path captures a tenant but no tenant source is set; add tenant_from = [\"path:NAME\"]",
            );
            ok = false;
        }
    }
    let body = match &m.body {
        None => None,
        Some(b) => match &b.json_field_present {
            Some(f) if !f.is_empty() && f.split('.').all(|s| !s.is_empty()) => Some(BodyCond {
                json_field_present: f.split('.').map(str::to_owned).collect(),
            }),
            _ => {
                ctx.error(
                    &path.key("body"),
                    "write json_field_present = \"field\" or \"a.b\"",
                );
                ok = false;
                None
            }
        },
    };
    ok.then(|| Matcher {
        methods,
        hosts,
        path: pattern.map(|(_, p)| p),
        headers,
        regions,
        tenant_from,
        body,
    })
}

fn header_cond(h: &RawHeaderCond, path: &KeyPath, ctx: &mut Ctx<'_>) -> Option<HeaderCond> {
    let Some(name) = h
        .name
        .as_deref()
        .and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok())
    else {
        ctx.error(&path.key("name"), "a valid header `name` is required");
        return None;
    };
    let test = match (h.present, &h.equals, &h.matches) {
        (Some(true), None, None) => HeaderTest::Present,
        (Some(false), None, None) => HeaderTest::Absent,
        (None, Some(v), None) => HeaderTest::Equals(v.clone()),
        (None, None, Some(r)) => match regex::Regex::new(&format!("^(?:{r})$")) {
            Ok(re) => HeaderTest::Matches(re),
            Err(e) => {
                ctx.error(&path.key("matches"), format!("invalid regex: {e}"));
                return None;
            }
        },
        _ => {
            ctx.error(path, "use exactly one of `present`, `equals`, `matches`");
            return None;
        }
    };
    Some(HeaderCond { name, test })
}

fn status(
    raw: Option<i64>,
    allowed: impl Fn(u16) -> bool,
    path: &KeyPath,
    ctx: &mut Ctx<'_>,
) -> Option<Option<StatusCode>> {
    match raw {
        None => Some(None),
        Some(n) => match u16::try_from(n)
            .ok()
            .filter(|n| allowed(*n))
            .and_then(|n| StatusCode::from_u16(n).ok())
        {
            Some(s) => Some(Some(s)),
            None => {
                ctx.error(path, format!("status {n} is not allowed here"));
                None
            }
        },
    }
}

fn action(
    a: &RawAction,
    path: &KeyPath,
    captures: &[String],
    ctx: &mut Ctx<'_>,
    parts: &Parts,
) -> Option<Action> {
    let sp = path.key("status");
    match a.kind.as_deref() {
        Some("allow") => Some(Action::Allow),
        Some("deny") => {
            let status = status(a.status, |n| (400..=599).contains(&n), &sp, ctx)?;
            Some(Action::Deny {
                status: status.unwrap_or(StatusCode::FORBIDDEN),
            })
        }
        Some("redirect") => {
            let status = status(
                a.status,
                |n| matches!(n, 301 | 302 | 303 | 307 | 308),
                &sp,
                ctx,
            )?;
            let Some(location) = &a.location else {
                ctx.error(path, "a redirect needs a `location`");
                return None;
            };
            for placeholder in placeholders(location) {
                if placeholder != "tenant" && !captures.iter().any(|c| c == placeholder) {
                    ctx.error(
                        &path.key("location"),
                        format!("{{{placeholder}}} is neither a path capture nor {{tenant}}"),
                    );
                    return None;
                }
            }
            if !(location.starts_with('/') || url_ok(location)) {
                ctx.error(
                    &path.key("location"),
                    "use an absolute path or an http(s) URL",
                );
                return None;
            }
            let portal = match &a.portal {
                Some(k) => Some(portal_ref(k, &path.key("portal"), ctx, parts)?),
                None => None,
            };
            Some(Action::Redirect {
                location: location.clone(),
                status,
                portal,
            })
        }
        Some("explain") => {
            let status = status(a.status, |n| (400..=499).contains(&n), &sp, ctx)?;
            let Some(feature) = a.feature.clone().filter(|f| key_ok(f)) else {
                ctx.error(
                    &path.key("feature"),
                    "an explanation needs a `feature` key, e.g. \"customer-user-management\"",
                );
                return None;
            };
            let keys: Vec<(KeyPath, &String)> = match &a.portal {
                Some(k) => vec![(path.key("portal"), k)],
                None => a
                    .portals
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (path.key("portals").index(i), k))
                    .collect(),
            };
            if keys.is_empty() {
                ctx.error(
                    path,
                    "an explanation names at least one `portal` or `portals`",
                );
                return None;
            }
            let mut portals = Vec::new();
            for (p, k) in keys {
                portals.push(portal_ref(k, &p, ctx, parts)?);
            }
            let mut docs = Vec::new();
            for (i, k) in a.docs.iter().enumerate() {
                match parts.docs.get(k) {
                    Some(d) => docs.push(d.clone()),
                    None => {
                        ctx.error(
                            &path.key("docs").index(i),
                            format!("no [docs.{k}] is defined"),
                        );
                        return None;
                    }
                }
            }
            let json = match a.json.as_deref() {
                None | Some("problem") => JsonFormat::Problem,
                Some("partner-center") => JsonFormat::PartnerCenter,
                Some(other) => {
                    ctx.error(
                        &path.key("json"),
                        format!("{other:?}: use problem or partner-center"),
                    );
                    return None;
                }
            };
            for lang in a.messages.keys() {
                if !matches!(lang.as_str(), "en" | "de" | "fr") {
                    ctx.error(
                        &path.key("messages").key(lang),
                        "languages are en, de and fr",
                    );
                    return None;
                }
            }
            Some(Action::Explain {
                feature,
                portals,
                docs,
                json,
                status: status.unwrap_or(StatusCode::FORBIDDEN),
                messages: a.messages.clone(),
            })
        }
        Some(other) => {
            ctx.error(
                &path.key("type"),
                format!("{other:?}: use allow, deny, redirect or explain"),
            );
            None
        }
        None => {
            ctx.error(
                path,
                "an action needs a `type`: allow, deny, redirect or explain",
            );
            None
        }
    }
}

fn portal_ref(key: &str, path: &KeyPath, ctx: &mut Ctx<'_>, parts: &Parts) -> Option<Portal> {
    match parts.portals.get(key) {
        Some(p) => Some(p.clone()),
        None => {
            ctx.error(path, format!("no [portals.{key}] is defined"));
            None
        }
    }
}

/// `{name}` placeholders in a template string.
pub fn placeholders(s: &str) -> impl Iterator<Item = &str> {
    s.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}
