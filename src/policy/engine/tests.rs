use std::collections::HashMap;

use http::header::{HeaderName, HeaderValue};

use super::*;
use crate::policy::rule::{BodyCond, HeaderCond, Matcher};
use crate::policy::PathPattern;
use crate::tenant::{Directory, Entry};

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
const GLOBAL: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";

fn directory() -> Directory {
    let mut entries = HashMap::new();
    for (id, region) in [(DE, "germany"), (GLOBAL, "global")] {
        entries.insert(
            TenantId::parse(id).unwrap(),
            Entry {
                region: Region::new(region),
                name: None,
            },
        );
    }
    let mut hosts = HashMap::new();
    hosts.insert(
        "partner.microsoftonline.de".to_string(),
        Region::new("germany"),
    );
    Directory::new(entries, hosts, Region::new("global"))
}

fn rule(
    id: &str,
    mode: Mode,
    methods: &[&str],
    template: &str,
    body: Option<&str>,
) -> Rule<&'static str> {
    Rule {
        id: id.into(),
        description: String::new(),
        mode,
        matcher: Matcher {
            methods: methods.iter().map(|m| m.parse().unwrap()).collect(),
            path: Some(PathPattern::Template {
                template: template.into(),
                case_insensitive: true,
            }),
            regions: vec![Region::new("germany")],
            tenant_from: vec![
                TenantSource::Capture("tenant".into()),
                TenantSource::Header(HeaderName::from_static("x-tenant-id")),
            ],
            body: body.map(|f| BodyCond {
                json_field_present: vec![f.to_string()],
            }),
            ..Matcher::default()
        },
        action: "act",
    }
}

fn pack() -> RuleSet<&'static str> {
    RuleSet::new(vec![
        rule(
            "off-rule",
            Mode::Off,
            &["POST"],
            "/v1/customers/{tenant}/users",
            None,
        ),
        rule(
            "user-create",
            Mode::Enforce,
            &["POST"],
            "/v1/customers/{tenant}/users",
            None,
        ),
        rule(
            "password-reset",
            Mode::Enforce,
            &["PATCH"],
            "/v1/customers/{tenant}/users/{user}",
            Some("passwordProfile"),
        ),
        rule(
            "user-update",
            Mode::Enforce,
            &["PATCH", "DELETE"],
            "/v1/customers/{tenant}/users/{user}",
            None,
        ),
        rule(
            "license-reads",
            Mode::ReportOnly,
            &["GET"],
            "/v1/customers/{tenant}/users/{user}/licenses",
            None,
        ),
        rule(
            "licenses-all",
            Mode::Enforce,
            &["GET", "POST"],
            "/v1/customers/{tenant}/users/{user}/**",
            None,
        ),
    ])
    .unwrap()
}

struct Fields(Vec<&'static str>);

impl JsonFields for Fields {
    fn has(&self, path: &[String]) -> bool {
        path.len() == 1 && self.0.contains(&path[0].as_str())
    }
}

struct Req {
    method: Method,
    host: Option<&'static str>,
    path: String,
    query: Option<String>,
    headers: http::HeaderMap,
}

fn req(method: &str, path: &str) -> Req {
    Req {
        method: method.parse().unwrap(),
        host: Some("api.partnercenter.microsoft.com"),
        path: path.to_string(),
        query: None,
        headers: http::HeaderMap::new(),
    }
}

impl Req {
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            host: self.host,
            path: &self.path,
            query: self.query.as_deref(),
            headers: crate::head::Fields::Map(&self.headers),
            bearer_tid: Default::default(),
        }
    }
}

fn decide<'r>(
    set: &'r RuleSet<&'static str>,
    r: &Req,
    body: BodyView<'_>,
) -> Decision<'r, &'static str> {
    match set
        .evaluate(&r.view(), body, Regions::of(&directory()))
        .unwrap()
    {
        Evaluation::Decided(d) => d,
        Evaluation::NeedBody(_) => panic!("unexpected NeedBody"),
        Evaluation::NeedRegion(_) => panic!("unexpected NeedRegion"),
    }
}

fn enforced(set: &RuleSet<&'static str>, r: &Req) -> Option<String> {
    decide(set, r, BodyView::NotRead)
        .enforced
        .map(|m| m.rule.id.clone())
}

