//! The decision log: one JSON line per decision, written off the request
//! path.
//!
//! Requests hand records to a bounded queue and never wait: when the queue
//! is full the record is dropped and counted, with a rate-limited warning.
//! A background task writes JSON lines to stdout and/or a file and flushes
//! whenever the queue runs empty. [`DecisionLog::close`] (after the drain on
//! shutdown) writes every queued record before it returns.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

pub use super::record::DecisionRecord;
use super::record::RawRecord;
use super::sharded::PerThread;

/// Where records go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// JSON lines to stdout (for container log collectors).
    pub stdout: bool,
    /// JSON lines appended to this file.
    pub file: Option<PathBuf>,
    /// Records the queue holds before it drops.
    pub queue: usize,
    /// Rotation of the file.
    pub rotation: Rotation,
    /// What a full queue does.
    pub on_overflow: Overflow,
}

/// What happens when the queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the record, count it, warn (rate-limited). Requests never wait.
    #[default]
    Drop,
    /// Wait for room: no record is lost, requests slow down with the writer.
    Block,
}

/// When the file is rotated, and how many rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate before the file would exceed this many bytes.
    pub max_bytes: Option<u64>,
    /// Rotate when the UTC day changes.
    pub daily: bool,
    /// Rotated files kept (`FILE.1` newest … `FILE.N` oldest).
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: Some(100 << 20),
            daily: true,
            keep: 7,
        }
    }
}

/// Records kept in memory for `/decisions/recent`, per worker thread
/// (each keeps its own, see [`PerThread`]).
pub const RECENT: usize = 1000;

/// The running decision log.
#[derive(Debug)]
pub struct DecisionLog {
    tx: Option<mpsc::Sender<Arc<RawRecord>>>,
    on_overflow: Overflow,
    recent: PerThread<VecDeque<Arc<RawRecord>>>,
    console: super::console::Console,
    dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    stop: Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
}

impl DecisionLog {
    /// A log that writes nothing.
    pub fn disabled() -> DecisionLog {
        DecisionLog {
            tx: None,
            on_overflow: Overflow::Drop,
            recent: PerThread::new(VecDeque::new),
            console: Default::default(),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            stop: Mutex::new(None),
        }
    }

    /// Opens the outputs and starts the writer task.
    pub async fn start(outputs: &Outputs) -> std::io::Result<DecisionLog> {
        if !outputs.stdout && outputs.file.is_none() {
            return Ok(DecisionLog::disabled());
        }
        let file = match &outputs.file {
            Some(p) => Some(RotatingFile::open(p.clone(), outputs.rotation).await?),
            None => None,
        };
        let (tx, rx) = mpsc::channel(outputs.queue.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(write_loop(rx, stop_rx, outputs.stdout, file));
        Ok(DecisionLog {
            tx: Some(tx),
            on_overflow: outputs.on_overflow,
            recent: PerThread::new(VecDeque::new),
            console: Default::default(),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            stop: Mutex::new(Some((stop_tx, task))),
        })
    }

    /// Whether records are written to an output (they are always kept in
    /// the in-memory ring of recent records).
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// The last `limit` records that `filter` keeps, newest last, formatted.
    pub fn recent(&self, limit: usize, filter: &super::filter::Filter) -> Vec<DecisionRecord> {
        let mut ring: Vec<Arc<RawRecord>> = Vec::new();
        self.recent.each(|own| ring.extend(own.iter().cloned()));
        // Each thread's records are in order; all of them, by time.
        ring.sort_by_key(|r| r.at);
        // Formatted outside the lock, newest first, until `limit` are kept.
        let mut kept: Vec<DecisionRecord> = ring
            .iter()
            .rev()
            .map(|r| r.format())
            .filter(|r| filter.keep(r))
            .take(limit)
            .collect();
        kept.reverse();
        kept
    }

    /// Keeps a record in the ring and queues it for the outputs. A full
    /// queue drops and counts it, or, with [`Overflow::Block`], hands back
    /// the wait for room, which the caller awaits. Synchronous otherwise, so
    /// that a request's task does not carry a send future (and the record)
    /// in its state. Formatting happens off the request path (see
    /// [`RawRecord`]).
    pub fn record(&self, r: RawRecord) -> Option<impl Future<Output = ()> + Send + '_> {
        // A full ring's oldest record, when nothing else holds it any more
        // (the writer wrote it a thousand records ago), gives its block to
        // the new one: no allocation, and no free of a block that no core
        // has touched since (a sampled profile put that free at a twentieth
        // of an intercept's user time). A record a reader still holds stays
        // as it is, and the new one gets a block of its own. The record
        // that leaves is dropped under this thread's shard lock, which only
        // the admin API's readers also take; nothing a record holds takes it.
        let r = self.recent.with(move |ring| {
            let oldest = if ring.len() >= RECENT {
                ring.pop_front()
            } else {
                None
            };
            let r = match oldest {
                Some(mut oldest) => match Arc::get_mut(&mut oldest) {
                    Some(slot) => {
                        *slot = r;
                        oldest
                    }
                    None => Arc::new(r),
                },
                None => Arc::new(r),
            };
            ring.push_back(Arc::clone(&r));
            r
        });
        self.console.observe(&r);
        let tx = self.tx.as_ref()?;
        match tx.try_send(r) {
            Ok(()) => return None,
            Err(mpsc::error::TrySendError::Full(r)) if self.on_overflow == Overflow::Block => {
                return Some(async move {
                    let _ = tx.send(r).await;
                });
            }
            // Full, or the writer has stopped (shutdown): dropped, counted.
            Err(_) => {}
        }
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped_total = n,
                "decision log queue full: records dropped"
            );
        }
        None
    }

    /// The console's counts and live feed.
    pub fn console(&self) -> &super::console::Console {
        &self.console
    }

    /// Records waiting to be written.
    pub fn queued(&self) -> usize {
        self.tx
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes every queued record, flushes, and stops the writer.
    pub async fn close(&self) {
        let stop = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((signal, task)) = stop {
            let _ = signal.send(());
            let _ = task.await;
        }
    }
}

