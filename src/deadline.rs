//! A deadline that costs nothing to move: one per connection (the next
//! head, the response head, the next body bytes) or per streamed body.
//!
//! Every request moves a connection's deadline (the next head, the
//! response head); re-arming a runtime timer each time would touch the
//! timer wheel on every request. Here moving the deadline later only
//! writes a time: the timer stays armed at the earlier time, and when it
//! fires before the deadline it is re-armed once. Moving it earlier
//! re-arms at once. A connection waits on its deadline once per
//! request; while the armed timer already holds the waiting task's waker,
//! that wait does not poll the timer again (which would only register the
//! same waker again).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A deadline and the timer that wakes the connection for it.
pub struct Deadline {
    at: Instant,
    armed: Instant,
    sleep: Pin<Box<Sleep>>,
    /// The task the armed timer wakes: the last one that found it pending
    /// since it was last armed.
    waiting: Option<Waker>,
}

impl Deadline {
    /// A deadline that has passed.
    pub fn new() -> Deadline {
        let now = Instant::now();
        Deadline {
            at: now,
            armed: now,
            sleep: Box::pin(tokio::time::sleep_until(now)),
            waiting: None,
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
            self.rearm(at);
        }
    }

    /// Resolves when the deadline has passed.
    pub async fn passed(&mut self) {
        std::future::poll_fn(|cx| self.poll_passed(cx)).await
    }

    /// Ready when the deadline has passed; otherwise the timer wakes `cx`.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Still armed (not fired, not reset) for this very task: the timer
        // will wake it.
        if !self.sleep.is_elapsed() && self.wakes(cx) {
            return Poll::Pending;
        }
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                if !self.wakes(cx) {
                    self.waiting = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            if Instant::now() >= self.at {
                return Poll::Ready(());
            }
            self.rearm(self.at);
        }
    }

    /// Whether the armed timer holds `cx`'s waker.
    fn wakes(&self, cx: &Context<'_>) -> bool {
        self.waiting
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
    }

    /// Arms the timer for `at`; the next wait registers its task again.
    fn rearm(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.armed = at;
        self.waiting = None;
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

    /// A wait that finds the timer armed for its task leaves it be, and
    /// the timer still wakes the task: when it fires, after another task
    /// waited on it, and after it was armed again (an earlier deadline).
    #[tokio::test(start_paused = true)]
    async fn a_task_waiting_again_is_still_woken() {
        let mut d = Deadline::new();
        d.set(Duration::from_secs(10));
        let start = Instant::now();
        // Polled by another task first: its waker is not this task's.
        let mut other = Context::from_waker(Waker::noop());
        assert!(d.poll_passed(&mut other).is_pending());
        for _ in 0..3 {
            // Found pending by this task again and again, as a connection
            // waits once per request.
            std::future::poll_fn(|cx| match d.poll_passed(cx) {
                Poll::Pending => Poll::Ready(()),
                Poll::Ready(()) => panic!("the deadline has not passed yet"),
            })
            .await;
        }
        d.passed().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        // Armed again, earlier: the next wait registers anew.
        d.set(Duration::from_secs(30));
        d.set(Duration::from_secs(1));
        d.passed().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(11));
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
