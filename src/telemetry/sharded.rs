//! A counter and a duration histogram that threads write without sharing
//! a cache line: each thread adds into its own shard, and a scrape sums
//! the shards. `prometheus-client`'s own counter is one atomic, and its
//! histogram one mutex, written by every request on every core.
//!
//! Both encode exactly as `prometheus-client`'s counter and histogram do,
//! so the exposition does not change.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Shards per metric: threads beyond this many share shards.
pub const SHARDS: usize = 16;

thread_local! {
    /// This thread's shard, handed out in turn.
    static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
}
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// This thread's shard number (0 to 15), for anything else split per thread.
pub fn shard() -> usize {
    SHARD.with(|s| *s)
}

/// One shard on a cache line (pair) of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A monotonic counter.
#[derive(Debug, Clone)]
pub struct Counter {
    shards: Arc<[Padded<AtomicU64>]>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
        }
    }
}

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.shards[shard()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// A value per thread shard, each behind its own lock on cache lines of
/// its own: on the request path a thread locks only its own shard (never
/// waited for, never a line another core writes), and readers (the admin
/// API, off the path) visit every shard.
#[derive(Debug)]
pub struct PerThread<T> {
    shards: Box<[Padded<Mutex<T>>]>,
}

impl<T> PerThread<T> {
    /// One value per shard, each made by `make`.
    pub fn new(mut make: impl FnMut() -> T) -> PerThread<T> {
        PerThread {
            shards: (0..SHARDS).map(|_| Padded(Mutex::new(make()))).collect(),
        }
    }

    /// Runs `f` on this thread's value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut v = self.shards[shard()]
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f(&mut v)
    }

    /// Runs `f` on every shard's value in turn.
    pub fn each(&self, mut f: impl FnMut(&mut T)) {
        for s in self.shards.iter() {
            f(&mut s.0.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }
}

impl TypedMetric for Counter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Counter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One thread's observations.
#[derive(Debug)]
struct HistogramShard {
    /// Per bucket (not cumulative), the last one `+Inf`.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// The sum, in nanoseconds.
    sum_ns: AtomicU64,
}

/// A histogram of durations in seconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// Upper bounds, the last one `+Inf`.
    bounds: Arc<[f64]>,
    shards: Arc<[Padded<HistogramShard>]>,
}

impl Histogram {
    /// A histogram with these upper bounds (and `+Inf`).
    pub fn new(bounds: impl Iterator<Item = f64>) -> Histogram {
        let bounds: Arc<[f64]> = bounds.chain(std::iter::once(f64::INFINITY)).collect();
        let shards = (0..SHARDS)
            .map(|_| {
                Padded(HistogramShard {
                    buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
                    count: AtomicU64::new(0),
                    sum_ns: AtomicU64::new(0),
                })
            })
            .collect();
        Histogram { bounds, shards }
    }

    /// Records one duration of `seconds`.
    pub fn observe(&self, seconds: f64) {
        let s = &self.shards[shard()].0;
        let bucket = self
            .bounds
            .iter()
            .position(|b| *b >= seconds)
            .unwrap_or(self.bounds.len() - 1);
        s.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        s.count.fetch_add(1, Ordering::Relaxed);
        s.sum_ns
            .fetch_add((seconds.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.count.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets: Vec<(f64, u64)> = self.bounds.iter().map(|b| (*b, 0)).collect();
        let (mut count, mut sum_ns) = (0u64, 0u64);
        for s in self.shards.iter() {
            for (total, b) in buckets.iter_mut().zip(s.0.buckets.iter()) {
                total.1 += b.load(Ordering::Relaxed);
            }
            count += s.0.count.load(Ordering::Relaxed);
            sum_ns = sum_ns.wrapping_add(s.0.sum_ns.load(Ordering::Relaxed));
        }
        encoder.encode_histogram::<NoLabelSet>(sum_ns as f64 / 1e9, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::{Metric, Registry};

    #[test]
    fn each_thread_writes_its_own_shard_and_readers_see_all() {
        let v = PerThread::new(Vec::new);
        std::thread::scope(|s| {
            for t in 0..4 {
                let v = &v;
                s.spawn(move || {
                    for i in 0..100 {
                        v.with(|own| own.push((t, i)));
                    }
                });
            }
        });
        // Threads handed shards in turn: four threads, more than one shard.
        let mut used = 0;
        v.each(|own| used += usize::from(!own.is_empty()));
        assert!(used > 1, "{used} shard(s) used");
        let mut all = Vec::new();
        v.each(|own| all.append(own));
        all.sort();
        assert_eq!(all.len(), 400);
        assert_eq!(all.first(), Some(&(0, 0)));
        assert_eq!(all.last(), Some(&(3, 99)));
    }

    #[test]
    fn counts_from_every_thread_add_up() {
        let c = Counter::default();
        let h = Histogram::new([0.001, 0.01].into_iter());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.inc();
                        h.observe(0.005);
                    }
                });
            }
        });
        assert_eq!(c.get(), 4000);
        assert_eq!(h.count(), 4000);
    }

    /// The same text as `prometheus-client`'s own types give.
    #[test]
    fn encoded_as_the_library_encodes() {
        let ours = (
            Counter::default(),
            Histogram::new([0.001, 0.01].into_iter()),
        );
        let theirs = (
            prometheus_client::metrics::counter::Counter::<u64>::default(),
            prometheus_client::metrics::histogram::Histogram::new([0.001, 0.01]),
        );
        for v in [0.0005, 0.002, 0.5] {
            ours.1.observe(v);
            theirs.1.observe(v);
        }
        ours.0.inc();
        theirs.0.inc();
        fn text(c: impl Metric, h: impl Metric) -> String {
            let mut r = Registry::default();
            r.register("c", "a counter", c);
            r.register("h", "a histogram", h);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
            out
        }
        assert_eq!(text(ours.0, ours.1), text(theirs.0, theirs.1));
    }
}
