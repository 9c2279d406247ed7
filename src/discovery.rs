//! Region discovery: an unlisted tenant's region read from its OpenID
//! metadata, the answers cached and the lookups coalesced. Configured by
//! `[tenants.discovery]`; the judgement asks through
//! [`crate::proxy::discover`] only when a rule that names regions meets a
//! tenant the directory does not list.
//!
//! - [`read_metadata`] turns one metadata answer into a region: the
//!   `cloud_instance_name` (`microsoftonline.de` for Microsoft Cloud
//!   Germany) or else the `tenant_region_scope`, through the configured
//!   [`Mapping`]. A tenant the identity provider does not know (400, 404)
//!   is an answer too ([`Found::Unknown`]); anything else that is not a
//!   readable 200 is a [`LookupError`], never a region.
//! - [`Cache`] holds answers for a positive or negative TTL under a size
//!   cap, and runs at most one lookup per tenant however many requests
//!   wait for it: the first spawns it (so a cancelled request does not
//!   cancel it) and the rest wait on the same result. Failures are not
//!   cached: the next request tries again.
//! - [`Fetcher`] makes one lookup over HTTP(S) with a given TLS client
//!   configuration (the upstream's), the body bounded.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::tenant::{Region, TenantId};

pub mod fetch;

pub use fetch::Fetcher;

/// Metadata values → regions. Values compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// `cloud_instance_name` values, e.g. `microsoftonline.de` → `germany`.
    pub cloud_instance_name: Vec<(String, Region)>,
    /// `tenant_region_scope` values, e.g. `DE` → `germany`.
    pub tenant_region_scope: Vec<(String, Region)>,
}

impl Mapping {
    fn find(list: &[(String, Region)], value: &str) -> Option<Region> {
        list.iter()
            .find(|(v, _)| v.eq_ignore_ascii_case(value.trim()))
            .map(|(_, r)| *r)
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The metadata names a mapped cloud or scope.
    Region(Region),
    /// The tenant exists in a cloud and scope that the mapping does not
    /// name: the default region.
    Unmapped,
    /// The identity provider does not know the tenant (400 or 404): the
    /// default region, cached for the negative TTL.
    Unknown,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An answer with a status that says nothing about the tenant.
    #[error("status {0}")]
    Status(u16),
    /// A 200 whose body is not the metadata expected.
    #[error("unreadable metadata: {0}")]
    Garbage(&'static str),
    /// The connection or the TLS handshake failed.
    #[error("transport: {0}")]
    Transport(String),
    /// Every slot of the cache holds a lookup in flight.
    #[error("too many lookups in flight")]
    Busy,
}

impl LookupError {
    /// A one-word kind (`timeout`, `status`, `garbage`, `transport`,
    /// `busy`), for metric labels and for clients, who need not learn more
    /// of the metadata server than that.
    pub fn kind(&self) -> &'static str {
        match self {
            LookupError::Timeout(_) => "timeout",
            LookupError::Status(_) => "status",
            LookupError::Garbage(_) => "garbage",
            LookupError::Transport(_) => "transport",
            LookupError::Busy => "busy",
        }
    }
}

/// Reads one metadata answer (`status`, `body`).
pub fn read_metadata(status: u16, body: &[u8], mapping: &Mapping) -> Result<Found, LookupError> {
    match status {
        200 => {}
        400 | 404 => return Ok(Found::Unknown),
        s => return Err(LookupError::Status(s)),
    }
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| LookupError::Garbage("not JSON"))?;
    let field = |name: &str| -> Result<Option<&str>, LookupError> {
        match doc.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(LookupError::Garbage("a field that is not a string")),
        }
    };
    if !doc.is_object() {
        return Err(LookupError::Garbage("not a JSON object"));
    }
    let cloud = field("cloud_instance_name")?;
    let scope = field("tenant_region_scope")?;
    if cloud.is_none() && scope.is_none() {
        return Err(LookupError::Garbage(
            "neither cloud_instance_name nor tenant_region_scope",
        ));
    }
    let found = cloud
        .and_then(|c| Mapping::find(&mapping.cloud_instance_name, c))
        .or_else(|| scope.and_then(|s| Mapping::find(&mapping.tenant_region_scope, s)));
    Ok(found.map_or(Found::Unmapped, Found::Region))
}

/// The metadata URL for `tenant`: every `{tenant}` in `template` replaced
/// by the id's lowercase hyphenated form.
pub fn metadata_url(template: &str, tenant: TenantId) -> String {
    template.replace("{tenant}", &tenant.to_string())
}

/// A lookup's result, as waiters see it.
pub type Outcome = Result<Found, LookupError>;

/// One lookup: fetches and reads the metadata of a tenant.
pub type Lookup = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a region (or an unmapped cloud) is kept.
    pub positive_ttl: Duration,
    /// How long "the identity provider does not know it" is kept.
    pub negative_ttl: Duration,
    /// The most tenants held, lookups in flight included.
    pub max_entries: usize,
    /// The most lookups in flight at once: a flood of made-up tenant ids
    /// cannot turn into a flood of requests at the identity provider.
    pub max_in_flight: usize,
    /// The most a lookup may take.
    pub timeout: Duration,
}

enum Slot {
    Ready { found: Found, until: Instant },
    Pending(watch::Receiver<Option<Outcome>>),
}

/// Counts, for the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Answered from the cache.
    pub hits: u64,
    /// Not in the cache: a lookup started or joined.
    pub misses: u64,
    /// Lookups started.
    pub lookups: u64,
    /// Lookups that failed.
    pub errors: u64,
}