#[test]
fn germany_writes_are_matched_and_global_ones_forwarded() {
    let set = pack();
    let r = req("POST", &format!("/v1/customers/{DE}/users"));
    let d = decide(&set, &r, BodyView::NotRead);
    let m = d.enforced.expect("Germany user creation is intercepted");
    assert_eq!(m.rule.id, "user-create", "the earlier off rule is skipped");
    assert_eq!(m.resolved.tenant.unwrap().to_string(), DE);
    assert_eq!(m.resolved.tenant_source, Some("path:tenant"));
    assert_eq!(m.resolved.region.as_str(), "germany");
    assert_eq!(m.resolved.region_source, RegionSource::Directory);
    assert_eq!(
        enforced(&set, &req("POST", &format!("/v1/customers/{GLOBAL}/users"))),
        None
    );
    assert_eq!(
        enforced(&set, &req("GET", &format!("/v1/customers/{DE}/users"))),
        None,
        "reads pass"
    );
}

#[test]
fn literals_match_case_insensitively_and_tenant_spellings_agree() {
    let set = pack();
    let upper = DE.to_uppercase();
    for path in [
        format!("/V1/Customers/{DE}/USERS"),
        format!("/v1/customers/{{{DE}}}/users"),
        format!("/v1/customers/{upper}/users/"),
        format!("/v1/customers/{}/users", DE.replace('-', "")),
    ] {
        assert_eq!(
            enforced(&set, &req("POST", &path)).as_deref(),
            Some("user-create"),
            "{path}"
        );
    }
}

#[test]
fn body_condition_asks_for_the_body_then_decides() {
    let set = pack();
    let r = req("PATCH", &format!("/v1/customers/{DE}/users/u1"));
    assert!(matches!(
        set.evaluate(&r.view(), BodyView::NotRead, Regions::of(&directory()))
            .unwrap(),
        Evaluation::NeedBody(_)
    ));
    let with = Fields(vec!["passwordProfile", "displayName"]);
    let d = decide(&set, &r, BodyView::Json(&with));
    assert_eq!(d.enforced.unwrap().rule.id, "password-reset");
    let without = Fields(vec!["displayName"]);
    let d = decide(&set, &r, BodyView::Json(&without));
    assert_eq!(d.enforced.unwrap().rule.id, "user-update");
    assert_eq!(
        set.evaluate(&r.view(), BodyView::Unreadable, Regions::of(&directory()))
            .unwrap_err(),
        PolicyError::UninspectableBody {
            rule: "password-reset".into()
        }
    );
    // A global tenant never needs the body: the region rules the rule out first.
    let g = req("PATCH", &format!("/v1/customers/{GLOBAL}/users/u1"));
    assert!(matches!(
        set.evaluate(&g.view(), BodyView::NotRead, Regions::of(&directory()))
            .unwrap(),
        Evaluation::Decided(Decision { enforced: None, .. })
    ));
}

#[test]
fn report_only_is_recorded_and_does_not_shadow_enforcement() {
    let set = pack();
    let d = decide(
        &set,
        &req("GET", &format!("/v1/customers/{DE}/users/u1/licenses")),
        BodyView::NotRead,
    );
    assert_eq!(d.report_only.unwrap().rule.id, "license-reads");
    assert_eq!(d.enforced.unwrap().rule.id, "licenses-all");
    let only_report = RuleSet::new(vec![rule(
        "license-reads",
        Mode::ReportOnly,
        &["GET"],
        "/v1/customers/{tenant}/users/{user}/licenses",
        None,
    )])
    .unwrap();
    let d = decide(
        &only_report,
        &req("GET", &format!("/v1/customers/{DE}/users/u1/licenses")),
        BodyView::NotRead,
    );
    assert!(d.enforced.is_none());
    assert_eq!(d.report_only.unwrap().rule.id, "license-reads");
}

#[test]
fn tenant_sources_must_agree_and_be_well_formed() {
    let set = pack();
    let mut r = req("POST", &format!("/v1/customers/{DE}/users"));
    r.headers
        .insert("x-tenant-id", HeaderValue::from_static(GLOBAL));
    assert_eq!(
        set.evaluate(&r.view(), BodyView::NotRead, Regions::of(&directory()))
            .unwrap_err(),
        PolicyError::ConflictingTenants {
            first: "path:tenant".into(),
            second: "header:x-tenant-id".into()
        }
    );
    r.headers.insert(
        "x-tenant-id",
        HeaderValue::from_str(&DE.to_uppercase()).unwrap(),
    );
    assert_eq!(
        enforced(&set, &r).as_deref(),
        Some("user-create"),
        "same id, other spelling"
    );
    r.headers
        .append("x-tenant-id", HeaderValue::from_static(DE));
    assert_eq!(
        set.evaluate(&r.view(), BodyView::NotRead, Regions::of(&directory()))
            .unwrap_err(),
        PolicyError::RepeatedTenantSource("x-tenant-id".into())
    );
    let bad = req(
        "POST",
        "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de0g/users",
    );
    assert_eq!(
        set.evaluate(&bad.view(), BodyView::NotRead, Regions::of(&directory()))
            .unwrap_err(),
        PolicyError::MalformedTenant {
            from: "path:tenant".into()
        }
    );
}

