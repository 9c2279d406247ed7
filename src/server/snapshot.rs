//! The configuration snapshot of a connection on hyper's codec.
//!
//! Each request is served by the snapshot in force when it starts, and its
//! future owns a count on it for as long as it runs. Taken from the shared
//! `Arc<Proxy>` itself, that count is a line every core writes twice per
//! request (HTTP/2 streams on eight cores would bounce it between all of
//! them). A connection's requests instead share one count on the snapshot
//! ([`Held`]) and take theirs on that, which only the connection's own
//! thread writes. The hold lasts while a request of the connection runs:
//! an idle connection holds no snapshot, so a reload's old snapshot (its
//! upstream pool) goes once its last request ends, as before.

use std::cell::Cell;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use super::reload::Live;
use crate::proxy::Proxy;

/// The requests' shared hold on a snapshot.
#[derive(Debug)]
pub struct Held(Arc<Proxy>);

impl Deref for Held {
    type Target = Proxy;

    fn deref(&self) -> &Proxy {
        &self.0
    }
}

/// Hands each request of a connection the snapshot in force.
pub struct Snapshots {
    live: Arc<Live>,
    /// The hold of the requests running, if any: read and replaced by the
    /// connection's own requests, one at a time (a `Cell`, not a lock:
    /// the connection's task calls its service from its own thread).
    held: Cell<Weak<Held>>,
}

impl Snapshots {
    /// A connection's view of `live`'s snapshots.
    pub fn new(live: Arc<Live>) -> Snapshots {
        Snapshots {
            live,
            held: Cell::new(Weak::new()),
        }
    }

    /// The snapshot in force, for one request.
    pub fn current(&self) -> Arc<Held> {
        // Read without touching the snapshot's count.
        let now = self.live.proxy.load();
        let held = self.held.take();
        if let Some(h) = held.upgrade().filter(|h| Arc::ptr_eq(&h.0, &now)) {
            self.held.set(held);
            return h;
        }
        let h = Arc::new(Held(arc_swap::Guard::into_inner(now)));
        self.held.set(Arc::downgrade(&h));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::decision_log::DecisionLog;

    fn live() -> Live {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
        let config = crate::config::load(&path).expect("the demo configuration loads");
        Live::new(
            &config,
            None,
            Arc::new(DecisionLog::disabled()),
            Default::default(),
        )
    }

    /// Requests share the connection's hold until a reload; the next
    /// request after one is served by the new snapshot, and a request
    /// that started before it keeps the old one.
    #[test]
    fn a_request_gets_the_snapshot_in_force() {
        let live = Arc::new(live());
        let snapshots = Snapshots::new(live.clone());
        let first = snapshots.current();
        let second = snapshots.current();
        assert!(Arc::ptr_eq(&first, &second), "one hold while requests run");
        assert!(Arc::ptr_eq(&first.0, &live.proxy.load_full()));
        let shared = Arc::strong_count(&first.0);
        let third = snapshots.current();
        assert_eq!(
            Arc::strong_count(&first.0),
            shared,
            "a request's count is on the hold, not on the shared snapshot"
        );
        assert_eq!(Arc::strong_count(&third), 3, "three requests");
        drop((second, third));

        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
        let config = crate::config::load(&path).expect("the demo configuration loads");
        let next = Proxy::new(
            &config,
            Arc::new(DecisionLog::disabled()),
            Default::default(),
            2,
        );
        live.proxy.store(Arc::new(next));
        let after = snapshots.current();
        assert_eq!(after.generation(), 2);
        assert!(Arc::ptr_eq(&after.0, &live.proxy.load_full()));
        assert_eq!(
            first.generation(),
            1,
            "a request keeps the snapshot it started with"
        );
        assert!(!Arc::ptr_eq(&after, &first));
    }

    /// A connection with no request running holds no snapshot: a reload's
    /// old one goes with its last request.
    #[test]
    fn an_idle_connection_holds_no_snapshot() {
        let live = Arc::new(live());
        let snapshot = live.proxy.load_full();
        let alone = Arc::strong_count(&snapshot);
        let snapshots = Snapshots::new(live.clone());
        let request = snapshots.current();
        assert_eq!(Arc::strong_count(&snapshot), alone + 1);
        drop(request);
        assert_eq!(Arc::strong_count(&snapshot), alone, "idle: no count left");
        // The next request holds it again.
        let request = snapshots.current();
        assert_eq!(Arc::strong_count(&snapshot), alone + 1);
        drop(request);
    }
}
