//! A deadline that costs nothing to move: one per connection (the next
//! head, the response head, the next body bytes) or per streamed body.
//!
//! Every request moves a connection's deadline (the next head, the
//! response head); re-arming a runtime timer each time would touch the
//! timer wheel on every request. Here moving the deadline later only
//! writes a time: the timer stays armed at the earlier time, and when it
//! fires before the deadline it is re-armed once. Moving it earlier
//! re-arms at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A deadline and the timer that wakes the connection for it.
pub struct Deadline {
    at: Instant,
    armed: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl Deadline {
    /// A deadline that has passed.
    pub fn new() -> Deadline {
        let now = Instant::now();
        Deadline {
            at: now,
            armed: now,
            sleep: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// The deadline is `within` from now.
    pub fn set(&mut self, within: Duration) {
        self.set_at(Instant::now() + within);
    }

    /// The deadline is `at`.
    pub fn set_at(&mut self, at: Instant) {
        self.at = at;
        if at < self.armed || self.sleep.is_elapsed() {
            self.sleep.as_mut().reset(at);
            self.armed = at;
        }
    }

    /// Resolves when the deadline has passed.
    pub async fn passed(&mut self) {
        std::future::poll_fn(|cx| self.poll_passed(cx)).await
    }

    /// Ready when the deadline has passed; otherwise the timer wakes `cx`.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            if Instant::now() >= self.at {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(self.at);
            self.armed = self.at;
        }
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_kept_without_rearming_early() {
        let mut d = Deadline::new();
        d.set(Duration::from_secs(10));
        let start = Instant::now();
        d.set(Duration::from_secs(20));
        d.passed().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_rearms_at_once() {
        let mut d = Deadline::new();
        d.set(Duration::from_secs(30));
        let start = Instant::now();
        d.set(Duration::from_secs(2));
        d.passed().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        d.set(Duration::from_secs(5));
        d.passed().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
    }
}
