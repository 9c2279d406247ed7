//! Rate limits for repeated operational warnings: during an upstream outage
//! every failed request would otherwise log a line (tens of thousands a
//! second). A [`Throttle`] lets `per_second` lines through in each second
//! and counts the rest; the first line let through in a later second is
//! preceded by one line saying how many were suppressed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One kind of repeated warning.
#[derive(Debug)]
pub struct Throttle {
    what: &'static str,
    per_second: u64,
    /// The second the counts are for.
    second: AtomicU64,
    /// Lines let through in that second.
    passed: AtomicU64,
    /// Lines suppressed since the last summary.
    suppressed: AtomicU64,
}

impl Throttle {
    /// A throttle for warnings about `what`.
    pub const fn new(what: &'static str, per_second: u64) -> Throttle {
        Throttle {
            what,
            per_second,
            second: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether this line may be logged (at second `now`); counts it when
    /// not. Reports the suppressed count when a new second begins.
    pub fn allow_at(&self, now: u64) -> bool {
        if self.second.swap(now, Ordering::Relaxed) != now {
            self.passed.store(0, Ordering::Relaxed);
            let n = self.suppressed.swap(0, Ordering::Relaxed);
            if n > 0 {
                tracing::warn!(
                    suppressed = n,
                    "{n} more warnings about {} were not logged (at most {} a second)",
                    self.what,
                    self.per_second
                );
            }
        }
        if self.passed.fetch_add(1, Ordering::Relaxed) < self.per_second {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// [`Throttle::allow_at`] the current second.
    pub fn allow(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.allow_at(now)
    }

    /// Lines suppressed and not yet reported.
    pub fn pending(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_n_a_second_through_and_counts_the_rest() {
        let t = Throttle::new("tests", 3);
        let passed = (0..100).filter(|_| t.allow_at(7)).count();
        assert_eq!(passed, 3);
        assert_eq!(t.pending(), 97);
        // A new second: the count is reported and reset, lines pass again.
        assert!(t.allow_at(8));
        assert_eq!(t.pending(), 0);
        assert_eq!((0..10).filter(|_| t.allow_at(8)).count(), 2);
        assert_eq!(t.pending(), 8);
    }
}
