//! The operators' console on the admin listener (`/ui/`).
//!
//! The page, its script and its style sheet are compiled into the binary
//! (no external assets) and carry no data, so they are served without the
//! token; everything they show comes from the token-guarded JSON endpoints
//! (`/config`, `/decisions/recent`, `/ui/api/summary`) and the live feed
//! [`events`] (`/ui/api/events`, server-sent events), which the page reads
//! with `fetch` and an `Authorization` header (an `EventSource` cannot send
//! one). Records are the decision log's, pseudonymised as written; counts
//! are aggregated server-side ([`crate::telemetry::console`]), so a busy
//! proxy sends the page a few hundred numbers, not its records.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::{broadcast, mpsc};

use crate::telemetry::console::Console;
use crate::telemetry::filter::Filter;

/// How often an idle feed sends a comment, so that a client that went away
/// is noticed and its place freed.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// A compiled-in file of the console: its content type and bytes.
pub struct Asset {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static str,
}

/// The console's files by path (`/ui/` is the page).
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body) = match path {
        "/ui/" => (
            "text/html; charset=utf-8",
            include_str!("console/index.html"),
        ),
        "/ui/console.js" => (
            "text/javascript; charset=utf-8",
            include_str!("console/console.js"),
        ),
        "/ui/console.css" => (
            "text/css; charset=utf-8",
            include_str!("console/console.css"),
        ),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

/// The policy every console response carries: only the binary's own script
/// and style, nothing loaded from elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// A live feed as a response body: `text/event-stream` frames, one
/// `decision` event per record `filter` keeps (the record as the decision
/// log writes it), a `skipped` event with the count when the client fell
/// behind, a comment every [`HEARTBEAT`].
pub struct Events {
    frames: mpsc::Receiver<Bytes>,
}

impl http_body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.frames
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// Opens a live feed of the records `filter` keeps; `None` while the
/// console's cap of open feeds is reached.
pub fn events(console: &Console, filter: Filter) -> Option<Events> {
    let mut sub = console.subscribe()?;
    // A few frames of room: a client that reads slowly makes the feed skip
    // records (counted), never grow.
    let (tx, frames) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        if tx.send(Bytes::from_static(b": live\n\n")).await.is_err() {
            return;
        }
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let frame = tokio::select! {
                got = sub.records.recv() => match got {
                    Ok(r) => {
                        let record = r.format();
                        if !filter.keep(&record) {
                            continue;
                        }
                        let Ok(json) = serde_json::to_string(&record) else { continue };
                        Bytes::from(format!("event: decision\ndata: {json}\n\n"))
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        Bytes::from(format!("event: skipped\ndata: {n}\n\n"))
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = beat.tick() => Bytes::from_static(b": keep-alive\n\n"),
                _ = tx.closed() => break,
            };
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    Some(Events { frames })
}
