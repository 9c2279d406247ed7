use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const GERMANY_TENANT: &str = "6c1a6ba8-f06d-4b67-a9dd-5e2fdc4b8f1d";

fn mapping() -> Mapping {
    Mapping {
        cloud_instance_name: vec![
            ("microsoftonline.de".into(), Region::new("germany")),
            ("microsoftonline.com".into(), Region::new("global")),
        ],
        tenant_region_scope: vec![("DE".into(), Region::new("germany"))],
    }
}

fn limits() -> Limits {
    Limits {
        positive_ttl: Duration::from_secs(300),
        negative_ttl: Duration::from_secs(30),
        max_entries: 4,
        max_in_flight: 4,
        timeout: Duration::from_secs(2),
    }
}

fn tenant(n: u128) -> TenantId {
    TenantId::parse(&format!("{n:032x}")).expect("a GUID")
}

#[test]
fn metadata_names_the_region_by_cloud_then_scope() {
    let m = mapping();
    let read = |body: &str| read_metadata(200, body.as_bytes(), &m);
    assert_eq!(
        read(r#"{"cloud_instance_name":"MicrosoftOnline.DE","tenant_region_scope":"EU"}"#),
        Ok(Found::Region(Region::new("germany")))
    );
    assert_eq!(
        read(r#"{"cloud_instance_name":"microsoftonline.com","tenant_region_scope":"DE"}"#),
        Ok(Found::Region(Region::new("global"))),
        "the cloud decides before the scope"
    );
    assert_eq!(
        read(r#"{"cloud_instance_name":"microsoftonline.us","tenant_region_scope":"DE"}"#),
        Ok(Found::Region(Region::new("germany"))),
        "an unmapped cloud falls back to the scope"
    );
    assert_eq!(
        read(r#"{"cloud_instance_name":"microsoftonline.us","tenant_region_scope":"NA"}"#),
        Ok(Found::Unmapped)
    );
    assert_eq!(read_metadata(400, b"{}", &m), Ok(Found::Unknown));
    assert_eq!(read_metadata(404, b"", &m), Ok(Found::Unknown));
}

#[test]
fn anything_else_is_an_error_never_a_region() {
    let m = mapping();
    for status in [301, 429, 500, 503] {
        assert_eq!(
            read_metadata(status, b"{}", &m),
            Err(LookupError::Status(status))
        );
    }
    for body in [
        "",
        "<html>",
        "[]",
        "\"microsoftonline.de\"",
        "{}",
        r#"{"issuer":"x"}"#,
        r#"{"cloud_instance_name":42}"#,
        r#"{"cloud_instance_name":["microsoftonline.de"]}"#,
        "{\"cloud_instance_name\":\"microsoftonline.de\"",
    ] {
        assert!(
            matches!(
                read_metadata(200, body.as_bytes(), &m),
                Err(LookupError::Garbage(_))
            ),
            "{body:?}"
        );
    }
}

#[test]
fn the_url_template_gets_the_canonical_id() {
    let t = TenantId::parse(&GERMANY_TENANT.to_uppercase()).expect("a GUID");
    assert_eq!(
        metadata_url(
            "https://login.example/{tenant}/v2.0/.well-known/openid-configuration",
            t
        ),
        format!("https://login.example/{GERMANY_TENANT}/v2.0/.well-known/openid-configuration")
    );
}

/// A lookup that counts its calls and answers after `delay`.
fn counted(calls: &Arc<AtomicUsize>, delay: Duration, outcome: Outcome) -> impl FnOnce() -> Lookup {
    let calls = calls.clone();
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            outcome
        })
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_for_one_tenant_make_one_lookup() {
    let cache = Arc::new(Cache::new(limits()));
    let calls = Arc::new(AtomicUsize::new(0));
    let germany = Ok(Found::Region(Region::new("germany")));
    let waits: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            let lookup = counted(&calls, Duration::from_millis(200), germany.clone());
            tokio::spawn(async move { cache.resolve(tenant(7), lookup).await })
        })
        .collect();
    for w in waits {
        assert_eq!(w.await.expect("no panic"), germany);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        cache.cached(tenant(7)),
        Some(Found::Region(Region::new("germany")))
    );
    let c = cache.counts();
    assert_eq!((c.lookups, c.misses, c.errors), (1, 100, 0));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_does_not_cancel_the_lookup() {
    let cache = Arc::new(Cache::new(limits()));
    let calls = Arc::new(AtomicUsize::new(0));
    let germany = Ok(Found::Region(Region::new("germany")));
    let first = tokio::spawn({
        let cache = cache.clone();
        let lookup = counted(&calls, Duration::from_millis(500), germany.clone());
        async move { cache.resolve(tenant(1), lookup).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.abort();
    let second = cache
        .resolve(
            tenant(1),
            counted(&calls, Duration::ZERO, Err(LookupError::Busy)),
        )
        .await;
    assert_eq!(second, germany, "the second waits for the first's lookup");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn answers_expire_after_their_ttl_and_unknown_tenants_sooner() {
    let cache = Arc::new(Cache::new(limits()));
    let calls = Arc::new(AtomicUsize::new(0));
    let germany = Ok(Found::Region(Region::new("germany")));
    cache
        .resolve(tenant(1), counted(&calls, Duration::ZERO, germany.clone()))
        .await
        .expect("found");
    cache
        .resolve(
            tenant(2),
            counted(&calls, Duration::ZERO, Ok(Found::Unknown)),
        )
        .await
        .expect("found");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(
        cache.cached(tenant(1)),
        Some(Found::Region(Region::new("germany")))
    );
    assert_eq!(cache.cached(tenant(2)), None, "the negative TTL is over");
    cache
        .resolve(tenant(1), counted(&calls, Duration::ZERO, germany.clone()))
        .await
        .expect("found");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a hit");
    assert_eq!(cache.counts().hits, 1);
    tokio::time::advance(Duration::from_secs(300)).await;
    assert_eq!(cache.cached(tenant(1)), None, "the positive TTL is over");
}

#[tokio::test(start_paused = true)]
async fn failures_and_timeouts_are_not_kept() {
    let cache = Arc::new(Cache::new(limits()));
    let calls = Arc::new(AtomicUsize::new(0));
    let failed = cache
        .resolve(
            tenant(1),
            counted(&calls, Duration::ZERO, Err(LookupError::Status(503))),
        )
        .await;
    assert_eq!(failed, Err(LookupError::Status(503)));
    let slow = cache
        .resolve(
            tenant(1),
            counted(&calls, Duration::from_secs(60), Ok(Found::Unmapped)),
        )
        .await;
    assert_eq!(slow, Err(LookupError::Timeout(Duration::from_secs(2))));
    assert_eq!(cache.cached(tenant(1)), None);
    let ok = cache
        .resolve(
            tenant(1),
            counted(&calls, Duration::ZERO, Ok(Found::Unmapped)),
        )
        .await;
    assert_eq!(ok, Ok(Found::Unmapped), "tried again");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(cache.counts().errors, 2);
}

#[tokio::test(start_paused = true)]
async fn the_cache_holds_at_most_its_cap_and_never_evicts_a_lookup_in_flight() {
    let cache = Arc::new(Cache::new(limits()));
    let calls = Arc::new(AtomicUsize::new(0));
    // Four lookups in flight fill the cap: a fifth tenant is refused.
    let pending: Vec<_> = (0..4)
        .map(|n| {
            let cache = cache.clone();
            let lookup = counted(&calls, Duration::from_secs(1), Ok(Found::Unmapped));
            tokio::spawn(async move { cache.resolve(tenant(n), lookup).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let refused = cache
        .resolve(
            tenant(9),
            counted(&calls, Duration::ZERO, Ok(Found::Unmapped)),
        )
        .await;
    assert_eq!(refused, Err(LookupError::Busy));
    for p in pending {
        assert_eq!(p.await.expect("no panic"), Ok(Found::Unmapped));
    }
    // Answered, they make room: 20 more tenants, never more than 4 held.
    for n in 10..30 {
        let got = cache
            .resolve(
                tenant(n),
                counted(&calls, Duration::ZERO, Ok(Found::Unmapped)),
            )
            .await;
        assert_eq!(got, Ok(Found::Unmapped));
        let held = cache
            .slots
            .read()
            .map(|s| s.map.len())
            .unwrap_or(usize::MAX);
        assert!(held <= 4, "{held} held");
    }
}

#[tokio::test(start_paused = true)]
async fn a_lookup_whose_task_died_is_replaced_not_waited_on_forever() {
    let cache = Arc::new(Cache::new(limits()));
    let dying = || -> Lookup { Box::pin(async { panic!("the lookup's task dies") }) };
    let got = cache.resolve(tenant(1), dying).await;
    assert_eq!(got, Err(LookupError::Transport("lookup ended".into())));
    let calls = Arc::new(AtomicUsize::new(0));
    let again = cache
        .resolve(
            tenant(1),
            counted(&calls, Duration::ZERO, Ok(Found::Unmapped)),
        )
        .await;
    assert_eq!(again, Ok(Found::Unmapped), "a new lookup, not the dead one");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_drops_expired_answers_before_fresh_ones() {
    let cache = Arc::new(Cache::new(limits()));
    let calls = Arc::new(AtomicUsize::new(0));
    // Two unknown tenants (30 s) and two found ones (300 s) fill the cap.
    for (n, found) in [
        (1, Found::Unknown),
        (2, Found::Unknown),
        (3, Found::Unmapped),
        (4, Found::Unmapped),
    ] {
        cache
            .resolve(tenant(n), counted(&calls, Duration::ZERO, Ok(found)))
            .await
            .expect("found");
    }
    tokio::time::advance(Duration::from_secs(31)).await;
    cache
        .resolve(
            tenant(5),
            counted(&calls, Duration::ZERO, Ok(Found::Unmapped)),
        )
        .await
        .expect("room made");
    for n in [3, 4, 5] {
        assert_eq!(cache.cached(tenant(n)), Some(Found::Unmapped), "tenant {n}");
    }
}

#[tokio::test(start_paused = true)]
async fn lookups_in_flight_are_capped_and_the_count_never_leaks() {
    let cache = Arc::new(Cache::new(Limits {
        max_entries: 1000,
        max_in_flight: 2,
        ..limits()
    }));
    let calls = Arc::new(AtomicUsize::new(0));
    let pending: Vec<_> = (0..2)
        .map(|n| {
            let cache = cache.clone();
            let lookup = counted(&calls, Duration::from_secs(1), Ok(Found::Unmapped));
            tokio::spawn(async move { cache.resolve(tenant(n), lookup).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    // A third tenant is refused; a waiter for one in flight is not.
    let third = counted(&calls, Duration::ZERO, Ok(Found::Unmapped));
    assert_eq!(
        cache.resolve(tenant(7), third).await,
        Err(LookupError::Busy)
    );
    let joined = counted(&calls, Duration::ZERO, Ok(Found::Unknown));
    assert_eq!(cache.resolve(tenant(1), joined).await, Ok(Found::Unmapped));
    for p in pending {
        assert_eq!(p.await.expect("no panic"), Ok(Found::Unmapped));
    }
    // Failures, timeouts and a dead task each give their slot back.
    let dying = || -> Lookup { Box::pin(async { panic!("the lookup's task dies") }) };
    assert!(cache.resolve(tenant(20), dying).await.is_err());
    let failing = counted(&calls, Duration::ZERO, Err(LookupError::Status(500)));
    assert!(cache.resolve(tenant(21), failing).await.is_err());
    let slow = counted(&calls, Duration::from_secs(60), Ok(Found::Unmapped));
    assert!(cache.resolve(tenant(22), slow).await.is_err());
    // The dead one is replaced; then two at once still fit.
    let again = counted(&calls, Duration::ZERO, Ok(Found::Unmapped));
    assert_eq!(cache.resolve(tenant(20), again).await, Ok(Found::Unmapped));
    let both: Vec<_> = (30..32)
        .map(|n| {
            let cache = cache.clone();
            let lookup = counted(&calls, Duration::from_secs(1), Ok(Found::Unmapped));
            tokio::spawn(async move { cache.resolve(tenant(n), lookup).await })
        })
        .collect();
    for p in both {
        assert_eq!(p.await.expect("no panic"), Ok(Found::Unmapped));
    }
    assert_eq!(cache.slots.read().map(|s| s.in_flight).unwrap_or(9), 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_makes_room_for_many_at_once() {
    let cache = Arc::new(Cache::new(Limits {
        max_entries: 160,
        ..limits()
    }));
    let calls = Arc::new(AtomicUsize::new(0));
    let held = |cache: &Cache| cache.slots.read().map(|s| s.map.len()).unwrap_or(0);
    for n in 0..160 {
        let lookup = counted(&calls, Duration::ZERO, Ok(Found::Unmapped));
        cache.resolve(tenant(n), lookup).await.expect("room");
    }
    assert_eq!(held(&cache), 160);
    // The 161st tenant finds it full: a sixteenth goes, not one.
    let mut seen = Vec::new();
    for n in 160..171 {
        let lookup = counted(&calls, Duration::ZERO, Ok(Found::Unmapped));
        cache.resolve(tenant(n), lookup).await.expect("room");
        seen.push(held(&cache));
    }
    assert_eq!(
        seen,
        vec![151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 151],
        "one scan per ten new tenants"
    );
}
