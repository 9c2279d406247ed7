//! Wall-clock time from the monotonic clock, for the hot path.
//!
//! A request reads the clock once when its answer is ready; that reading
//! serves its `Date` field, its duration and its decision record's time.
//! The wall-clock time of a monotonic reading comes from a per-thread
//! anchor (a pair of readings of both clocks), taken again once a second,
//! as nginx updates its cached time once per event loop turn: a step of
//! the system clock shows within a second.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

/// How long an anchor serves.
const ANCHOR_LIFE: Duration = Duration::from_secs(1);

thread_local! {
    static ANCHOR: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
    /// The last reading converted, and its wall-clock time: a request's
    /// answer (its `Date`) and its record convert the same reading.
    static LAST: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The wall-clock time at the monotonic reading `at`.
pub fn wall(at: Instant) -> SystemTime {
    if let Some((_, w)) = LAST.get().filter(|(i, _)| *i == at) {
        return w;
    }
    let w = convert(at);
    LAST.set(Some((at, w)));
    w
}

fn convert(at: Instant) -> SystemTime {
    ANCHOR.with(|anchor| {
        let (i, w) = match anchor.get() {
            Some((i, w)) if at < i + ANCHOR_LIFE => (i, w),
            _ => {
                let fresh = (Instant::now(), SystemTime::now());
                anchor.set(Some(fresh));
                fresh
            }
        };
        match at.checked_duration_since(i) {
            Some(after) => w + after,
            None => w.checked_sub(i - at).unwrap_or(w),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: SystemTime, b: SystemTime) -> bool {
        let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
        d < Duration::from_millis(50)
    }

    #[test]
    fn agrees_with_the_system_clock() {
        let now = Instant::now();
        assert!(close(wall(now), SystemTime::now()));
        // A reading from before the anchor, and one after it.
        let earlier = now - Duration::from_millis(300);
        assert!(close(
            wall(earlier),
            SystemTime::now() - Duration::from_millis(300)
        ));
        let later = Instant::now() + Duration::from_millis(200);
        assert!(close(
            wall(later),
            SystemTime::now() + Duration::from_millis(200)
        ));
    }

    #[test]
    fn a_reading_converted_again_gives_the_same_time() {
        let now = Instant::now();
        let first = wall(now);
        // Even with the anchor moved meanwhile: one reading, one time.
        ANCHOR.with(|a| a.set(Some((now, SystemTime::UNIX_EPOCH))));
        assert_eq!(wall(now), first);
        // Another reading is converted from the anchor.
        let later = now + Duration::from_millis(1);
        assert_eq!(
            wall(later),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1)
        );
    }

    #[test]
    fn an_old_anchor_is_taken_again() {
        let now = Instant::now();
        ANCHOR.with(|a| a.set(Some((now - Duration::from_secs(5), SystemTime::UNIX_EPOCH))));
        // Five seconds after an anchor that said 1970: taken again.
        assert!(close(wall(now), SystemTime::now()));
        ANCHOR.with(|a| {
            let (i, _) = a.get().expect("anchored");
            assert!(i >= now);
        });
    }
}
