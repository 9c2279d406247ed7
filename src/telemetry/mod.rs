//! Operational logging with `tracing`, and the building blocks of the
//! decision log ([`pseudonym`]).
//!
//! The filter comes from `--log-level`, else the `PORTALGATE_LOG`
//! environment variable (an `EnvFilter` directive), else `info`. A bare
//! level (`debug`, `trace`) is portalgate's own: the libraries below it
//! stay at `warn`, so that no level makes them write what a request
//! carries. A directive that names targets (`h2=trace`) is taken as written.
//! Logs go to stderr so stdout stays free for command output (and for
//! decision records when `[decision_log] stdout` is on); `--log-format json`
//! writes one JSON object per line.

pub mod console;
pub mod decision_log;
pub mod filter;
pub mod id;
pub mod metrics;
pub mod pseudonym;
pub mod record;
pub mod sharded;
#[cfg(test)]
pub(crate) mod testing;
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

/// `level` for portalgate's own targets and `warn` for the rest, when it
/// is a bare level above `warn`; anything else as it is.
pub fn own_level(directive: &str) -> String {
    let bare = ["warn", "info", "debug", "trace"]
        .iter()
        .any(|l| directive.trim().eq_ignore_ascii_case(l));
    if bare {
        format!("warn,portalgate={}", directive.trim())
    } else {
        directive.to_string()
    }
}

/// Installs the global subscriber; a second call does nothing.
pub fn init(level: Option<&str>, format: LogFormat) {
    let env = std::env::var("PORTALGATE_LOG").ok();
    let directive = level.or(env.as_deref()).unwrap_or("info");
    let filter = EnvFilter::try_new(own_level(directive))
        .unwrap_or_else(|_| EnvFilter::new(own_level("info")));
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
