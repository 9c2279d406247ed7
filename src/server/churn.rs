//! Stream churn on one client connection: the defence against HTTP/2
//! "rapid reset" (CVE-2023-44487), paced or not.
//!
//! Every request the connection starts is counted, and so is every one
//! the client cancels before its response was ready (an HTTP/2
//! `RST_STREAM`, or an HTTP/1 client that went away). Once at least
//! [`MIN_STREAMS`] have started and half or more of them were cancelled,
//! the connection is closed gracefully (HTTP/2 `GOAWAY`): whatever the
//! pace, a client cannot make the proxy start more than about
//! `2 × MIN_STREAMS` upstream exchanges on one connection by cancelling
//! them. Envoy's `premature_reset` check works the same way.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

/// Streams a connection may start before its cancellations are judged.
pub const MIN_STREAMS: u32 = 100;

/// The counts of one connection.
#[derive(Debug, Default)]
pub struct Churn {
    started: AtomicU32,
    cancelled: AtomicU32,
    over: Notify,
}

impl Churn {
    /// Counts a started stream; the guard counts its cancellation unless
    /// [`Started::finish`] is called.
    pub fn start(&self) -> Started<'_> {
        self.started.fetch_add(1, Ordering::Relaxed);
        Started {
            churn: self,
            finished: false,
        }
    }

    /// Resolves once the connection has cancelled too much.
    pub async fn exceeded(&self) {
        self.over.notified().await
    }

    fn cancelled(&self) {
        let cancelled = self.cancelled.fetch_add(1, Ordering::Relaxed) + 1;
        let started = self.started.load(Ordering::Relaxed);
        if started >= MIN_STREAMS && cancelled.saturating_mul(2) >= started {
            self.over.notify_one();
        }
    }
}

/// A stream in progress.
pub struct Started<'a> {
    churn: &'a Churn,
    finished: bool,
}

impl Started<'_> {
    /// The response is ready: the stream was not cancelled.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.churn.cancelled();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn half_cancelled_after_the_minimum_is_too_much() {
        let churn = Churn::default();
        for _ in 0..MIN_STREAMS {
            churn.start().finish();
        }
        // 100 finished: 99 cancelled more stay under half of 199.
        for _ in 0..99 {
            drop(churn.start());
        }
        let over = churn.exceeded();
        tokio::pin!(over);
        assert!(futures_poll(&mut over).is_pending());
        drop(churn.start());
        // 100 of 200: half.
        assert!(futures_poll(&mut over).is_ready());
    }

    #[tokio::test]
    async fn a_few_cancellations_early_on_are_fine() {
        let churn = Churn::default();
        for _ in 0..MIN_STREAMS - 1 {
            drop(churn.start());
        }
        let over = churn.exceeded();
        tokio::pin!(over);
        assert!(futures_poll(&mut over).is_pending());
    }

    fn futures_poll<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        std::pin::Pin::new(f).poll(&mut cx)
    }
}
