//! `portalgate explain`: dry-run one request through the policy and show
//! why each rule matched or not, the judgement the proxy makes of it (the
//! same [`Judge::decide`] both codecs run), then the response the proxy
//! really gives (served in-process with a stub upstream, as `portalgate
//! test` does).

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;

use crate::head::{Fields, HeadView};
use crate::proxy::inspect::{self, Inspected};
use crate::proxy::judge::{Judge, Plan};
use crate::proxy::ConnInfo;

use super::test::{Harness, REACHED};
use super::{load_config, Exit};
use crate::canonical::{canonical_host, canonical_path};
use crate::cli::ExplainArgs;
use crate::policy::{BodyView, RequestView, Verdict, Why};

pub async fn run(args: ExplainArgs) -> Exit {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut map = HeaderMap::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            eprintln!("portalgate: -H {h:?}: write 'Name: value'");
            return Exit::Usage;
        };
        let (name, value) = (name.trim(), value.trim());
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                map.append(n, v);
                headers.insert(name.to_string(), value.to_string());
            }
            _ => {
                eprintln!("portalgate: -H {h:?}: not a valid header");
                return Exit::Usage;
            }
        }
    }
    // A full URL sets Host; a path uses -H Host or "portal".
    let (host, target) = match args.url.split_once("://") {
        Some((_, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            headers
                .entry("Host".into())
                .or_insert_with(|| authority.to_string());
            (
                authority.to_string(),
                if path.is_empty() {
                    "/".to_string()
                } else {
                    path.to_string()
                },
            )
        }
        None => (
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                .map_or("portal".into(), |(_, v)| v.clone()),
            args.url.clone(),
        ),
    };
    let method: Method = match args.method.parse() {
        Ok(m) => m,
        Err(_) => {
            eprintln!("portalgate: -X {:?} is not a method", args.method);
            return Exit::Usage;
        }
    };
    let path = target.split('?').next().unwrap_or("/");
    // Judged first: region lookups it makes are what the rule lines show.
    let metrics = crate::telemetry::metrics::Metrics::default();
    let judge = Judge::new(&config, &metrics);
    let judged = judge_request(&judge, &method, &target, &host, &map, args.data.as_deref()).await;
    out!("request    {method} {target}");
    out!("host       {host} -> {}", canonical_host(&host));
    let canonical = match canonical_path(path) {
        Ok(p) => {
            out!("canonical  {}", p.as_str());
            Some(p)
        }
        Err(e) => {
            out!("canonical  rejected: {e} (400, never forwarded)");
            None
        }
    };

    if let Some(canonical) = &canonical {
        let chost = canonical_host(&host);
        let chost = chost.as_ref();
        let bearer_tid = map
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let bearer_tid = crate::policy::BearerTid::of(bearer_tid);
        // The path the rules judge: as a lenient backend reads it.
        let folded = crate::canonical::fold(canonical.as_str()).ok().flatten();
        if let Some(f) = &folded {
            out!("judged as  {f} (as a lenient backend reads it)");
        }
        let view = RequestView {
            method: &method,
            host: Some(chost),
            path: folded.as_deref().unwrap_or(canonical.as_str()),
            query: target.split_once('?').map(|(_, q)| q),
            headers: Fields::Map(&map),
            bearer_tid,
        };
        let parsed = args.data.as_deref().map(inspect::json);
        let body = match &parsed {
            None => BodyView::NotRead,
            Some(Some(json)) => BodyView::Json(json),
            Some(None) => BodyView::Unreadable,
        };
        out!("\nrules");
        let seen = judge.seen(&[]);
        for (i, t) in config
            .rules
            .trace(&view, body, judge.regions(seen.as_ref()))
            .iter()
            .enumerate()
        {
            let what = match &t.verdict {
                Verdict::Skipped(Why::Off) => "skipped: off".to_string(),
                Verdict::Skipped(Why::Path) => "no: path".to_string(),
                Verdict::Skipped(Why::Method) => "no: method".to_string(),
                Verdict::Skipped(Why::Host) => "no: host".to_string(),
                Verdict::Skipped(Why::Header) => "no: header condition".to_string(),
                Verdict::Skipped(Why::Body) => "no: body field absent".to_string(),
                Verdict::Skipped(Why::RegionUnavailable) => {
                    "no: the tenant's region could not be discovered (report-only: skipped)"
                        .to_string()
                }
                Verdict::Skipped(Why::Region(r)) => {
                    format!("no: region {} ({})", r.region, describe(r))
                }
                Verdict::Matched(r) => format!(
                    "MATCH ({}){}",
                    describe(r),
                    if t.rule.mode == crate::policy::Mode::ReportOnly {
                        ", report-only: forwarded"
                    } else {
                        ""
                    }
                ),
                Verdict::NeedsBody => "needs the body to decide (give it with -d)".to_string(),
                Verdict::NeedsRegion(t) => {
                    format!("needs the region of tenant {t}: region discovery has no answer")
                }
                Verdict::Refused(e) => format!("REFUSED: {e}"),
                Verdict::NotReached => "not reached".to_string(),
            };
            out!("  {:>2}  {:<32} {}", i + 1, t.rule.id, what);
        }
    }

    let harness = match Harness::start(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    let resp = match harness
        .send(
            method.as_str(),
            &target,
            &headers,
            args.data.clone().unwrap_or_default(),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    let forwarded = resp.headers().contains_key(REACHED);
    out!("\ndecision   {judged}");
    out!("\nresponse   {:?} {}", resp.version(), resp.status());
    for (k, v) in resp.headers() {
        if k != REACHED && k != "date" {
            out!("  {k}: {}", v.to_str().unwrap_or("<binary>"));
        }
    }
    if !forwarded {
        match resp.into_body().collect().await {
            Ok(b) => out!("\n{}", String::from_utf8_lossy(&b.to_bytes())),
            Err(e) => eprintln!("portalgate: reading the response failed: {e}"),
        }
    }
    Exit::Ok
}

/// The judgement of the request, as `serve` makes it, in words; region
/// lookups are made as `serve` makes them.
async fn judge_request(
    judge: &Judge,
    method: &Method,
    target: &str,
    host: &str,
    headers: &HeaderMap,
    data: Option<&str>,
) -> String {
    let mut headers = headers.clone();
    if let Ok(h) = HeaderValue::from_str(host) {
        headers.entry(http::header::HOST).or_insert(h);
    }
    let Ok(mut parts) = http::Request::builder()
        .method(method.clone())
        .uri(target)
        .body(())
        .map(|r| r.into_parts().0)
    else {
        return "refused by the proxy (bad_request: the request target is not valid)".into();
    };
    parts.headers = headers;
    let view = HeadView::of_parts(&parts);
    let conn = ConnInfo {
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: false,
    };
    let mut judgement = judge.decide(&view, &conn);
    judgement = judge
        .settle(judgement, &view, crate::policy::BodyView::NotRead, &conn)
        .await;
    if let Plan::ReadBody(pending) = judgement.plan {
        // The body the request below is sent with.
        let body = bytes::Bytes::copy_from_slice(data.unwrap_or("").as_bytes());
        let inspected = if inspect::readable(view.fields, judge.max_inspect()) {
            inspect::parse(body)
        } else {
            Inspected::Unreadable
        };
        let body = match &inspected {
            Inspected::Json(_, json) => crate::policy::BodyView::Json(json),
            Inspected::Unreadable => crate::policy::BodyView::Unreadable,
        };
        let resumed = judge.resume(pending, &view, body, &conn);
        judgement = judge.settle(resumed, &view, body, &conn).await;
    }
    match (judgement.plan, &judgement.facts.enforced) {
        (Plan::Forward(_), _) => "forwarded to the upstream".into(),
        (Plan::Answer(_), Some(m)) => format!("answered by rule {}", m.rule.id),
        (Plan::Answer(_), None) => "answered by the proxy".into(),
        (Plan::Reject(e), _) => format!("refused by the proxy ({}: {e})", e.code()),
        (Plan::ReadBody(_), _) => "refused by the proxy (the body could not be read)".into(),
        (Plan::Discover(_), _) => "refused by the proxy (the tenant's region is not known)".into(),
    }
}

fn describe(r: &crate::policy::Resolved) -> String {
    match (&r.tenant, &r.tenant_source) {
        (Some(t), Some(s)) => format!(
            "tenant {t} from {s}, region from {}",
            r.region_source.as_str()
        ),
        _ => format!("no tenant id, region from {}", r.region_source.as_str()),
    }
}
