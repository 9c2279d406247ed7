//! Region discovery in the judgement: the lookups a judgement waits for
//! ([`Discoverer::lookup`], through the cache, counted in the metrics),
//! and what the rules see of the answers ([`Seen`]: those learned for this
//! request, then the cache).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Discovery, OnFailure};
use crate::discovery::{metadata_url, Cache, Fetcher, Found, LookupError, Outcome};
use crate::policy::{Discovered, Learned};
use crate::telemetry::metrics::{
    DiscoveryErrorKind, DiscoveryErrorLabels, DiscoveryMetrics, Metrics,
};
use crate::tenant::{Region, RegionSource, TenantId};

/// Region discovery of one configuration: its settings, the cache (kept
/// across reloads that do not change what it holds), the lookups.
pub struct Discoverer {
    settings: Discovery,
    cache: Arc<Cache>,
    fetcher: Fetcher,
    metrics: DiscoveryMetrics,
}

impl std::fmt::Debug for Discoverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discoverer")
            .field("url", &self.settings.url)
            .field("limits", &self.settings.limits)
            .finish()
    }
}

/// What one request learned of a tenant's region.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Its region (`None`: the default) and where it came from.
    Found(TenantId, Option<Region>, RegionSource),
    /// The lookup failed, and `on_failure` forbids assuming a region.
    Failed(TenantId, LookupError),
}

impl Lookup {
    /// The tenant looked up.
    pub fn tenant(&self) -> TenantId {
        match self {
            Lookup::Found(t, ..) | Lookup::Failed(t, _) => *t,
        }
    }

    /// What the rules see of it.
    fn learned(&self) -> Learned {
        match self {
            Lookup::Found(_, region, source) => Learned::Known(*region, *source),
            Lookup::Failed(..) => Learned::Unavailable,
        }
    }
}

impl Discoverer {
    /// Discovery as configured, counted in `metrics`.
    pub fn new(settings: &Discovery, metrics: &Metrics) -> Discoverer {
        Discoverer {
            settings: settings.clone(),
            cache: Arc::new(Cache::new(settings.limits)),
            fetcher: Fetcher::new(settings.tls.clone(), settings.mapping.clone()),
            metrics: metrics.discovery.clone(),
        }
    }

    /// Takes over `previous`'s cache (answers and lookups in flight) when
    /// the settings would give the same answers: a reload does not forget
    /// every tenant's region.
    pub fn adopt(&mut self, previous: &Discoverer) {
        if self.settings.same_answers(&previous.settings) {
            self.cache = previous.cache.clone();
        }
    }

    /// What a request gets while its tenant's lookup fails.
    pub fn on_failure(&self) -> OnFailure {
        self.settings.on_failure
    }

    /// The region of `tenant`: from the cache, a lookup in flight, or a new
    /// lookup (one per tenant however many requests wait).
    pub async fn lookup(&self, tenant: TenantId) -> Outcome {
        self.metrics.misses.inc();
        let outcome = self
            .cache
            .resolve(tenant, || {
                let url = metadata_url(&self.settings.url, tenant);
                let fetch = self.fetcher.lookup(url);
                let metrics = self.metrics.clone();
                let timeout = self.settings.limits.timeout;
                metrics.lookups.inc();
                Box::pin(async move {
                    let start = Instant::now();
                    let outcome = tokio::time::timeout(timeout, fetch)
                        .await
                        .unwrap_or(Err(LookupError::Timeout(timeout)));
                    metrics.duration.observe(start.elapsed().as_secs_f64());
                    if let Err(e) = &outcome {
                        count_error(&metrics, e);
                        if LOOKUP_WARNINGS.allow() {
                            tracing::warn!(error = %e, "tenant region lookup failed");
                        }
                    }
                    outcome
                })
            })
            .await;
        if let Err(e @ LookupError::Busy) = &outcome {
            count_error(&self.metrics, e);
        }
        outcome
    }

    /// The region a found answer gives (`None`: the default).
    pub fn region_of(found: Found) -> Option<Region> {
        match found {
            Found::Region(r) => Some(r),
            Found::Unmapped | Found::Unknown => None,
        }
    }
}

/// A failing metadata server fails every lookup: at most this many
/// warnings a second, then a count of the rest.
static LOOKUP_WARNINGS: crate::telemetry::throttle::Throttle =
    crate::telemetry::throttle::Throttle::new("failed tenant region lookups", 10);

fn count_error(metrics: &DiscoveryMetrics, e: &LookupError) {
    let kind = match e {
        LookupError::Timeout(_) => DiscoveryErrorKind::Timeout,
        LookupError::Status(_) => DiscoveryErrorKind::Status,
        LookupError::Garbage(_) => DiscoveryErrorKind::Garbage,
        LookupError::Transport(_) => DiscoveryErrorKind::Transport,
        LookupError::Busy => DiscoveryErrorKind::Busy,
    };
    metrics
        .errors
        .get_or_create(&DiscoveryErrorLabels { kind })
        .inc();
}

/// What the rules of one evaluation see: the regions learned for this
/// request (they hold even if the cache has dropped them since), then the
/// cache. A cache hit is counted once per evaluation.
pub struct Seen<'a> {
    discoverer: &'a Discoverer,
    learned: &'a [Lookup],
    /// The last answer taken from the cache.
    memo: RefCell<Option<(TenantId, Option<Region>)>>,
}

impl<'a> Seen<'a> {
    /// The view of `discoverer` with `learned` on top.
    pub fn new(discoverer: &'a Discoverer, learned: &'a [Lookup]) -> Seen<'a> {
        Seen {
            discoverer,
            learned,
            memo: RefCell::new(None),
        }
    }
}

impl Discovered for Seen<'_> {
    fn learned(&self, tenant: TenantId) -> Learned {
        if let Some(l) = self.learned.iter().find(|l| l.tenant() == tenant) {
            return l.learned();
        }
        if let Some((_, region)) = self.memo.borrow().as_ref().filter(|m| m.0 == tenant) {
            return Learned::Known(*region, RegionSource::Discovery);
        }
        let Some(found) = self.discoverer.cache.cached(tenant) else {
            return Learned::NotYet;
        };
        let region = Discoverer::region_of(found);
        self.discoverer.metrics.hits.inc();
        *self.memo.borrow_mut() = Some((tenant, region));
        Learned::Known(region, RegionSource::Discovery)
    }
}
