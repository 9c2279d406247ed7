//! The Germany pack through the real proxy: every default rule, every
//! response format and language, tenant spellings and conflicts,
//! report-only forwarding.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::client::{send, Reply};
use crate::support::*;

pub const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
pub const GLOBAL: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";

pub async fn germany() -> (Backend, proxy::RunningProxy) {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).germany().start().await;
    (backend, proxy)
}

pub async fn call(
    proxy: &proxy::RunningProxy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut b = Request::builder().method(method).uri(proxy.url(path));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(b.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
}

/// `DELETE /v1/customers/{tenant}/users/{user}`, no headers, no body.
pub async fn delete_user(proxy: &proxy::RunningProxy, tenant: &str, user: &str) -> Reply {
    call(
        proxy,
        "DELETE",
        &format!("/v1/customers/{tenant}/users/{user}"),
        &[],
        "",
    )
    .await
}

fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn each_germany_api_rule_explains_and_never_forwards() {
    let (backend, proxy) = germany().await;
    let cases = [
        (
            "POST",
            format!("/v1/customers/{DE}/users"),
            "{\"userPrincipalName\":\"a@b.example\"}",
            "germany-customer-user-create",
        ),
        (
            "PATCH",
            format!("/v1/customers/{DE}/users/u1"),
            "{\"passwordProfile\":{\"password\":\"S3cret!\"}}",
            "germany-password-reset",
        ),
        (
            "PATCH",
            format!("/v1/customers/{DE}/users/u1"),
            "{\"displayName\":\"X\"}",
            "germany-customer-user-update",
        ),
        (
            "PATCH",
            format!("/v1/customers/{DE}/users/u1"),
            "{\"state\":\"active\"}",
            "germany-customer-user-update",
        ),
        (
            "DELETE",
            format!("/v1/customers/{DE}/users/u1"),
            "",
            "germany-customer-user-update",
        ),
        (
            "POST",
            format!("/v1/customers/{DE}/directoryroles/r1/usermembers"),
            "{\"id\":\"u1\"}",
            "germany-directory-role-add",
        ),
        (
            "DELETE",
            format!("/v1/customers/{DE}/directoryroles/r1/usermembers/u1"),
            "",
            "germany-directory-role-remove",
        ),
        (
            "POST",
            format!("/v1/customers/{DE}/users/u1/licenseupdates"),
            "{\"licensesToAssign\":[]}",
            "germany-license-update",
        ),
    ];
    for (method, path, body, rule) in &cases {
        let r = call(
            &proxy,
            method,
            path,
            &[("accept", "application/problem+json"), JSON],
            body,
        )
        .await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert_eq!(r.header("content-type"), "application/problem+json");
        let v = json(&r);
        assert_eq!(v["rule"], *rule, "{method} {path}");
        assert_eq!(v["region"], "germany");
        let portal = v["portal"]["url"].as_str().unwrap();
        assert!(
            [
                "https://portal.microsoftazure.de",
                "https://portal.office.de/adminportal"
            ]
            .contains(&portal),
            "{portal}"
        );
        assert_eq!(v["decision_id"], r.header("x-portalgate-decision-id"));
        assert_eq!(v["request_id"], r.header("x-request-id"));
    }
    let reset = call(
        &proxy,
        "PATCH",
        &format!("/v1/customers/{DE}/users/u1"),
        &[JSON],
        "{\"passwordProfile\":{}}",
    )
    .await;
    let text = reset.text();
    assert!(text.contains("https://portal.microsoftazure.de"), "{text}");
    assert!(
        !text.contains("portal.office.de"),
        "password reset is Azure portal only: {text}"
    );
    assert!(text.contains("reset-password-azure-portal"), "{text}");
    assert!(
        backend.seen().is_empty(),
        "intercepted requests reached the backend: {:?}",
        backend.seen()
    );
}

#[tokio::test]
async fn global_tenants_and_reads_are_forwarded_unchanged() {
    let (backend, proxy) = germany().await;
    let body = "{\"passwordProfile\":{\"forceChangePassword\":true}}";
    let cases = [
        ("POST", format!("/v1/customers/{GLOBAL}/users"), "{\"a\":1}"),
        ("PATCH", format!("/v1/customers/{GLOBAL}/users/u1"), body),
        ("DELETE", format!("/v1/customers/{GLOBAL}/users/u1"), ""),
        (
            "POST",
            format!("/v1/customers/{GLOBAL}/users/u1/licenseupdates"),
            "{}",
        ),
        ("GET", format!("/v1/customers/{DE}/users"), ""),
        ("GET", format!("/v1/customers/{DE}/users/u1"), ""),
        ("GET", format!("/v1/customers/{DE}/directoryroles"), ""),
    ];
    for (method, path, b) in &cases {
        let r = call(&proxy, method, path, &[JSON], b).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        assert_eq!(r.text(), *b, "the body reaches the backend unchanged");
    }
    let seen = backend.seen();
    assert_eq!(seen.len(), cases.len());
    for ((method, path, b), s) in cases.iter().zip(&seen) {
        assert_eq!(
            (s.method.as_str(), s.uri.as_str(), &s.body[..]),
            (*method, path.as_str(), b.as_bytes())
        );
    }
}

#[tokio::test]
async fn license_reads_are_reported_only_and_forwarded() {
    let (backend, proxy) = germany().await;
    for path in [
        format!("/v1/customers/{DE}/users/u1/licenses"),
        format!("/v1/customers/{DE}/subscribedskus"),
    ] {
        let r = call(&proxy, "GET", &path, &[], "").await;
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.headers.contains_key("x-portalgate-decision-id"));
    }
    assert_eq!(backend.seen().len(), 2);
}

