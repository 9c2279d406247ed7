//! Regions from discovery: a rule that names regions stops for an
//! unlisted tenant's region, and goes on exactly as if the directory had
//! listed it once the answer is known.

use std::cell::RefCell;

use super::*;

/// An unlisted tenant (neither germany nor global in the directory).
const NEW: &str = "0a1b2c3d-0000-4000-8000-00000000ce77";

/// Discovery that knows what `known` says and records every tenant asked.
#[derive(Default)]
struct Known {
    known: Vec<(TenantId, Learned)>,
    asked: RefCell<Vec<TenantId>>,
}

impl Known {
    fn with(tenant: &str, region: Option<&str>) -> Known {
        let learned = Learned::Known(region.map(Region::new), RegionSource::Discovery);
        Known::of(tenant, learned)
    }

    fn of(tenant: &str, learned: Learned) -> Known {
        Known {
            known: vec![(TenantId::parse(tenant).unwrap(), learned)],
            asked: RefCell::default(),
        }
    }
}

impl Discovered for Known {
    fn learned(&self, tenant: TenantId) -> Learned {
        self.asked.borrow_mut().push(tenant);
        self.known
            .iter()
            .find(|(t, _)| *t == tenant)
            .map_or(Learned::NotYet, |(_, l)| l.clone())
    }
}

fn regions<'a>(directory: &'a Directory, known: &'a Known) -> Regions<'a> {
    Regions {
        directory,
        discovered: Some(known),
    }
}

fn evaluate<'r>(
    set: &'r RuleSet<&'static str>,
    r: &Req,
    known: &Known,
) -> Evaluation<'r, &'static str> {
    set.evaluate(&r.view(), BodyView::NotRead, regions(&directory(), known))
        .unwrap()
}

#[test]
fn an_unlisted_tenant_stops_at_the_first_rule_that_names_regions() {
    let set = pack();
    let r = req("POST", &format!("/v1/customers/{NEW}/users"));
    let nothing = Known::default();
    let Evaluation::NeedRegion(pending) = evaluate(&set, &r, &nothing) else {
        panic!("the region is needed");
    };
    assert_eq!(pending.rule().id, "user-create");
    assert_eq!(pending.tenant(), TenantId::parse(NEW).ok());
    // Without discovery the same request is judged in the default region.
    let d = decide(&set, &r, BodyView::NotRead);
    assert!(d.enforced.is_none());
}

#[test]
fn resumed_with_the_answer_it_decides_as_a_listed_tenant_would() {
    let set = pack();
    let cases = [
        ("POST", "/v1/customers/TENANT/users"),
        ("PATCH", "/v1/customers/TENANT/users/u1"),
        ("GET", "/v1/customers/TENANT/users/u1/licenses"),
        ("GET", "/v1/customers/TENANT/users/u1/licenses/x"),
        ("GET", "/v1/customers/TENANT/orders"),
    ];
    for (method, template) in cases {
        for region in [Some("germany"), Some("global"), None] {
            let r = req(method, &template.replace("TENANT", NEW));
            let body = Fields(vec!["displayName"]);
            let body = BodyView::Json(&body);
            let nothing = Known::default();
            let known = Known::with(NEW, region);
            let dir = directory();
            let mut evaluation = set
                .evaluate(&r.view(), body, regions(&dir, &nothing))
                .unwrap();
            if let Evaluation::NeedRegion(pending) = evaluation {
                evaluation = set
                    .resume(pending, &r.view(), body, regions(&dir, &known))
                    .unwrap();
            }
            let Evaluation::Decided(resumed) = evaluation else {
                panic!("{method} {template}: decided after the answer");
            };
            // The same request for a tenant the directory lists there.
            let listed = match region {
                Some("germany") => DE,
                _ => GLOBAL,
            };
            let l = req(method, &template.replace("TENANT", listed));
            let whole = decide(&set, &l, body);
            let id = |d: &Decision<'_, &str>| {
                (
                    d.enforced.as_ref().map(|m| m.rule.id.clone()),
                    d.report_only.as_ref().map(|m| m.rule.id.clone()),
                )
            };
            assert_eq!(id(&resumed), id(&whole), "{method} {template} {region:?}");
            if let Some(m) = resumed.enforced.as_ref().or(resumed.report_only.as_ref()) {
                assert_eq!(m.resolved.region_source, RegionSource::Discovery);
                assert_eq!(m.resolved.region.as_str(), region.unwrap_or("global"));
            }
        }
    }
}

#[test]
fn listed_tenants_and_region_hosts_never_ask_discovery() {
    let set = pack();
    let nothing = Known::default();
    for tenant in [DE, GLOBAL] {
        let r = req("POST", &format!("/v1/customers/{tenant}/users"));
        assert!(matches!(
            evaluate(&set, &r, &nothing),
            Evaluation::Decided(_)
        ));
    }
    let mut r = req("POST", &format!("/v1/customers/{NEW}/users"));
    r.host = Some("partner.microsoftonline.de");
    let Evaluation::Decided(d) = evaluate(&set, &r, &nothing) else {
        panic!("a Germany host decides");
    };
    assert_eq!(
        d.enforced.map(|m| m.resolved.region_source),
        Some(RegionSource::Host)
    );
    assert!(nothing.asked.borrow().is_empty());
}

