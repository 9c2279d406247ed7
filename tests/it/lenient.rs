//! A reference model of a lenient backend (ASP.NET Core routing on IIS, as
//! its documentation and source describe it), and a generator that sends
//! mutated spellings of every protected route of the Germany pack through
//! the real proxy: whenever the model says a request reaches a protected
//! endpoint for a Germany tenant, the backend must not have received it.
//!
//! The model is in `lenient_model.rs`, written from the backend's rules,
//! not from portalgate's code.

use crate::policy::{germany, DE, GLOBAL};
use crate::support::client::{raw, status_of};
use crate::support::*;

use crate::lenient_model::{self as model, PROTECTED};

#[test]
fn the_model_pins_each_rule_of_the_lenient_backend() {
    let de = model::guid(DE).unwrap();
    for spelling in [
        "0A1B2C3D-0000-4000-8000-00000000DE01",
        "0a1b2c3d00004000800000000000de01",
        "{0a1b2c3d-0000-4000-8000-00000000de01}",
        "(0a1b2c3d-0000-4000-8000-00000000de01)",
        "\u{a0}0a1b2c3d-0000-4000-8000-00000000de01\u{3000}",
        "{0x0a1b2c3d, 0x0000,\u{3000}0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}",
        "+a1b2c3d-0x00-4000-8000-00000000de01",
    ] {
        assert_eq!(model::guid(spelling), Some(de), "{spelling:?}");
    }
    for other in [
        "contoso.com",
        "\u{ff10}a1b2c3d-0000-4000-8000-00000000de01",
        // A group with a character of more than one byte (found by the
        // `lenient` fuzz target: the model cut it inside the character).
        "{0x0a1b2c3d,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0x0\u{178},0x01}}",
        "",
    ] {
        assert_eq!(model::guid(other), None, "{other:?}");
    }
    let p = format!("/v1/customers/{DE}/users");
    assert_eq!(model::protected("post", &p), Some(de));
    assert_eq!(model::protected("GET", &p), None);
    for path in [
        format!("/V1/%EF%BD%83ustomers/{DE}/u%C5%BFers."),
        format!("/v1/x/../customers/{DE}//users%E2%80%8B"),
        format!("/v1/customers/%7B{DE}%7D/users"),
    ] {
        assert_eq!(model::protected("POST", &path), Some(de), "{path}");
    }
    for path in [
        format!("//v1/customers/{DE}/users"),
        format!("/v1/customers%2F{DE}/users"),
        format!("/v1/customers/{DE}/users/extra/x"),
    ] {
        assert_eq!(model::protected("POST", &path), None, "{path}");
    }
}

/// A small deterministic generator (xorshift), so a failure names its case.
struct Gen(u64);

impl Gen {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        &items[(self.0 % items.len() as u64) as usize]
    }
}

fn tenant_spellings(id: &str) -> Vec<String> {
    let n = id.replace('-', "");
    let x = format!(
        "{{0x{},0x{},0x{},{{{}}}}}",
        &n[0..8],
        &n[8..12],
        &n[12..16],
        (0..8)
            .map(|i| format!("0x{}", &n[16 + 2 * i..18 + 2 * i]))
            .collect::<Vec<_>>()
            .join(",")
    );
    vec![
        id.to_string(),
        id.to_uppercase(),
        n.clone(),
        format!("%7B{id}%7D"),
        format!("({id})"),
        format!("%C2%A0{id}%E3%80%80"),
        format!("%20{id}%20"),
        x.replace(',', ",%20")
            .replace('{', "%7B")
            .replace('}', "%7D"),
        format!("+{}", &id[1..]),
        format!("{}%{:02X}{}", &id[..3], id.as_bytes()[3], &id[4..]),
        format!("%EF%BC%90{}", &id[1..]),
        format!("{id}%E2%80%8B"),
        format!("{id}."),
    ]
}

