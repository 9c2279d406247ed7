use std::time::{Duration, SystemTime};

use super::*;

use crate::telemetry::testing::{record, CREATE, LICENSES};

const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

#[test]
fn decisions_are_counted_by_minute_rule_action_and_tenant() {
    let console = Console::default();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60);
    for i in 0..5 {
        console.observe(&record(
            t0 + Duration::from_secs(i),
            Some(CREATE),
            "explain",
            Some(DE),
        ));
    }
    console.observe(&record(
        t0 + Duration::from_secs(61),
        Some(LICENSES),
        "explain",
        Some(DE),
    ));
    console.observe(&record(t0 + Duration::from_secs(62), None, "reject", None));
    let s = console.summary(60, t0 + Duration::from_secs(90));
    assert_eq!(s.total, 7);
    assert_eq!(s.minutes.len(), 2);
    assert_eq!(s.minutes[0].total, 5);
    assert_eq!(s.minutes[1].by_action.get("reject"), Some(&1));
    assert_eq!(
        s.by_key[0].0.rule.as_deref(),
        Some("germany-customer-user-create")
    );
    assert_eq!(s.by_key[0].1, 5);
    assert!(s
        .by_key
        .iter()
        .any(|(k, n)| k.mode == "report-only" && *n == 1));
    assert_eq!(s.top_tenants, vec![(DE.to_string(), 6)]);
    // A shorter window sees only the last minute.
    assert_eq!(console.summary(1, t0 + Duration::from_secs(90)).total, 2);
    // Each minute by each dimension the chart offers; "-" is no rule, no
    // portal, no tenant (or one outside the top).
    let last = &s.minutes[1];
    assert_eq!(last.by_rule.get("germany-license-read"), Some(&1));
    assert_eq!(last.by_rule.get("-"), Some(&1));
    assert_eq!(
        last.by_portal.get("https://portal.microsoftazure.de"),
        Some(&1)
    );
    assert_eq!(last.by_tenant.get(DE), Some(&1));
    assert_eq!(last.by_tenant.get("-"), Some(&1));
    for m in &s.minutes {
        for dim in [&m.by_rule, &m.by_portal, &m.by_tenant] {
            assert_eq!(dim.values().sum::<u64>(), m.total);
        }
    }
}

#[test]
fn memory_is_bounded_by_the_window_and_the_tenant_cap() {
    let console = Console::default();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60);
    // Two hours of one decision a minute: only the window stays.
    for m in 0..120 {
        console.observe(&record(
            t0 + Duration::from_secs(m * 60),
            None,
            "reject",
            None,
        ));
    }
    let now = t0 + Duration::from_secs(119 * 60);
    assert_eq!(console.minutes.with(|m| m.len()), WINDOW as usize);
    assert_eq!(console.summary(WINDOW, now).total, WINDOW);
    // Many tenants in one minute: the cap holds, the rest is counted.
    let later = now + Duration::from_secs(60);
    for i in 0..(TENANTS_PER_MINUTE + 50) {
        let t = format!("0a1b2c3d-0000-4000-8000-{i:012x}");
        console.observe(&record(later, None, "explain", Some(&t)));
    }
    assert_eq!(
        console.minutes.with(|m| m.back().map(|m| m.tenants.len())),
        Some(TENANTS_PER_MINUTE)
    );
    let s = console.summary(1, later);
    assert_eq!(s.other_tenants, 50);
    assert_eq!(s.top_tenants.len(), 20);
}

#[tokio::test]
async fn subscribers_get_each_record_and_a_slow_one_skips_rather_than_holds() {
    let console = Console::default();
    let mut sub = console.subscribe().unwrap();
    let rx = &mut sub.records;
    let now = SystemTime::now();
    console.observe(&record(now, None, "reject", None));
    assert_eq!(rx.recv().await.unwrap().action, "reject");
    for _ in 0..(BACKLOG + 10) {
        console.observe(&record(now, None, "explain", None));
    }
    assert!(matches!(
        rx.recv().await,
        Err(broadcast::error::RecvError::Lagged(_))
    ));
}

#[test]
fn live_feeds_are_capped_and_a_closed_one_frees_its_place() {
    let console = Console::default();
    let open: Vec<Subscription> = (0..MAX_SUBSCRIBERS)
        .map(|_| console.subscribe().unwrap())
        .collect();
    assert!(console.subscribe().is_none());
    drop(open);
    assert!(console.subscribe().is_some());
}

/// Threads count their own minutes; the summary adds them up, the rules
/// and tenants of every thread included.
#[test]
fn every_threads_counts_are_in_the_summary() {
    let console = Console::default();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 60 * 60);
    std::thread::scope(|s| {
        for i in 0..4 {
            let console = &console;
            s.spawn(move || {
                let t = format!("0a1b2c3d-0000-4000-8000-{i:012x}");
                for _ in 0..10 {
                    console.observe(&record(t0, None, "explain", Some(&t)));
                }
            });
        }
    });
    let s = console.summary(1, t0);
    assert_eq!(s.total, 40);
    assert_eq!(s.minutes.len(), 1);
    assert_eq!(s.top_tenants.len(), 4);
    assert!(s.top_tenants.iter().all(|(_, n)| *n == 10));
}
