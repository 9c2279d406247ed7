use std::time::{Duration, SystemTime};

use super::*;

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

struct R {
    rule: Option<&'static str>,
    tenant: Option<TenantId>,
    action: &'static str,
    mode: &'static str,
    status: u16,
    at: Option<SystemTime>,
    path: Option<&'static str>,
}

impl Fields for R {
    fn rule(&self) -> Option<&str> {
        self.rule
    }
    fn tenant(&self) -> Option<TenantId> {
        self.tenant
    }
    fn action(&self) -> &str {
        self.action
    }
    fn mode(&self) -> &str {
        self.mode
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn at(&self) -> Option<SystemTime> {
        self.at
    }
    fn route(&self) -> Option<&str> {
        Some("/v1/customers/{id}/users")
    }
    fn path(&self) -> Option<&str> {
        self.path
    }
}

fn record(now: SystemTime) -> R {
    R {
        rule: Some("de-customer-users"),
        tenant: TenantId::parse(DE).ok(),
        action: "explain",
        mode: "enforce",
        status: 403,
        at: Some(now - Duration::from_secs(60)),
        path: Some("/v1/customers/x/users"),
    }
}

#[test]
fn a_query_gives_the_same_filters_as_the_flags_in_any_tenant_spelling() {
    let now = SystemTime::now();
    let f = Filter::from_query(
        "rule=de-customer-users&tenant=%7B0A1B2C3D-0000-4000-8000-00000000DE01%7D\
         &action=explain&mode=enforce&status=403&since=5m&path=%2Fv1%2Fcustomers&other=x&until=",
        now,
    )
    .unwrap();
    assert_eq!(f.tenant, TenantId::parse(DE).ok());
    assert_eq!(f.since, Some(now - Duration::from_secs(300)));
    assert_eq!(f.until, None);
    assert_eq!(f.path.as_deref(), Some("/v1/customers"));
    assert!(f.keep(&record(now)));
    for (q, why) in [
        ("action=explain", true),
        ("action=deny", false),
        ("mode=report-only", false),
        ("status=302", false),
        ("rule=other", false),
        ("since=30s", false),
        ("until=30s", true),
        ("path=/v2", false),
        ("path=/v1/customers/{id}/users", true),
        ("tenant=0a1b2c3d-0000-4000-8000-00000000de02", false),
        ("", true),
    ] {
        let f = Filter::from_query(q, now).unwrap();
        assert_eq!(f.keep(&record(now)), why, "{q}");
    }
}

#[test]
fn an_unknown_value_is_an_error_that_names_its_parameter() {
    let now = SystemTime::now();
    for (q, name) in [
        ("action=bogus", "action:"),
        ("mode=loud", "mode:"),
        ("status=42", "status:"),
        ("status=abc", "status:"),
        ("tenant=not-a-guid-0000", "tenant:"),
        ("since=yesterday-ish", "since:"),
        ("rule=%zz", "rule:"),
    ] {
        let e = Filter::from_query(q, now).unwrap_err();
        assert!(e.starts_with(name), "{q}: {e}");
    }
}

#[test]
fn a_time_filter_never_keeps_a_record_without_a_readable_time() {
    let now = SystemTime::now();
    let f = Filter::from_query("since=1h", now).unwrap();
    let mut r = record(now);
    r.at = None;
    assert!(!f.keep(&r));
}