#[tokio::test]
async fn partner_center_format_echoes_its_headers() {
    let (_backend, proxy) = germany().await;
    let r = call(
        &proxy,
        "POST",
        &format!("/v1/customers/{DE}/users"),
        &[
            ("accept", "application/json"),
            ("ms-correlationid", "corr-42"),
            ("ms-requestid", "req-7"),
            JSON,
        ],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("ms-correlationid"), "corr-42");
    assert_eq!(r.header("ms-requestid"), "req-7");
    let v = json(&r);
    assert_eq!(v["code"], "FeatureUnavailableInRegion");
    assert_eq!(v["source"], "portalgate");
    assert!(v["description"]
        .as_str()
        .unwrap()
        .starts_with("Customer user management is not available here. "));
    let data: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        data.iter()
            .any(|d| d.contains("https://portal.office.de/adminportal")),
        "{data:?}"
    );
    assert!(
        data.iter()
            .any(|d| d.contains("https://portal.microsoftazure.de")),
        "{data:?}"
    );
}

#[tokio::test]
async fn html_and_text_in_english_german_and_french() {
    let (_backend, proxy) = germany().await;
    let path = format!("/v1/customers/{DE}/users");
    for (lang, title) in [
        (
            "de-DE,de;q=0.9,en;q=0.5",
            "Die Benutzerverwaltung für Kunden ist hier nicht verfügbar",
        ),
        (
            "fr",
            "La gestion des utilisateurs du client n'est pas disponible ici",
        ),
        ("es", "Customer user management is not available here"),
    ] {
        let r = call(
            &proxy,
            "POST",
            &path,
            &[("accept", "text/html"), ("accept-language", lang), JSON],
            "{}",
        )
        .await;
        assert_eq!(r.status, 403);
        assert!(r.header("content-type").starts_with("text/html"));
        let page = r.text();
        let tag = &r.header("content-language").to_string();
        assert!(page.contains(&format!("<html lang=\"{tag}\">")), "{page}");
        let escaped = title.replace('\'', "&#39;");
        assert!(
            page.contains(&format!("<h1>{escaped}</h1>")),
            "{lang}: {page}"
        );
        assert!(
            page.contains("<a href=\"https://portal.office.de/adminportal\">"),
            "{page}"
        );
        assert!(page.contains("<a href=\"https://docs.microsoft.com/azure/active-directory/active-directory-users-create-azure-portal\">"), "{page}");
        assert!(
            !page.contains("<script") && !page.contains("<link") && !page.contains("src="),
            "self-contained"
        );
    }
    let r = call(
        &proxy,
        "POST",
        &path,
        &[("accept", "text/plain"), ("accept-language", "fr"), JSON],
        "{}",
    )
    .await;
    assert!(r.header("content-type").starts_with("text/plain"));
    assert!(
        r.text().contains(
            "Aller à Azure portal (Microsoft Cloud Germany): https://portal.microsoftazure.de"
        ),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn browsers_are_redirected_to_the_portal() {
    let (backend, proxy) = germany().await;
    let browser = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    let r = call(
        &proxy,
        "GET",
        "/dashboard/account/usermanagement",
        &[browser, ("host", "PartnerCenter.MicrosoftOnline.DE.:443")],
        "",
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), "https://portal.office.de/adminportal");
    let r = call(
        &proxy,
        "GET",
        &format!("/dashboard/customers/{DE}/users"),
        &[browser],
        "",
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), "https://portal.microsoftazure.de");
    // The same pages for a global partner or customer are served.
    let r = call(
        &proxy,
        "GET",
        "/dashboard/account/usermanagement",
        &[browser, ("host", "partner.example.com")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(
        &proxy,
        "GET",
        &format!("/dashboard/customers/{GLOBAL}/users"),
        &[browser],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(backend.seen().len(), 2);
}

#[tokio::test]
async fn body_aware_rule_fails_closed_on_bodies_it_cannot_read() {
    let (backend, proxy) = germany().await;
    let path = format!("/v1/customers/{DE}/users/u1");
    for (ct, body) in [
        ("application/json", "{not json"),
        ("text/plain", "passwordProfile"),
        (
            "application/json",
            &format!(
                "{{\"pad\":\"{}\",\"passwordProfile\":{{}}}}",
                "x".repeat(20_000)
            ),
        ),
    ] {
        let r = call(
            &proxy,
            "PATCH",
            &path,
            &[("content-type", ct), ("accept", "application/json")],
            body,
        )
        .await;
        assert_eq!(r.status, 400, "{ct}: {}", r.text());
        assert_eq!(json(&r)["code"], "uninspectable_body");
    }
    assert!(backend.seen().is_empty());
}

#[tokio::test]
async fn tenant_spellings_are_one_tenant_and_conflicts_are_refused() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(
            r#"[portals.p]
name = "P"
url = "https://p.example"
[[rules]]
id = "header-and-path"
[rules.match]
methods = ["PUT"]
path = "/v2/customers/{tenant}/things"
regions = ["germany"]
tenant_from = ["path:tenant", "header:x-tenant-id"]
[rules.action]
type = "explain"
feature = "x"
portal = "p""#,
        )
        .start()
        .await;
    let upper = DE.to_uppercase();
    let bare = DE.replace('-', "");
    for spelling in [
        upper.clone(),
        format!("{{{DE}}}"),
        format!("%7B{DE}%7D"),
        format!("({upper})"),
        bare,
    ] {
        let r = call(
            &proxy,
            "POST",
            &format!("/v1/customers/{spelling}/users"),
            &[JSON],
            "{}",
        )
        .await;
        assert_eq!(r.status, 403, "{spelling}: {}", r.text());
    }
    let r = call(
        &proxy,
        "POST",
        "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de0g/users",
        &[("accept", "application/json"), JSON],
        "{}",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["code"], "ambiguous_tenant");
    let path = format!("/v2/customers/{DE}/things");
    let r = call(
        &proxy,
        "PUT",
        &path,
        &[("x-tenant-id", GLOBAL), ("accept", "application/json")],
        "",
    )
    .await;
    assert_eq!(r.status, 400, "conflicting tenant sources");
    assert_eq!(json(&r)["code"], "ambiguous_tenant");
    let r = call(&proxy, "PUT", &path, &[("x-tenant-id", &upper)], "").await;
    assert_eq!(r.status, 403, "agreeing sources");
    let mut b = Request::builder().method("PUT").uri(proxy.url(&path));
    b = b.header("x-tenant-id", DE).header("x-tenant-id", DE);
    let r = send(b.body(Full::default()).unwrap()).await;
    assert_eq!(r.status, 400, "a tenant header given twice");
    assert!(backend.seen().is_empty(), "{:?}", backend.seen());
}

#[tokio::test]
async fn a_rule_can_override_the_explanation_text_per_language() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(
            r#"[portals.helpdesk]
name = "Contoso helpdesk"
url = "https://helpdesk.contoso.example"
[[rules]]
id = "contoso-self-service"
[rules.match]
methods = ["POST"]
path = "/v2/selfservice/{tenant}"
regions = ["germany"]
[rules.action]
type = "explain"
feature = "customer-user-management"
portal = "helpdesk"
status = 451
messages = { de = "Bitte wenden Sie sich an {portals}.", fr = "Contactez {portals}." }"#,
        )
        .start()
        .await;
    let path = format!("/v2/selfservice/{DE}");
    let r = call(
        &proxy,
        "POST",
        &path,
        &[("accept", "text/plain"), ("accept-language", "de")],
        "",
    )
    .await;
    assert_eq!(r.status, 451);
    assert!(
        r.text()
            .contains("Bitte wenden Sie sich an Contoso helpdesk."),
        "{}",
        r.text()
    );
    let r = call(
        &proxy,
        "POST",
        &path,
        &[("accept", "text/plain"), ("accept-language", "fr")],
        "",
    )
    .await;
    assert!(
        r.text().contains("Contactez Contoso helpdesk."),
        "{}",
        r.text()
    );
    // No English override: the built-in English text, naming the portal.
    let r = call(&proxy, "POST", &path, &[("accept", "text/plain")], "").await;
    assert!(
        r.text().contains("Manage them in Contoso helpdesk."),
        "{}",
        r.text()
    );
    assert!(backend.seen().is_empty());
}

/// A JWT-shaped `Authorization: Bearer` value with this payload.
fn bearer(payload: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "Bearer {}.{}.c2ln",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(payload)
    )
}