#[test]
fn rules_without_regions_never_wait_and_take_a_known_region() {
    let mut open = rule(
        "any-region",
        Mode::Enforce,
        &["GET"],
        "/v1/t/{tenant}",
        None,
    );
    open.matcher.regions.clear();
    let set = RuleSet::new(vec![open]).unwrap();
    let r = req("GET", &format!("/v1/t/{NEW}"));
    let nothing = Known::default();
    let Evaluation::Decided(d) = evaluate(&set, &r, &nothing) else {
        panic!("no region needed");
    };
    let m = d.enforced.unwrap();
    assert_eq!(m.resolved.region_source, RegionSource::Default);
    let known = Known::with(NEW, Some("germany"));
    let Evaluation::Decided(d) = evaluate(&set, &r, &known) else {
        panic!("no region needed");
    };
    let m = d.enforced.unwrap();
    assert_eq!(
        (m.resolved.region.as_str(), m.resolved.region_source),
        ("germany", RegionSource::Discovery)
    );
}

#[test]
fn a_report_only_match_before_the_stop_is_kept_and_the_trace_says_why() {
    let mut set_rules = vec![rule(
        "watch",
        Mode::ReportOnly,
        &["GET"],
        "/v1/customers/{tenant}/orders",
        None,
    )];
    set_rules[0].matcher.regions.clear();
    set_rules.push(rule(
        "orders-de",
        Mode::Enforce,
        &["GET"],
        "/v1/customers/{tenant}/orders",
        None,
    ));
    let set = RuleSet::new(set_rules).unwrap();
    let r = req("GET", &format!("/v1/customers/{NEW}/orders"));
    let nothing = Known::default();
    let Evaluation::NeedRegion(pending) = evaluate(&set, &r, &nothing) else {
        panic!("orders-de needs the region");
    };
    let known = Known::with(NEW, Some("germany"));
    let Evaluation::Decided(d) = set
        .resume(
            pending,
            &r.view(),
            BodyView::NotRead,
            regions(&directory(), &known),
        )
        .unwrap()
    else {
        panic!("decided");
    };
    assert_eq!(
        d.report_only.map(|m| m.rule.id.clone()).as_deref(),
        Some("watch")
    );
    assert_eq!(
        d.enforced.map(|m| m.rule.id.clone()).as_deref(),
        Some("orders-de")
    );
    let trace = set.trace(
        &r.view(),
        BodyView::NotRead,
        regions(&directory(), &nothing),
    );
    assert!(matches!(trace[0].verdict, Verdict::Matched(_)));
    assert!(
        matches!(trace[1].verdict, Verdict::NeedsRegion(t) if Some(t) == TenantId::parse(NEW).ok())
    );
}

#[test]
fn a_conflict_is_refused_before_any_lookup() {
    let set = pack();
    let mut r = req("POST", &format!("/v1/customers/{NEW}/users"));
    r.headers.insert(
        HeaderName::from_static("x-tenant-id"),
        HeaderValue::from_static("0a1b2c3d-0000-4000-8000-00000000ce78"),
    );
    let nothing = Known::default();
    let err = set
        .evaluate(
            &r.view(),
            BodyView::NotRead,
            regions(&directory(), &nothing),
        )
        .unwrap_err();
    assert!(matches!(err, PolicyError::ConflictingTenants { .. }));
    assert!(nothing.asked.borrow().is_empty());
}

#[test]
fn an_unavailable_region_skips_report_only_rules_and_stops_enforcing_ones() {
    let mut watch = rule(
        "watch-de",
        Mode::ReportOnly,
        &["GET"],
        "/v1/customers/{tenant}/orders",
        None,
    );
    watch.matcher.regions = vec![Region::new("germany")];
    let enforce = rule(
        "orders-de",
        Mode::Enforce,
        &["GET"],
        "/v1/customers/{tenant}/orders",
        None,
    );
    let failed = Known::of(NEW, Learned::Unavailable);
    let r = req("GET", &format!("/v1/customers/{NEW}/orders"));
    // Report-only alone: skipped, the request goes on as if no rule matched.
    let only_watch = RuleSet::new(vec![watch.clone()]).unwrap();
    let Evaluation::Decided(d) = evaluate(&only_watch, &r, &failed) else {
        panic!("a report-only rule never waits for a failed lookup");
    };
    assert!(d.enforced.is_none() && d.report_only.is_none());
    let trace = only_watch.trace(&r.view(), BodyView::NotRead, regions(&directory(), &failed));
    assert!(matches!(
        trace[0].verdict,
        Verdict::Skipped(Why::RegionUnavailable)
    ));
    // An enforcing rule after it stops for the region: the proxy refuses.
    let both = RuleSet::new(vec![watch, enforce]).unwrap();
    let Evaluation::NeedRegion(pending) = evaluate(&both, &r, &failed) else {
        panic!("an enforcing rule cannot be judged without the region");
    };
    assert_eq!(pending.rule().id, "orders-de");
}