/// The decision-log file, rotated by size and by UTC day.
struct RotatingFile {
    path: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    size: u64,
    day: String,
    rotation: Rotation,
}

fn day_of(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339(t)
        .to_string()
        .chars()
        .take(10)
        .collect()
}

fn rotated(path: &std::path::Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    async fn open(path: PathBuf, rotation: Rotation) -> std::io::Result<RotatingFile> {
        let f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let meta = f.metadata().await?;
        // The day of the file is the day it was last written.
        let day = meta
            .modified()
            .map_or_else(|_| day_of(std::time::SystemTime::now()), day_of);
        Ok(RotatingFile {
            path,
            file: tokio::io::BufWriter::new(f),
            size: meta.len(),
            day,
            rotation,
        })
    }

    async fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        let today = day_of(std::time::SystemTime::now());
        let too_big = self
            .rotation
            .max_bytes
            .is_some_and(|max| self.size > 0 && self.size + line.len() as u64 > max);
        if too_big || (self.rotation.daily && today != self.day && self.size > 0) {
            self.rotate().await?;
        }
        self.day = today;
        self.file.write_all(line).await?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// `FILE.k` → `FILE.k+1` (the oldest beyond `keep` removed), `FILE` →
    /// `FILE.1`, and a new `FILE`.
    async fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        let keep = self.rotation.keep;
        if keep == 0 {
            tokio::fs::remove_file(&self.path).await?;
        } else {
            let _ = tokio::fs::remove_file(rotated(&self.path, keep)).await;
            for k in (1..keep).rev() {
                let _ = tokio::fs::rename(rotated(&self.path, k), rotated(&self.path, k + 1)).await;
            }
            tokio::fs::rename(&self.path, rotated(&self.path, 1)).await?;
        }
        let f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await?;
        self.file = tokio::io::BufWriter::new(f);
        self.size = 0;
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().await
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Arc<RawRecord>>,
    stop: oneshot::Receiver<()>,
    stdout: bool,
    mut file: Option<RotatingFile>,
) {
    let mut out = stdout.then(|| tokio::io::BufWriter::new(tokio::io::stdout()));
    let mut stop = Some(stop);
    let mut line = Vec::with_capacity(1024);
    loop {
        let next = match stop.as_mut() {
            Some(s) => tokio::select! {
                biased;
                r = rx.recv() => r,
                _ = s => {
                    // Stop taking new records; what is queued is still read.
                    stop = None;
                    rx.close();
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(first) = next else { break };
        let mut batch = vec![first];
        while let Ok(r) = rx.try_recv() {
            batch.push(r);
        }
        for r in &batch {
            line.clear();
            if serde_json::to_writer(&mut line, &r.format()).is_err() {
                continue;
            }
            line.push(b'\n');
            if let Some(o) = out.as_mut() {
                let _ = o.write_all(&line).await;
            }
            if let Some(f) = file.as_mut() {
                if let Err(e) = f.write(&line).await {
                    tracing::error!(error = %e, "cannot write the decision log file");
                }
            }
        }
        if let Some(o) = out.as_mut() {
            let _ = o.flush().await;
        }
        if let Some(f) = file.as_mut() {
            let _ = f.flush().await;
        }
    }
    if let Some(o) = out.as_mut() {
        let _ = o.flush().await;
    }
    if let Some(f) = file.as_mut() {
        let _ = f.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::filter::Filter;
    use crate::telemetry::testing::raw;

    /// Past the ring's size, the newest records stay, in order, each as it
    /// was recorded, whether a live feed held some of the old ones or not.
    #[test]
    fn the_ring_keeps_the_newest_records_whoever_holds_the_old_ones() {
        let log = DecisionLog::disabled();
        let at = std::time::SystemTime::now();
        let total = RECENT + RECENT / 2;
        let mut feed = None;
        for i in 0..total {
            // A live feed for a stretch of the run holds records too.
            if i == RECENT / 4 {
                feed = log.console().subscribe();
                assert!(feed.is_some());
            }
            if i == RECENT / 2 {
                feed = None;
            }
            let r = raw(at, None, "deny", None, &format!("/r/{i}"));
            assert!(log.record(r).is_none());
        }
        drop(feed);
        let kept = log.recent(usize::MAX, &Filter::default());
        let targets: Vec<String> = kept.iter().map(|r| r.target.clone()).collect();
        let want: Vec<String> = (total - RECENT..total).map(|i| format!("/r/{i}")).collect();
        assert_eq!(targets, want);
    }

    /// A full ring's oldest record gives its block to the next one when
    /// nothing else holds it; a record a live feed still holds is left as
    /// it was, and the next one gets a block of its own.
    #[test]
    fn the_oldest_record_gives_its_block_only_when_no_one_holds_it() {
        let log = DecisionLog::disabled();
        let at = std::time::SystemTime::now();
        let record = |i: usize| {
            assert!(log
                .record(raw(at, None, "deny", None, &format!("/r/{i}")))
                .is_none());
        };
        let ends = |log: &DecisionLog| {
            log.recent.with(|ring| {
                let first = ring.front().map(Arc::as_ptr);
                let last = ring.back().map(Arc::as_ptr);
                (first, last, ring.len())
            })
        };
        for i in 0..RECENT {
            record(i);
        }
        let (oldest, _, len) = ends(&log);
        assert_eq!(len, RECENT);
        record(RECENT);
        let (_, newest, len) = ends(&log);
        assert_eq!(len, RECENT);
        assert_eq!(newest, oldest, "an unheld record's block is reused");

        // A feed holds every record from here on: once the ring is all
        // such records, its oldest is held when it leaves.
        let mut feed = log.console().subscribe().expect("a live feed");
        let (first, last) = (RECENT + 1, 2 * RECENT + 1);
        for i in first..last {
            record(i);
        }
        let (oldest, _, _) = ends(&log);
        record(last);
        let (_, newest, _) = ends(&log);
        assert_ne!(newest, oldest, "a held record's block is not reused");
        for i in first..=last {
            let held = feed.records.try_recv().expect("the feed holds it");
            assert_eq!(held.format().target, format!("/r/{i}"));
        }
        let kept = log.recent(usize::MAX, &Filter::default());
        assert_eq!(kept.len(), RECENT);
        assert_eq!(kept[0].target, format!("/r/{}", first + 1));
        assert_eq!(kept[RECENT - 1].target, format!("/r/{last}"));
    }
}
