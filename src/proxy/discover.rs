//! Region discovery in the judgement: the lookups a judgement waits for
//! ([`Discoverer::lookup`], through the cache, counted in the metrics),
//! and what the rules see of the answers ([`Seen`]: those learned for this
//! request, then the cache).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Discovery, OnFailure};
use crate::discovery::{metadata_url, Cache, Fetcher, Found, LookupError, Outcome};
use crate::policy::Discovered;
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

/// A region learned for one request: the tenant, its region (`None`: the
/// default) and where it came from.
pub type Learned = (TenantId, Option<Region>, RegionSource);

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
    learned: &'a [Learned],
    /// The last answer taken from the cache.
    memo: RefCell<Option<Learned>>,
}

impl<'a> Seen<'a> {
    /// The view of `discoverer` with `learned` on top.
    pub fn new(discoverer: &'a Discoverer, learned: &'a [Learned]) -> Seen<'a> {
        Seen {
            discoverer,
            learned,
            memo: RefCell::new(None),
        }
    }
}

impl Discovered for Seen<'_> {
    fn learned(&self, tenant: TenantId) -> Option<(Option<Region>, RegionSource)> {
        let of = |l: &Learned| (l.0 == tenant).then(|| (l.1.clone(), l.2));
        if let Some(found) = self.learned.iter().find_map(of) {
            return Some(found);
        }
        if let Some(found) = self.memo.borrow().as_ref().and_then(of) {
            return Some(found);
        }
        let region = Discoverer::region_of(self.discoverer.cache.cached(tenant)?);
        self.discoverer.metrics.hits.inc();
        *self.memo.borrow_mut() = Some((tenant, region.clone(), RegionSource::Discovery));
        Some((region, RegionSource::Discovery))
    }
}