#[test]
fn a_germany_host_is_germany_whatever_the_tenant() {
    let set = pack();
    let mut r = req("POST", &format!("/v1/customers/{GLOBAL}/users"));
    r.host = Some("partner.microsoftonline.de");
    let d = decide(&set, &r, BodyView::NotRead);
    let m = d.enforced.unwrap();
    assert_eq!(m.resolved.region_source, RegionSource::Host);
    assert_eq!(m.resolved.region.as_str(), "germany");
}

#[test]
fn methods_hosts_and_headers_narrow_a_rule() {
    let mut r = rule("browser-ui", Mode::Enforce, &["GET"], "/dashboard/**", None);
    r.matcher.regions.clear();
    r.matcher.hosts = vec!["*.partner.example".into()];
    r.matcher.headers = vec![HeaderCond {
        name: http::header::ACCEPT,
        test: HeaderTest::Matches(Regex::new("^text/html.*$").unwrap()),
    }];
    let set = RuleSet::new(vec![r]).unwrap();
    let mut q = req("GET", "/dashboard/account/usermanagement");
    q.host = Some("eu.partner.example");
    q.headers
        .insert("accept", HeaderValue::from_static("text/html,*/*"));
    assert_eq!(enforced(&set, &q).as_deref(), Some("browser-ui"));
    q.host = Some("partner.example");
    assert_eq!(
        enforced(&set, &q),
        None,
        "the bare domain is not a subdomain"
    );
    q.host = Some("eu.partner.example");
    q.headers
        .insert("accept", HeaderValue::from_static("application/json"));
    assert_eq!(enforced(&set, &q), None);
    q.method = Method::POST;
    q.headers
        .insert("accept", HeaderValue::from_static("text/html"));
    assert_eq!(enforced(&set, &q), None);
}

#[test]
fn a_thousand_rules_still_pick_the_first_match() {
    let mut rules: Vec<Rule<&'static str>> = (0..1000)
        .map(|i| {
            rule(
                &format!("r{i}"),
                Mode::Enforce,
                &["POST"],
                &format!("/v1/area{i}/{{tenant}}/users"),
                None,
            )
        })
        .collect();
    let mut fallback = rule("fallback", Mode::Enforce, &["POST"], "/v1/**", None);
    fallback.matcher.regions.clear();
    rules.push(fallback);
    let set = RuleSet::new(rules).unwrap();
    assert_eq!(
        enforced(&set, &req("POST", &format!("/v1/area737/{DE}/users"))).as_deref(),
        Some("r737")
    );
    assert_eq!(
        enforced(&set, &req("POST", "/v1/elsewhere")).as_deref(),
        Some("fallback")
    );
}

#[test]
fn resuming_with_the_body_decides_as_evaluating_with_it() {
    let set = pack();
    let r = req("PATCH", &format!("/v1/customers/{DE}/users/u1"));
    let with = Fields(vec!["passwordProfile"]);
    let without = Fields(vec!["displayName"]);
    for body in [BodyView::Json(&with), BodyView::Json(&without)] {
        let Evaluation::NeedBody(pending) = set
            .evaluate(&r.view(), BodyView::NotRead, Regions::of(&directory()))
            .unwrap()
        else {
            panic!("the body is needed");
        };
        assert_eq!(pending.rule().id, "password-reset");
        let resumed = match set
            .resume(pending, &r.view(), body, Regions::of(&directory()))
            .unwrap()
        {
            Evaluation::Decided(d) => d.enforced.map(|m| m.rule.id.clone()),
            Evaluation::NeedBody(_) | Evaluation::NeedRegion(_) => panic!("the body was given"),
        };
        let whole = decide(&set, &r, body).enforced.map(|m| m.rule.id.clone());
        assert_eq!(resumed, whole);
    }
    let Evaluation::NeedBody(pending) = set
        .evaluate(&r.view(), BodyView::NotRead, Regions::of(&directory()))
        .unwrap()
    else {
        panic!("the body is needed");
    };
    assert_eq!(
        set.resume(
            pending,
            &r.view(),
            BodyView::Unreadable,
            Regions::of(&directory())
        )
        .unwrap_err(),
        PolicyError::UninspectableBody {
            rule: "password-reset".into()
        }
    );
}

mod regions;
