//! A future polled again only when its own waker fired.
//!
//! A keep-alive connection waits for its next request and for the drain
//! together, once per request. Polling the drain's `watch` each time takes
//! its lock to find what the registration from the first poll already
//! says: nothing happened. [`Woken`] polls the inner future with a waker of
//! its own, which notes that it fired before it wakes the task; until then
//! a poll only reads that note.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// `F`, polled when first polled, when the task's waker changed, and when
/// `F`'s registration fired; `Pending` otherwise.
pub struct Woken<F> {
    inner: Pin<Box<F>>,
    /// The note and the waker handed to `inner`, once polled.
    armed: Option<(Arc<Note>, Waker)>,
}

/// Whether the waker handed to the inner future fired since its last poll.
struct Note {
    fired: AtomicBool,
    task: Waker,
}

impl Wake for Note {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl<F: Future> Woken<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Woken<F> {
        Woken {
            inner: Box::pin(inner),
            armed: None,
        }
    }
}

impl<F: Future> Future for Woken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let waker = match &this.armed {
            Some((note, waker)) if note.task.will_wake(cx.waker()) => {
                if !note.fired.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
                note.fired.store(false, Ordering::Relaxed);
                waker
            }
            // First poll, or another task's waker: register anew.
            _ => {
                let note = Arc::new(Note {
                    fired: AtomicBool::new(false),
                    task: cx.waker().clone(),
                });
                let waker = Waker::from(note.clone());
                &this.armed.insert((note, waker)).1
            }
        };
        this.inner.as_mut().poll(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use super::Woken;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_inner_future_is_polled_again_only_after_its_waker_fired() {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let mut changed = Box::pin(async move {
            let _ = rx.changed().await;
        });
        let inner = std::future::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::SeqCst);
            changed.as_mut().poll(cx)
        });
        let mut woken = pin!(Woken::new(inner));
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(woken.as_mut().poll(&mut cx).is_pending());
        assert!(woken.as_mut().poll(&mut cx).is_pending());
        assert!(woken.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "polled once while nothing fired"
        );
        tx.send_replace(true);
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert_eq!(woken.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn another_waker_registers_anew() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut woken = pin!(Woken::new(async move {
            let mut rx = rx;
            let _ = rx.wait_for(|s| *s).await;
        }));
        let first = Arc::new(Count(AtomicUsize::new(0)));
        let second = Arc::new(Count(AtomicUsize::new(0)));
        let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
        assert!(woken
            .as_mut()
            .poll(&mut Context::from_waker(&w1))
            .is_pending());
        assert!(woken
            .as_mut()
            .poll(&mut Context::from_waker(&w2))
            .is_pending());
        tx.send_replace(true);
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the latest task is woken"
        );
        assert!(woken
            .as_mut()
            .poll(&mut Context::from_waker(&w2))
            .is_ready());
    }
}
