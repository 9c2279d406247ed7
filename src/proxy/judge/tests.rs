//! Whatever head the pass-through codec reads, hyper's view of the same
//! bytes is judged the same: canonical path, host, tenant, region and
//! decision.

use proptest::prelude::*;

use super::*;
use crate::proxy::pass::head::{self, Parse};

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
const GLOBAL: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";

fn judge() -> &'static Judge {
    static JUDGE: std::sync::OnceLock<Judge> = std::sync::OnceLock::new();
    JUDGE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
        Judge::new(
            &crate::config::load(&path).expect("the demo config"),
            &crate::telemetry::metrics::Metrics::default(),
        )
    })
}

/// What a judgement comes to, without the generated ids.
fn summary(j: &Judgement<'_, '_>) -> String {
    let facts = |m: &Option<crate::policy::Matched<'_, Action>>| {
        m.as_ref().map(|m| {
            format!(
                "{} tenant={:?} from={:?} region={} ({})",
                m.rule.id,
                m.resolved.tenant.map(|t| t.to_string()),
                m.resolved.tenant_source,
                m.resolved.region,
                m.resolved.region_source.as_str()
            )
        })
    };
    let plan = match &j.plan {
        Plan::Forward(f) => format!(
            "forward {} host={} hop-host={:?} upgrade={:?}",
            f.target(),
            f.host,
            f.hop.host,
            f.upgrade
        ),
        Plan::Answer(a) => format!(
            "answer {} {:?} {}",
            a.status,
            a.get("location").map(String::from_utf8_lossy),
            a.body_bytes().len()
        ),
        Plan::Reject(e) => format!("reject {}", e.code()),
        Plan::ReadBody(p) => format!("read body for {}", p.resume.rule().id),
        Plan::Discover(p) => format!("discover the region for {}", p.resume.rule().id),
    };
    format!(
        "{plan}; enforced={:?}; reported={:?}; host={:?}; path={:?}",
        facts(&j.facts.enforced),
        facts(&j.facts.report_only),
        j.facts.texts.as_ref().and_then(|t| t.host()),
        j.facts.texts.as_ref().and_then(|t| t.path())
    )
}

fn conn() -> ConnInfo {
    ConnInfo {
        peer: ([192, 0, 2, 7], 40000).into(),
        tls: false,
    }
}

/// Judges `text` as the pass-through codec reads it, and as hyper would
/// (the same bytes through `http`'s URI and `HeaderMap`); `None` when the
/// pass-through codec does not read it.
fn both(text: &str) -> Option<(String, String)> {
    let mut room = head::room();
    let Parse::Head(req, _) = head::parse_request(text.as_bytes(), &mut room) else {
        return None;
    };
    let method = http::Method::from_bytes(req.method?.as_bytes()).ok()?;
    let target = req.path?;
    let raw = HeadView::of_raw(&method, target, req.headers);
    let by_pass = summary(&judge().decide(&raw, &conn()));
    let mut builder = http::Request::builder()
        .method(method.clone())
        .uri(target)
        .version(http::Version::HTTP_11);
    for h in req.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    // What hyper's parser refuses never reaches a handler.
    let (parts, ()) = builder.body(()).ok()?.into_parts();
    let view = HeadView::of_parts(&parts);
    let by_hyper = summary(&judge().decide(&view, &conn()));
    Some((by_pass, by_hyper))
}

#[test]
fn known_heads_are_judged_the_same() {
    for text in [
        format!(
            "POST /v1/customers/{DE}/users HTTP/1.1\r\nHost: p\r\nAccept: application/json\r\n\r\n"
        ),
        format!("GET /dashboard/customers/%7B{DE}%7D/Users/x HTTP/1.1\r\nHost: p\r\n\r\n"),
        format!("PATCH /v1/customers/{DE}/users/u HTTP/1.1\r\nHost: p\r\n\r\n"),
        format!("GET /v1/customers/{GLOBAL}/users HTTP/1.1\r\nHost: P:80\r\n\r\n"),
        "GET /v1/x%2Fy HTTP/1.1\r\nHost: p\r\n\r\n".to_string(),
        "GET / HTTP/1.1\r\n\r\n".to_string(),
    ] {
        let (a, b) = both(&text).expect("a head the pass-through codec reads");
        assert_eq!(a, b, "{text}");
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v1".to_string()),
        Just("V1".to_string()),
        Just("customers".to_string()),
        Just(DE.to_string()),
        Just(DE.to_uppercase()),
        Just(format!("%7B{DE}%7D")),
        Just(GLOBAL.to_string()),
        Just("users".to_string()),
        Just("Users".to_string()),
        Just("u1".to_string()),
        Just("licenses".to_string()),
        Just("directoryroles".to_string()),
        Just("usermembers".to_string()),
        Just("dashboard".to_string()),
        Just("account".to_string()),
        Just("usermanagement".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%2e%2E".to_string()),
        Just("%75sers".to_string()),
        Just("a%2Fb".to_string()),
        Just("x;y".to_string()),
        Just("".to_string()),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Accept: application/json".to_string()),
        Just("Accept: text/html;q=0.9, application/problem+json".to_string()),
        Just("accept-language: de-DE".to_string()),
        Just("X-Request-Id: abc-123".to_string()),
        Just("X-Request-Id: bad id".to_string()),
        Just("Content-Type: application/json".to_string()),
        Just("Content-Length: 0".to_string()),
        Just("Content-Length: 12".to_string()),
        Just("Content-Length: 1x".to_string()),
        Just("Connection: close".to_string()),
        Just("Via: 1.1 edge".to_string()),
        Just("MS-RequestId: r-1".to_string()),
        Just("Host: second.example".to_string()),
        Just("User-Agent: probe/1".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whatever_the_pass_through_codec_reads_hyper_judges_the_same(
        method in prop_oneof![
            Just("GET"), Just("POST"), Just("PATCH"), Just("DELETE"), Just("HEAD"), Just("PUT"),
            Just("get"), Just("patch")
        ],
        segments in proptest::collection::vec(segment(), 0..7),
        query in prop_oneof![Just(""), Just("?api-version=1"), Just("?a=%2F")],
        host in prop_oneof![
            Just(Some("partner.example")),
            Just(Some("PartnerCenter.MicrosoftOnline.de")),
            Just(Some("partner.example:8443")),
            Just(Some("[::1]:443")),
            Just(Some("bad host")),
            Just(None),
        ],
        fields in proptest::collection::vec(field(), 0..5),
    ) {
        let mut text = format!("{method} /{}{query} HTTP/1.1\r\n", segments.join("/"));
        if let Some(h) = host {
            text.push_str(&format!("Host: {h}\r\n"));
        }
        for f in fields {
            text.push_str(&f);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        if let Some((by_pass, by_hyper)) = both(&text) {
            prop_assert_eq!(by_pass, by_hyper, "{}", text);
        }
    }
}

/// The generated heads are mostly ones the pass-through codec reads, so
/// the property above is not vacuous.
#[test]
fn the_generator_reaches_the_pass_through_codec() {
    let read = [
        format!("PATCH /v1/customers/%7B{DE}%7D/users/u1?api-version=1 HTTP/1.1\r\nHost: partner.example:8443\r\nContent-Length: 12\r\n\r\n"),
        "get /v1/x HTTP/1.1\r\nHost: [::1]:443\r\nX-Request-Id: bad id\r\n\r\n".to_string(),
    ];
    for text in read {
        assert!(both(&text).is_some(), "{text}");
    }
}
