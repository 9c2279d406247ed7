//! Operational logging with `tracing`, and the building blocks of the
//! decision log ([`pseudonym`]).
//!
//! The filter comes from `--log-level`, else the `PORTALGATE_LOG`
//! environment variable (an `EnvFilter` directive), else `info`.
//! Logs go to stderr so stdout stays free for command output (and for
//! decision records when `[decision_log] stdout` is on); `--log-format json`
//! writes one JSON object per line.

pub mod decision_log;
pub mod id;
pub mod metrics;
pub mod pseudonym;
pub mod record;
pub mod sharded;
pub mod throttle;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The format of operational logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Installs the global subscriber; a second call does nothing.
pub fn init(level: Option<&str>, format: LogFormat) {
    let filter = level
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_env("PORTALGATE_LOG").ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
