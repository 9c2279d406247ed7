//! Operational logging with `tracing`, and the building blocks of the
//! decision log ([`pseudonym`]).
//!
//! The filter comes from `--log-level`, else the `PORTALGATE_LOG`
//! environment variable (an `EnvFilter` directive), else `info`.
//! Logs go to stderr so stdout stays free for command output.

pub mod decision_log;
pub mod metrics;
pub mod pseudonym;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call does nothing.
pub fn init(level: Option<&str>) {
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("PORTALGATE_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
