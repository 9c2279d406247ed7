//! The cost of one policy decision — canonicalise the path, resolve the
//! tenant and region, evaluate the rules — at 10, 100, 1,000 and 10,000
//! rules; and of the whole judgement of one request head as the
//! pass-through codec makes it (parse, intake, decide, render the answer
//! as HTTP/1.1 bytes) with the shipped Germany pack. Run with
//! `cargo bench --bench decision`.
//!
//! The rule sets are the Germany-style rules plus filler rules on other
//! paths, so the matching rule is the last one in the file: the worst case
//! for a first-match-wins evaluation without a `RegexSet`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, Method};
use portalgate::canonical::canonical_path;
use portalgate::head::HeadView;
use portalgate::policy::{
    BodyView, Evaluation, Matcher, Mode, PathPattern, Regions, RequestView, Rule, RuleSet,
    TenantSource,
};
use portalgate::proxy::judge::Judge;
use portalgate::proxy::{pass, ConnInfo};
use portalgate::tenant::{Directory, Entry, Region, TenantId};

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

fn rule(id: String, methods: &[&str], template: String) -> Rule<()> {
    Rule {
        id,
        description: String::new(),
        mode: Mode::Enforce,
        matcher: Matcher {
            methods: methods.iter().map(|m| m.parse().unwrap()).collect(),
            path: Some(PathPattern::Template {
                template,
                case_insensitive: true,
            }),
            regions: vec![Region::new("germany")],
            tenant_from: vec![TenantSource::Capture("tenant".into())],
            ..Matcher::default()
        },
        action: (),
    }
}

fn rules(n: usize) -> RuleSet<()> {
    let mut v: Vec<Rule<()>> = (0..n - 1)
        .map(|i| {
            rule(
                format!("filler-{i}"),
                &["POST", "PATCH"],
                format!("/v1/area{i}/{{tenant}}/items/{{item}}"),
            )
        })
        .collect();
    v.push(rule(
        "user-create".into(),
        &["POST"],
        "/v1/customers/{tenant}/users".into(),
    ));
    RuleSet::new(v).unwrap()
}

fn directory() -> Directory {
    let mut entries = HashMap::new();
    entries.insert(
        TenantId::parse(DE).unwrap(),
        Entry {
            region: Region::new("germany"),
            name: None,
        },
    );
    Directory::new(entries, HashMap::new(), Region::new("global"))
}

fn decide(
    set: &RuleSet<()>,
    dir: &Directory,
    method: &Method,
    raw_path: &str,
    headers: &HeaderMap,
) -> bool {
    let path = canonical_path(raw_path).unwrap();
    let view = RequestView {
        method,
        host: Some("api.partnercenter.microsoft.com"),
        path: path.as_str(),
        query: None,
        headers: portalgate::head::Fields::Map(headers),
        bearer_tid: Default::default(),
    };
    match set
        .evaluate(&view, BodyView::NotRead, Regions::of(dir))
        .unwrap()
    {
        Evaluation::Decided(d) => d.enforced.is_some(),
        Evaluation::NeedBody(_) | Evaluation::NeedRegion(_) => false,
    }
}

fn bench(c: &mut Criterion) {
    let dir = directory();
    let headers = HeaderMap::new();
    let intercepted = format!("/v1/customers/{DE}/users");
    let forwarded = format!("/v1/customers/{DE}/subscriptions");
    let mut group = c.benchmark_group("decision");
    for n in [10usize, 100, 1_000, 10_000] {
        let set = rules(n);
        assert!(decide(&set, &dir, &Method::POST, &intercepted, &headers));
        assert!(!decide(&set, &dir, &Method::GET, &forwarded, &headers));
        group.bench_with_input(BenchmarkId::new("intercepted", n), &set, |b, set| {
            b.iter(|| decide(set, &dir, &Method::POST, black_box(&intercepted), &headers))
        });
        group.bench_with_input(BenchmarkId::new("forwarded", n), &set, |b, set| {
            b.iter(|| decide(set, &dir, &Method::GET, black_box(&forwarded), &headers))
        });
    }
    group.finish();
}

/// Parses `head`, judges it as the pass-through codec does, and writes the
/// answer (or the upstream head) as bytes: what one request costs above
/// the socket.
fn judge_head(judge: &Judge, head: &[u8], out: &mut Vec<u8>) -> usize {
    use portalgate::proxy::judge::Plan;
    let mut room = pass::head::room();
    let pass::head::Parse::Head(req, _) = pass::head::parse_request(head, &mut room) else {
        panic!("not a head");
    };
    let method = Method::from_bytes(req.method.unwrap().as_bytes()).unwrap();
    let view = HeadView::of_raw(&method, req.path.unwrap(), req.headers);
    let conn = ConnInfo {
        peer: ([127, 0, 0, 1], 40000).into(),
        tls: false,
    };
    out.clear();
    match judge.decide(&view, &conn).plan {
        Plan::Answer(a) => a.write_http1(out, false, true, std::time::SystemTime::now()),
        Plan::Forward(f) => pass::write_request_head(out, &view, &f),
        _ => panic!("unexpected plan"),
    }
    out.len()
}

fn judgement(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let config = portalgate::config::load(&dir).unwrap();
    let judge = Judge::new(&config, &portalgate::telemetry::metrics::Metrics::default());
    let explain = format!(
        "POST /v1/customers/{DE}/users HTTP/1.1\r\nHost: api.partnercenter.microsoft.com\r\n\
         Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    );
    let redirect = format!(
        "GET /dashboard/customers/{DE}/users HTTP/1.1\r\nHost: partner.example\r\n\
         Accept: text/html\r\nUser-Agent: bench\r\n\r\n"
    );
    let forward = format!(
        "GET /v1/customers/{DE}/users HTTP/1.1\r\nHost: api.partnercenter.microsoft.com\r\n\
         Accept: application/json\r\nUser-Agent: bench\r\n\r\n"
    );
    let mut out = Vec::with_capacity(4096);
    let mut group = c.benchmark_group("judgement");
    for (name, head) in [
        ("explain", &explain),
        ("redirect", &redirect),
        ("forward", &forward),
    ] {
        assert!(judge_head(&judge, head.as_bytes(), &mut out) > 0);
        group.bench_function(name, |b| {
            b.iter(|| judge_head(&judge, black_box(head.as_bytes()), &mut out))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, judgement);
criterion_main!(benches);