/// A source only matters to the rules that name it: an opaque bearer token
/// is refused only where a matching rule reads the tenant from the token.
#[tokio::test]
async fn an_opaque_bearer_token_matters_only_to_rules_that_read_it() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(
            r#"[[rules]]
id = "germany-partner-user-create"
[rules.match]
methods = ["POST"]
path = "/v1/profiles/users"
regions = ["germany"]
tenant_from = ["jwt:tid"]
[rules.action]
type = "deny""#,
        )
        .start()
        .await;
    let opaque = "Bearer EwBwA8l6BAAU-opaque-access-token";
    let auth = [("authorization", opaque)];
    // Routes no jwt:tid rule covers: forwarded, also where other rules judge.
    let r = call(&proxy, "GET", "/v1/customers", &auth, "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(
        &proxy,
        "GET",
        &format!("/v1/customers/{DE}/users"),
        &auth,
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = delete_user_with(&proxy, GLOBAL, &auth).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Still judged by their own sources: a Germany tenant in the path.
    let r = delete_user_with(&proxy, DE, &auth).await;
    assert_ne!(r.status, 200, "{}", r.text());
    // The rule that reads the token cannot judge an opaque one: refused.
    let r = call(&proxy, "POST", "/v1/profiles/users", &auth, "{}").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("ambiguous_tenant"), "{}", r.text());
    // And a readable one is judged.
    let de = bearer(&format!(r#"{{"tid":"{DE}"}}"#));
    let r = call(
        &proxy,
        "POST",
        "/v1/profiles/users",
        &[("authorization", &de)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let global = bearer(&format!(r#"{{"tid":"{GLOBAL}"}}"#));
    let r = call(
        &proxy,
        "POST",
        "/v1/profiles/users",
        &[("authorization", &global)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(backend.seen().len(), 4);
}

async fn delete_user_with(
    proxy: &proxy::RunningProxy,
    tenant: &str,
    headers: &[(&str, &str)],
) -> Reply {
    call(
        proxy,
        "DELETE",
        &format!("/v1/customers/{tenant}/users/u-1"),
        headers,
        "",
    )
    .await
}
