//! What the operators' console reads: counts of decisions per minute,
//! aggregated as records are taken (so a busy proxy sends a page a few
//! hundred numbers, not thousands of records), and a broadcast of each
//! record for the live view.
//!
//! Each worker thread counts into its own minutes (no lock or cache line
//! shared between cores on the request path), and a summary adds them up.
//! Memory is bounded whatever the load: [`WINDOW`] minutes are kept per
//! thread; within a minute, counts are by (rule, action, mode, portal),
//! which the configuration bounds, and by tenant up to
//! [`TENANTS_PER_MINUTE`] per thread, the rest counted as other tenants.
//! Subscribers that fall behind skip records rather than hold them
//! ([`tokio::sync::broadcast`]).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

use super::record::{Local, RawRecord};
use super::sharded::PerThread;
use crate::tenant::TenantId;
use keyed::Keyed;

mod keyed;

/// Minutes of counts kept.
pub const WINDOW: u64 = 60;
/// Distinct tenants counted per minute; more go to `other_tenants`.
pub const TENANTS_PER_MINUTE: usize = 1000;
/// Records a slow subscriber may fall behind before it skips some.
pub const BACKLOG: usize = 1024;
/// Live feeds open at once (each holds a task and up to [`BACKLOG`]
/// records' worth of place in the channel).
pub const MAX_SUBSCRIBERS: usize = 16;

/// One decision's place in the counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Key {
    /// The rule, if one decided.
    pub rule: Option<String>,
    /// `explain`, `redirect`, `deny`, `reject`, `forward`, ….
    pub action: &'static str,
    /// `enforce` or `report-only`.
    pub mode: &'static str,
    /// The portal the answer names.
    pub portal: Option<String>,
}

#[derive(Debug, Default)]
struct Minute {
    at: u64,
    total: u64,
    /// By rule (the address of its facts, 0 for none) and action:
    /// counting clones no `Arc` (a reference count other cores write).
    by: HashMap<(usize, &'static str), u64, Keyed>,
    /// Where the facts of the rules in `by` are: the recorder (kept
    /// alive by this, cloned once a minute per rule) and the rule's index.
    rules: HashMap<usize, (Arc<Local>, u32), Keyed>,
    tenants: HashMap<TenantId, u64, Keyed>,
    other_tenants: u64,
}

impl Minute {
    /// Adds `other`'s counts (another thread's, of the same minute).
    fn add(&mut self, other: &Minute) {
        self.total += other.total;
        for (k, n) in &other.by {
            *self.by.entry(*k).or_default() += n;
        }
        for (k, (recorder, i)) in &other.rules {
            self.rules
                .entry(*k)
                .or_insert_with(|| (recorder.clone(), *i));
        }
        for (t, n) in &other.tenants {
            *self.tenants.entry(*t).or_default() += n;
        }
        self.other_tenants += other.other_tenants;
    }
}

/// The counts and the live feed.
#[derive(Debug)]
pub struct Console {
    events: broadcast::Sender<Arc<RawRecord>>,
    subscribers: Arc<AtomicUsize>,
    /// Each worker thread counts its own minutes.
    minutes: PerThread<VecDeque<Minute>>,
}

impl Default for Console {
    fn default() -> Self {
        Console {
            events: broadcast::channel(BACKLOG).0,
            subscribers: Arc::default(),
            minutes: PerThread::new(|| VecDeque::with_capacity(WINDOW as usize + 1)),
        }
    }
}

/// The counts of the last minutes, as the console's chart and tables read
/// them.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Decisions in the window.
    pub total: u64,
    /// Per minute (Unix minutes), oldest first: the total and by action.
    pub minutes: Vec<MinuteCounts>,
    /// By rule, action, mode and portal, most first.
    pub by_key: Vec<(Key, u64)>,
    /// By tenant, most first, at most [`TOP_TENANTS`].
    pub top_tenants: Vec<(String, u64)>,
    /// Decisions whose tenant was not counted by name (over the cap).
    pub other_tenants: u64,
}

