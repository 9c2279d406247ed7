use super::*;
use crate::policy::{Matched, Resolved, Rule};
use crate::tenant::{Region, RegionSource, TenantId};

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

fn portal(key: &str) -> Portal {
    Portal {
        key: key.into(),
        name: format!("Portal \"{key}\" & co"),
        url: format!("https://{key}.example.de/?a=1&b=2"),
    }
}

fn rule(id: &str, action: Action) -> Rule<Action> {
    Rule {
        id: id.into(),
        description: String::new(),
        mode: crate::policy::Mode::Enforce,
        matcher: Default::default(),
        action,
    }
}

fn set() -> RuleSet<Action> {
    RuleSet::new(vec![
        rule(
            "explain",
            Action::Explain {
                feature: "customer-user-management".into(),
                portals: vec![portal("office"), portal("azure")],
                docs: vec![DocLink {
                    title: "Add <users>".into(),
                    url: "https://docs.example/add".into(),
                }],
                json: JsonFormat::PartnerCenter,
                status: StatusCode::FORBIDDEN,
                messages: Default::default(),
            },
        ),
        rule(
            "redirect",
            Action::Redirect {
                location: "https://portal.example.de/customers/{tenant}/users?u={user}".into(),
                status: None,
                portal: None,
            },
        ),
        rule(
            "deny",
            Action::Deny {
                status: StatusCode::GONE,
            },
        ),
    ])
    .unwrap()
}

fn matched<'r>(set: &'r RuleSet<Action>, index: usize) -> Matched<'r, Action> {
    Matched {
        index,
        rule: &set.rules()[index],
        captures: vec![("user", "adele vance@contoso".into())],
        resolved: Resolved {
            tenant: Some(TenantId::parse(DE).unwrap()),
            tenant_source: Some("path:tenant"),
            region: Region::new("germany"),
            region_source: RegionSource::Directory,
        },
    }
}

fn ctx<'a>(method: &'a Method, accept: Option<&'a str>, lang: Option<&'a str>) -> Ctx<'a> {
    static RID: std::sync::LazyLock<Id> =
        std::sync::LazyLock::new(|| Id::for_request(Some(b"rid-1")));
    static DID: std::sync::LazyLock<Id> =
        std::sync::LazyLock::new(|| Id::for_request(Some(b"did-1")));
    Ctx {
        method,
        accept,
        accept_language: lang,
        request_id: &RID,
        decision_id: &DID,
        ms_request_id: Some(b"ms-1"),
        ms_correlation_id: None,
    }
}

fn text(a: &Answer<'_>, name: &str) -> String {
    String::from_utf8(a.get(name).unwrap_or_default().to_vec()).unwrap()
}

#[test]
fn explanations_fill_every_hole_in_every_format() {
    let set = set();
    let answers = Answers::compile(&set);
    let m = matched(&set, 0);
    let post = Method::POST;

    let a = answers.answer(&m, &ctx(&post, Some("application/problem+json"), None));
    assert_eq!(a.status, 403);
    assert_eq!(text(&a, "content-type"), "application/problem+json");
    let v: serde_json::Value = serde_json::from_slice(&a.body_bytes()).unwrap();
    assert_eq!(v["region"], "germany");
    assert_eq!(v["request_id"], "rid-1");
    assert_eq!(v["decision_id"], "did-1");
    assert_eq!(v["portal"]["name"], "Portal \"office\" & co");
    assert_eq!(text(&a, "x-portalgate-rule"), "explain");
    assert_eq!(text(&a, "ms-requestid"), "ms-1");

    let a = answers.answer(&m, &ctx(&post, Some("application/json"), Some("de")));
    let v: serde_json::Value = serde_json::from_slice(&a.body_bytes()).unwrap();
    assert_eq!(v["code"], "FeatureUnavailableInRegion");
    assert_eq!(text(&a, "content-language"), "de");

    let a = answers.answer(&m, &ctx(&post, Some("text/html"), Some("fr")));
    let page = String::from_utf8(a.body_bytes().into_owned()).unwrap();
    assert!(page.contains("<code>rid-1</code>"), "{page}");
    assert!(page.contains("<code>did-1</code>"), "{page}");
    assert!(
        page.contains("Portal &quot;office&quot; &amp; co"),
        "{page}"
    );
    assert!(page.contains("Add &lt;users&gt;"), "{page}");
    assert!(!page.contains("@@portalgate-hole"), "{page}");

    let a = answers.answer(&m, &ctx(&post, Some("text/plain"), None));
    let plain = String::from_utf8(a.body_bytes().into_owned()).unwrap();
    assert!(
        plain.contains("rid-1") && plain.contains("did-1"),
        "{plain}"
    );
}