fn literal_spellings(lit: &str) -> Vec<String> {
    let first = lit.chars().next().unwrap();
    let rest = &lit[1..];
    let full = char::from_u32(first as u32 + 0xFEE0).unwrap();
    let mut enc = [0u8; 4];
    let full = full
        .encode_utf8(&mut enc)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<String>();
    vec![
        lit.to_string(),
        lit.to_uppercase(),
        format!("{full}{rest}"),
        format!("{lit}."),
        format!("{lit}%20"),
        format!("%{:02X}{rest}", first as u8),
        format!("{first}%E2%80%8B{rest}"),
        lit.replace('s', "%C5%BF"),
    ]
}

/// How the generator's requests travel.
#[derive(Clone, Copy, Debug)]
enum Wire {
    /// HTTP/1.1 on portalgate's own codec.
    Fast,
    /// HTTP/1.1 on hyper's.
    Hyper,
    /// HTTP/2 (prior knowledge), `:method` and `:path` as generated.
    H2,
}

/// One request per case; the status.
async fn send_on(wire: Wire, proxy: &proxy::RunningProxy, method: &str, path: &str) -> u16 {
    if let Wire::H2 = wire {
        let mut h2 = crate::support::client::h2c(proxy.addr).await;
        let req = http::Request::builder()
            .method(http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(format!("http://portal{path}"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap();
        return match h2.send_request(req).await {
            Ok(r) => r.status().as_u16(),
            // A stream the proxy reset never reached the backend either.
            Err(_) => 0,
        };
    }
    send(proxy, method, path).await
}

/// The status of `request`, sent on a new connection.
async fn status(proxy: &proxy::RunningProxy, request: impl AsRef<[u8]>) -> u16 {
    status_of(&raw(proxy.addr, request.as_ref()).await)
}

/// One request per case over a new connection; the status.
async fn send(proxy: &proxy::RunningProxy, method: &str, path: &str) -> u16 {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    status(proxy, req).await
}

fn mutate(g: &mut Gen, template: &str, tenant: &str) -> String {
    let prefix = g.pick(&["", "/.", "/x/..", "/v1/.."]).to_string();
    let mut path = prefix;
    for seg in template.split('/').skip(1) {
        path.push('/');
        let s = match seg {
            "{tenant}" => g.pick(&tenant_spellings(tenant)).clone(),
            s if s.starts_with('{') => "u1".to_string(),
            s => g.pick(&literal_spellings(s)).clone(),
        };
        path.push_str(&s);
        if *g.pick(&[false, false, false, true]) {
            path.push('/');
        }
    }
    path
}

async fn run_generator(wire: Wire) {
    let backend = Backend::start().await;
    let fast_path = matches!(wire, Wire::Fast);
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(&format!("[server]\nhttp1_fast_path = {fast_path}"))
        .start()
        .await;
    let de = model::guid(DE).unwrap();
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let (mut protected, mut harmless, mut refused_harmless) = (0, 0, Vec::new());
    for case in 0..300 {
        let (method, template) = *g.pick(&PROTECTED);
        let method = g.pick(&[method.to_string(), method.to_lowercase()]).clone();
        let tenant = if case % 4 == 3 { GLOBAL } else { DE };
        let path = mutate(&mut g, template, tenant);
        let before = backend.seen().len();
        let status = send_on(wire, &proxy, &method, &path).await;
        let reached = backend.seen().len() > before;
        if model::protected(&method, &path) == Some(de) {
            protected += 1;
            assert!(
                !reached && (status >= 400 || status == 0),
                "case {case}: {method} {path} reached the backend ({status})"
            );
        } else if model::segments(&path).is_some() && !path.contains("%E2%80%8B") {
            harmless += 1;
            if !reached {
                refused_harmless.push(format!("{status} {method} {path}"));
            }
        }
    }
    eprintln!(
        "lenient generator ({wire:?}): {protected} protected cases all held; \
         {} of {harmless} harmless cases refused",
        refused_harmless.len()
    );
    for r in &refused_harmless {
        eprintln!("  refused: {r}");
    }
    assert!(protected >= 100, "too few protected cases: {protected}");
    // A global tenant in its plain spelling on a plain path is always served.
    let plain = format!("/v1/customers/{GLOBAL}/users");
    let before = backend.seen().len();
    assert_eq!(send(&proxy, "POST", &plain).await, 200);
    assert_eq!(backend.seen().len(), before + 1);
}

#[tokio::test]
async fn generated_spellings_of_protected_routes_never_reach_the_backend_fast_path() {
    run_generator(Wire::Fast).await;
}

#[tokio::test]
async fn generated_spellings_of_protected_routes_never_reach_the_backend_hyper() {
    run_generator(Wire::Hyper).await;
}

#[tokio::test]
async fn generated_spellings_of_protected_routes_never_reach_the_backend_h2() {
    run_generator(Wire::H2).await;
}

#[tokio::test]
async fn method_override_and_duplicate_credentials_are_not_forwarded_as_judged() {
    let (backend, proxy) = germany().await;
    let users = format!("/v1/customers/{GLOBAL}/users");
    for (extra, want) in [
        (
            "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n",
            400,
        ),
        ("X-HTTP-Method-Override: DELETE\r\n", 200),
    ] {
        let req = format!(
            "POST {users} HTTP/1.1\r\nHost: portal\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        assert_eq!(status(&proxy, req).await, want, "{extra}");
    }
    let seen = backend.only();
    assert!(!seen.headers.contains_key("x-http-method-override"));
}

/// `query:NAME`: the tenant in the query string, read as ASP.NET's model
/// binding reads it (names case-insensitive and percent-decoded, `+` a
/// space); a name given twice or a value that is not a readable GUID is
/// refused.
#[tokio::test]
async fn a_tenant_in_the_query_string_is_judged() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(
            "[[rules]]\nid = \"report-by-query\"\nmatch.methods = [\"GET\"]\nmatch.path = \"/v1/reports\"\n\
             match.regions = [\"germany\"]\nmatch.tenant_from = [\"query:tenantId\"]\naction.type = \"deny\"\n",
        )
        .start()
        .await;
    let get = |q: String| {
        status(
            &proxy,
            format!("GET /v1/reports?{q} HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n"),
        )
    };
    for q in [
        format!("tenantId={DE}"),
        format!("x=1&TENANTID={}", DE.to_uppercase()),
        format!("%74enantId=%7B{DE}%7D"),
        format!("tenantid=+{DE}+"),
    ] {
        assert_eq!(get(q.clone()).await, 403, "{q}");
    }
    for q in [
        format!("tenantId={DE}&tenantId={GLOBAL}"),
        format!("tenantId=%EF%BC%90{}", &DE[1..]),
        format!("tenantId={DE}%E2%80%8B"),
        "tenantId=%ZZ".to_string(),
    ] {
        assert_eq!(get(q.clone()).await, 400, "{q}");
    }
    assert!(backend.seen().is_empty(), "{:?}", backend.seen());
    for q in [
        format!("tenantId={GLOBAL}"),
        "other=1".to_string(),
        String::new(),
    ] {
        assert_eq!(get(q.clone()).await, 200, "{q}");
    }
    assert_eq!(backend.seen().len(), 3);
}

/// The same generator at the judgement itself, without sockets, for many
/// more cases: every request the model routes to a protected endpoint for
/// a Germany tenant gets a plan other than "forward".
#[test]
fn twenty_thousand_generated_spellings_are_never_planned_as_forwards() {
    use portalgate::head::HeadView;
    use portalgate::proxy::judge::{Judge, Plan};
    let dir = tempfile::tempdir().unwrap();
    let text = ProxyBuilder::new("http://127.0.0.1:9")
        .germany()
        .render(dir.path());
    let file = dir.path().join("portalgate.toml");
    std::fs::write(&file, text).unwrap();
    let config = portalgate::config::load(&file).unwrap();
    let judge = Judge::new(&config, &portalgate::telemetry::metrics::Metrics::default());
    let conn = portalgate::proxy::ConnInfo {
        peer: "127.0.0.1:0".parse().unwrap(),
        tls: false,
    };
    let host = [httparse::Header {
        name: "Host",
        value: b"portal",
    }];
    let de = model::guid(DE).unwrap();
    let mut g = Gen(0x2545_f491_4f6c_dd1d);
    let (mut protected, mut forwarded_harmless) = (0, 0);
    for case in 0..20_000 {
        let (method, template) = *g.pick(&PROTECTED);
        let method = g.pick(&[method.to_string(), method.to_lowercase()]).clone();
        let tenant = if case % 4 == 3 { GLOBAL } else { DE };
        let path = mutate(&mut g, template, tenant);
        let m = http::Method::from_bytes(method.as_bytes()).unwrap();
        let view = HeadView::of_raw(&m, &path, &host);
        let forwards = matches!(judge.decide(&view, &conn).plan, Plan::Forward(_));
        if model::protected(&method, &path) == Some(de) {
            protected += 1;
            assert!(
                !forwards,
                "case {case}: {method} {path} planned as a forward"
            );
        } else if forwards {
            forwarded_harmless += 1;
        }
    }
    eprintln!("{protected} protected spellings held; {forwarded_harmless} others forwarded");
    assert!(protected > 10_000, "{protected}");
}

/// Tenant headers are read as `Guid.TryParse` reads them or refused; an
/// underscored spelling of the header never reaches the backend; a scheme
/// other than http/https is refused, in an absolute-form target and in
/// HTTP/2's `:scheme`.
#[tokio::test]
async fn tenant_headers_underscored_names_and_schemes() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url())
        .germany()
        .section(
            "[[rules]]\nid = \"report-by-header\"\nmatch.path = \"/v1/reports\"\n\
             match.regions = [\"germany\"]\nmatch.tenant_from = [\"header:x-tenant-id\"]\naction.type = \"deny\"\n",
        )
        .start()
        .await;
    let send_raw = |head: Vec<u8>| status(&proxy, head);
    let with_header = |value: &[u8]| {
        let mut h =
            b"GET /v1/reports HTTP/1.1\r\nHost: portal\r\nConnection: close\r\nX-Tenant-Id: "
                .to_vec();
        h.extend_from_slice(value);
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    let x = "{0x0a1b2c3d, 0x0000, 0x4000, {0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}";
    for (value, want) in [
        (DE.as_bytes().to_vec(), 403),
        (x.as_bytes().to_vec(), 403),
        (format!("+{}", &DE[1..]).into_bytes(), 403),
        (format!("\u{a0}{DE}\u{3000}").into_bytes(), 400),
        (format!("\u{ff10}{}", &DE[1..]).into_bytes(), 400),
        (format!("{DE}\u{200b}").into_bytes(), 400),
        (b"contoso.onmicrosoft.com".to_vec(), 200),
    ] {
        assert_eq!(
            send_raw(with_header(&value)).await,
            want,
            "{}",
            String::from_utf8_lossy(&value)
        );
    }
    let underscored = format!(
        "GET /v1/reports HTTP/1.1\r\nHost: portal\r\nConnection: close\r\nX_Tenant_Id: {DE}\r\n\r\n"
    );
    assert_eq!(send_raw(underscored.into_bytes()).await, 200);
    let seen = backend.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|s| !s.headers.contains_key("x_tenant_id")));

    let absolute =
        b"GET ftp://portal/v1/reports HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n";
    assert_eq!(send_raw(absolute.to_vec()).await, 400);
    let mut h2 = crate::support::client::h2c(proxy.addr).await;
    let req = http::Request::get("ftp://portal/v1/reports")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let status = h2.send_request(req).await.map(|r| r.status().as_u16());
    assert!(matches!(status, Ok(400)), "{status:?}");
    assert_eq!(backend.seen().len(), 2);
}