/// The cache's entries and how many of them are lookups in flight.
#[derive(Default)]
struct Slots {
    map: HashMap<u128, Slot>,
    in_flight: usize,
}

/// The answers, and the lookups in flight.
pub struct Cache {
    limits: Limits,
    /// Read (shared) on the hit path, which every request for a discovered
    /// tenant takes; written only for a lookup and its answer.
    slots: RwLock<Slots>,
    hits: AtomicU64,
    misses: AtomicU64,
    lookups: AtomicU64,
    errors: AtomicU64,
}

impl Cache {
    /// An empty cache.
    pub fn new(limits: Limits) -> Cache {
        Cache {
            limits,
            slots: RwLock::new(Slots::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            hits: read(&self.hits),
            misses: read(&self.misses),
            lookups: read(&self.lookups),
            errors: read(&self.errors),
        }
    }

    /// The cached answer for `tenant`, if one is fresh. Never waits.
    pub fn cached(&self, tenant: TenantId) -> Option<Found> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match slots.map.get(&tenant.as_u128()) {
            Some(Slot::Ready { found, until }) if *until > Instant::now() => Some(found.clone()),
            _ => None,
        }
    }

    /// The answer for `tenant`: from the cache, from a lookup in flight,
    /// or from a new lookup made by `lookup` (called at most once, only
    /// when no lookup for the tenant is in flight). Must be called within
    /// a Tokio runtime: the lookup runs as its own task.
    pub async fn resolve(
        self: &Arc<Self>,
        tenant: TenantId,
        lookup: impl FnOnce() -> Lookup,
    ) -> Outcome {
        let key = tenant.as_u128();
        let mut rx = {
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match slots.map.get(&key) {
                Some(Slot::Ready { found, until }) if *until > now => {
                    let found = found.clone();
                    drop(slots);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(found);
                }
                // A lookup whose task is gone (a panic, a runtime shut
                // down) never answers: it is replaced below.
                Some(Slot::Pending(rx)) if rx.has_changed().is_ok() => rx.clone(),
                _ => {
                    // The in-flight cap first: a refused flood costs no scan.
                    let full = slots.in_flight >= self.limits.max_in_flight
                        || (!slots.map.contains_key(&key)
                            && slots.map.len() >= self.limits.max_entries
                            && {
                                make_room(&mut slots.map, now, self.limits.max_entries);
                                slots.map.len() >= self.limits.max_entries
                            });
                    if full {
                        drop(slots);
                        self.errors.fetch_add(1, Ordering::Relaxed);
                        return Err(LookupError::Busy);
                    }
                    slots.in_flight += 1;
                    let (tx, rx) = watch::channel(None);
                    slots.map.insert(key, Slot::Pending(rx.clone()));
                    self.lookups.fetch_add(1, Ordering::Relaxed);
                    let flight = Flight(self.clone());
                    tokio::spawn(run(flight, key, lookup(), tx));
                    rx
                }
            }
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        // The lookup task always sends before it ends; a closed channel
        // means it panicked, which is a failure like any other.
        let ended = || Err(LookupError::Transport("lookup ended".into()));
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_else(ended),
            Err(_) => ended(),
        };
        outcome
    }
}

/// Drops expired answers, then, if that freed less than a sixteenth of
/// `cap`, fresh answers up to that (never a lookup in flight). Runs only
/// when a new tenant finds the cache full, and its scan then buys room for
/// many: a full cache under a flood of new tenants scans once per
/// `cap / 16` of them, not once each.
fn make_room(slots: &mut HashMap<u128, Slot>, now: Instant, cap: usize) {
    slots.retain(|_, s| !matches!(s, Slot::Ready { until, .. } if *until <= now));
    let target = cap - (cap / 16).max(1);
    if slots.len() <= target {
        return;
    }
    let excess = slots.len() - target;
    let drop: Vec<u128> = slots
        .iter()
        .filter(|(_, s)| matches!(s, Slot::Ready { .. }))
        .map(|(k, _)| *k)
        .take(excess)
        .collect();
    for k in drop {
        slots.remove(&k);
    }
}

/// One lookup counted in flight until its task ends, however it ends (an
/// answer, a panic, a runtime shutting down).
struct Flight(Arc<Cache>);

impl Drop for Flight {
    fn drop(&mut self) {
        let mut slots = self.0.slots.write().unwrap_or_else(|p| p.into_inner());
        slots.in_flight = slots.in_flight.saturating_sub(1);
    }
}

/// Runs one lookup under the timeout, stores its answer (failures are not
/// kept) and wakes the waiters.
async fn run(flight: Flight, key: u128, lookup: Lookup, tx: watch::Sender<Option<Outcome>>) {
    let cache = &flight.0;
    let limits = cache.limits;
    let outcome = match tokio::time::timeout(limits.timeout, lookup).await {
        Ok(o) => o,
        Err(_) => Err(LookupError::Timeout(limits.timeout)),
    };
    {
        let mut slots = cache.slots.write().unwrap_or_else(|p| p.into_inner());
        let slots = &mut slots.map;
        match &outcome {
            Ok(found) => {
                let ttl = if *found == Found::Unknown {
                    limits.negative_ttl
                } else {
                    limits.positive_ttl
                };
                slots.insert(
                    key,
                    Slot::Ready {
                        found: found.clone(),
                        until: Instant::now() + ttl,
                    },
                );
            }
            Err(_) => {
                slots.remove(&key);
            }
        }
    }
    if outcome.is_err() {
        cache.errors.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tx.send(Some(outcome));
}

#[cfg(test)]
mod tests;