#[test]
fn redirects_fill_the_target_in_the_header_and_every_body() {
    let set = set();
    let answers = Answers::compile(&set);
    let m = matched(&set, 1);
    let target =
        format!("https://portal.example.de/customers/{DE}/users?u=adele%20vance%40contoso");
    let get = Method::GET;
    let a = answers.answer(&m, &ctx(&get, Some("text/html"), None));
    assert_eq!(a.status, 303);
    assert_eq!(text(&a, "location"), target);
    let page = String::from_utf8(a.body_bytes().into_owned()).unwrap();
    assert!(
        page.contains(&format!("<a href=\"{target}\">{target}</a>")),
        "{page}"
    );
    let put = Method::PUT;
    let a = answers.answer(&m, &ctx(&put, Some("application/json"), None));
    assert_eq!(a.status, 307);
    let v: serde_json::Value = serde_json::from_slice(&a.body_bytes()).unwrap();
    assert_eq!(v["location"], target.as_str());
    assert_eq!(v["request_id"], "rid-1");
}

#[test]
fn denials_name_the_rule() {
    let set = set();
    let answers = Answers::compile(&set);
    let m = matched(&set, 2);
    let get = Method::GET;
    let a = answers.answer(&m, &ctx(&get, None, None));
    assert_eq!(a.status, 410);
    let v: serde_json::Value = serde_json::from_slice(&a.body_bytes()).unwrap();
    assert_eq!(v["detail"], "denied by rule deny");
    assert_eq!(v["decision_id"], "did-1");
}

/// A target without placeholders is written into the bodies when they are
/// compiled: the answer is the same as filling it per request would give,
/// escaped for each body, and a target that is no valid field value is
/// still named in the body but never sent as `Location`.
#[test]
fn fixed_targets_answer_as_filled_ones_do() {
    let fixed = |location: &str| {
        RuleSet::new(vec![rule(
            "fixed",
            Action::Redirect {
                location: location.into(),
                status: None,
                portal: None,
            },
        )])
        .unwrap()
    };
    let target = "https://portal.example.de/?a=1&b=<2>";
    let set = fixed(target);
    let answers = Answers::compile(&set);
    let m = matched(&set, 0);
    let get = Method::GET;
    let a = answers.answer(&m, &ctx(&get, Some("text/html"), None));
    assert_eq!(text(&a, "location"), target);
    let page = String::from_utf8(a.body_bytes().into_owned()).unwrap();
    let escaped = "https://portal.example.de/?a=1&amp;b=&lt;2&gt;";
    assert!(
        page.contains(&format!("<a href=\"{escaped}\">{escaped}</a>")),
        "{page}"
    );
    let a = answers.answer(&m, &ctx(&get, Some("application/json"), None));
    let v: serde_json::Value = serde_json::from_slice(&a.body_bytes()).unwrap();
    assert_eq!(v["location"], target);
    let a = answers.answer(&m, &ctx(&get, Some("text/plain"), None));
    assert!(String::from_utf8(a.body_bytes().into_owned())
        .unwrap()
        .contains(target));

    let bad = "https://portal.example.de/\u{7f}x";
    let set = fixed(bad);
    let answers = Answers::compile(&set);
    let a = answers.answer(&matched(&set, 0), &ctx(&get, Some("text/plain"), None));
    assert_eq!(a.get("location"), None);
    assert!(String::from_utf8(a.body_bytes().into_owned())
        .unwrap()
        .contains(bad));
}
