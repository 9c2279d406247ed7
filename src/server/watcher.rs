//! Reload when a source file changes.
//!
//! The directories holding the configuration, its included policy files and
//! its tenant files are watched (not the files), so every way a file gets
//! replaced is seen: a write in place, an editor's write-temp-then-rename,
//! and Kubernetes' atomic swap of the `..data` symlink of a mounted
//! ConfigMap or Secret. A burst of events is debounced into one check, and
//! the check reloads only when the files' contents changed.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::reload::Live;

/// Quiet time that ends a burst of events.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// SHA-256 over the contents of `files` (through symlinks; a missing file
/// counts as a distinct state).
pub fn fingerprint(files: &[PathBuf]) -> Vec<u8> {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    for f in files {
        match std::fs::read(f) {
            Ok(bytes) => {
                d.update(&(bytes.len() as u64).to_le_bytes());
                d.update(&bytes);
            }
            Err(_) => d.update(b"\0missing\0"),
        }
    }
    d.finish().as_ref().to_vec()
}

/// Watches `sources` and reloads `live` when their contents change from
/// `loaded` (their fingerprint when the running configuration was read);
/// runs until aborted. Returns at once when nothing can be watched.
pub async fn run(live: Arc<Live>, sources: Vec<PathBuf>, loaded: Vec<u8>) {
    let dirs: BTreeSet<PathBuf> = sources
        .iter()
        .filter_map(|f| {
            f.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = tx.send(());
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch configuration files; reload with SIGHUP or POST /reload");
            return;
        }
    };
    for d in &dirs {
        if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch a configuration directory");
        }
    }
    tracing::info!(
        files = sources.len(),
        "watching configuration files for changes"
    );
    // A change between loading and watching raised no event: compare with
    // what was loaded once, now that the watches are in place.
    let mut last = loaded;
    let mut first = true;
    loop {
        if !first && rx.recv().await.is_none() {
            break;
        }
        first = false;
        // Debounce: wait until the burst is over.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
        let s = sources.clone();
        let now = tokio::task::spawn_blocking(move || fingerprint(&s))
            .await
            .unwrap_or_default();
        if now != last {
            last = now;
            tracing::info!("a configuration file changed: reloading");
            // Errors are logged and counted by `reload`.
            let _ = live.reload().await;
        }
    }
    drop(watcher);
}