/// An open live feed; dropping it frees its place.
#[derive(Debug)]
pub struct Subscription {
    /// The records, as they are taken.
    pub records: broadcast::Receiver<Arc<RawRecord>>,
    count: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One minute of the chart: its decisions by each dimension the console
/// charts (`-` for no rule, no portal, or a tenant outside the top ones).
#[derive(Debug, Default, Serialize)]
pub struct MinuteCounts {
    /// Unix time of the minute's start, in seconds.
    pub at: u64,
    /// Decisions in it.
    pub total: u64,
    /// By action.
    pub by_action: HashMap<&'static str, u64>,
    /// By rule id.
    pub by_rule: HashMap<String, u64>,
    /// By the portal the answer named.
    pub by_portal: HashMap<String, u64>,
    /// By tenant, for the window's top tenants only.
    pub by_tenant: HashMap<String, u64>,
}

/// The name of "none" in the chart's dimensions.
const NONE: &str = "-";
/// Tenants named in a summary.
pub const TOP_TENANTS: usize = 20;

fn minute_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

impl Console {
    /// Counts a record and passes it to the live subscribers.
    pub fn observe(&self, r: &Arc<RawRecord>) {
        let at = minute_of(r.at);
        let rule = r.rule_facts().map_or(0, |f| std::ptr::from_ref(f) as usize);
        self.minutes.with(|minutes| {
            if minutes.back().is_none_or(|m| m.at < at) {
                minutes.push_back(Minute {
                    at,
                    ..Minute::default()
                });
            }
            while minutes
                .front()
                .is_some_and(|m| m.at + WINDOW <= at || minutes.len() > WINDOW as usize)
            {
                minutes.pop_front();
            }
            // A record from a minute already past (clocks, queues) joins the
            // newest minute rather than reordering the window.
            if let Some(m) = minutes.back_mut() {
                m.total += 1;
                match m.by.entry((rule, r.action)) {
                    Entry::Occupied(mut n) => *n.get_mut() += 1,
                    // A rule's first decision this minute keeps its facts.
                    Entry::Vacant(v) => {
                        v.insert(1);
                        if let Some(i) = r.rule {
                            m.rules
                                .entry(rule)
                                .or_insert_with(|| (r.recorder.clone(), i));
                        }
                    }
                }
                if let Some(t) = r.tenant {
                    if let Some(n) = m.tenants.get_mut(&t) {
                        *n += 1;
                    } else if m.tenants.len() < TENANTS_PER_MINUTE {
                        m.tenants.insert(t, 1);
                    } else {
                        m.other_tenants += 1;
                    }
                }
            }
        });
        // Sent only while someone listens: a send takes the channel's lock.
        if self.subscribers.load(Ordering::Relaxed) > 0 {
            // A subscriber that just left is not an error.
            let _ = self.events.send(r.clone());
        }
    }

    /// A live feed of the records taken from now on; `None` while
    /// [`MAX_SUBSCRIBERS`] feeds are open.
    pub fn subscribe(&self) -> Option<Subscription> {
        let taken = self
            .subscribers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_SUBSCRIBERS).then_some(n + 1)
            });
        taken.ok().map(|_| Subscription {
            records: self.events.subscribe(),
            count: self.subscribers.clone(),
        })
    }

    /// The counts of the last `minutes` minutes (at most [`WINDOW`]).
    pub fn summary(&self, minutes: u64, now: SystemTime) -> Summary {
        let now = minute_of(now);
        let from = now.saturating_sub(minutes.min(WINDOW).saturating_sub(1));
        // Every thread's minutes of the window, added up minute by minute.
        let mut merged: std::collections::BTreeMap<u64, Minute> = Default::default();
        self.minutes.each(|kept| {
            for m in kept.iter().filter(|m| m.at >= from && m.at <= now) {
                merged
                    .entry(m.at)
                    .or_insert_with(|| Minute {
                        at: m.at,
                        ..Minute::default()
                    })
                    .add(m);
            }
        });
        let window: Vec<&Minute> = merged.values().collect();
        // The top tenants of the window first: the chart shows those.
        let mut tenants: HashMap<TenantId, u64> = HashMap::new();
        for m in &window {
            for (t, n) in &m.tenants {
                *tenants.entry(*t).or_default() += n;
            }
        }
        let mut top: Vec<(TenantId, u64)> = tenants.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP_TENANTS);
        let named: HashMap<TenantId, String> =
            top.iter().map(|(t, _)| (*t, t.to_string())).collect();
        let mut by_key: HashMap<Key, u64> = HashMap::new();
        let mut out = Vec::with_capacity(window.len());
        let (mut total, mut other_tenants) = (0, 0);
        for m in window {
            let mut counts = MinuteCounts {
                at: m.at * 60,
                total: m.total,
                ..MinuteCounts::default()
            };
            for ((rule, action), n) in &m.by {
                let rule = m
                    .rules
                    .get(rule)
                    .and_then(|(recorder, i)| recorder.0.rules.get(usize::try_from(*i).ok()?));
                let key = Key {
                    rule: rule.map(|f| f.id.clone()),
                    action,
                    mode: rule.map_or("enforce", |f| f.mode),
                    portal: rule.and_then(|f| f.portal.clone()),
                };
                *counts.by_action.entry(action).or_default() += n;
                *counts
                    .by_rule
                    .entry(key.rule.clone().unwrap_or_else(|| NONE.into()))
                    .or_default() += n;
                *counts
                    .by_portal
                    .entry(key.portal.clone().unwrap_or_else(|| NONE.into()))
                    .or_default() += n;
                *by_key.entry(key).or_default() += n;
            }
            for (t, n) in &m.tenants {
                if let Some(name) = named.get(t) {
                    *counts.by_tenant.entry(name.clone()).or_default() += n;
                }
            }
            // Everything else: other tenants and records without one.
            let rest = m
                .total
                .saturating_sub(counts.by_tenant.values().sum::<u64>());
            if rest > 0 {
                counts.by_tenant.insert(NONE.into(), rest);
            }
            other_tenants += m.other_tenants;
            total += m.total;
            out.push(counts);
        }
        let mut by_key: Vec<(Key, u64)> = by_key.into_iter().collect();
        by_key.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.rule.cmp(&b.0.rule)));
        Summary {
            total,
            minutes: out,
            by_key,
            top_tenants: top.into_iter().map(|(t, n)| (t.to_string(), n)).collect(),
            other_tenants,
        }
    }
}

#[cfg(test)]
mod tests;
