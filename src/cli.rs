//! The command line (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// portalgate: a policy-enforcing reverse proxy for partner portals.
#[derive(Debug, Parser)]
#[command(name = "portalgate", version, about, long_about = None)]
pub struct Cli {
    /// Log filter, e.g. `info` or `portalgate=debug` (default: $PORTALGATE_LOG, else `info`).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Operational log format.
    #[arg(long, global = true, value_enum, default_value_t = crate::telemetry::LogFormat::Human)]
    pub log_format: crate::telemetry::LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy with a configuration file until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Validate a configuration file; print every error with file, line,
    /// column and key; exit 64 if any is found.
    Check(CheckArgs),
    /// Run a sample partner-portal backend and the proxy in front of it.
    Demo(DemoArgs),
    /// Dry-run one request: canonical form, each rule and why it matched
    /// or not, the decision and the rendered response.
    Explain(ExplainArgs),
    /// Read decision logs: filter, print as a table or JSON lines, or summarise.
    Logs(LogsArgs),
    /// GET an admin URL; exit 0 on 200, else 1 (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Run table-driven policy cases through the proxy (served in-process
    /// with a stub upstream); exit 1 if any case fails.
    Test(TestArgs),
    /// Print a shell completion script (e.g. `portalgate completions bash >
    /// /etc/bash_completion.d/portalgate`).
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `portalgate man > portalgate.1`.
    Man,
    /// Print the JSON Schema of the configuration file (for editors: with
    /// Taplo/Even Better TOML, `#:schema ./portalgate.schema.json`).
    Schema,
}

/// `portalgate completions`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `portalgate serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML).
    #[arg(long, short, value_name = "PATH")]
    pub config: PathBuf,
}

/// `portalgate check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file (TOML).
    #[arg(long, short, value_name = "PATH")]
    pub config: PathBuf,
}

/// `portalgate demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address the proxy listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address the sample backend listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9080")]
    pub backend_listen: SocketAddr,
    /// Address of the admin listener (health and readiness).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9901")]
    pub admin_listen: SocketAddr,
}

/// `portalgate test`
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The configuration file (TOML).
    #[arg(long, short, value_name = "PATH")]
    pub config: PathBuf,
    /// The cases file (TOML, `[[cases]]` with `expect`).
    #[arg(value_name = "CASES")]
    pub cases: PathBuf,
}

/// `portalgate explain`
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The configuration file (TOML).
    #[arg(long, short, value_name = "PATH")]
    pub config: PathBuf,
    /// The method.
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,
    /// A header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// The request body.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,
    /// The URL: a path (`/v1/...`) or a full URL whose host is used.
    #[arg(value_name = "URL")]
    pub url: String,
}

/// `portalgate logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this rule.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only this tenant (any GUID spelling).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this action (a report-only record has its rule's action).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::telemetry::filter::ACTIONS))]
    pub action: Option<String>,
    /// Only records of this mode.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::telemetry::filter::MODES))]
    pub mode: Option<String>,
    /// Only this status (100-599).
    #[arg(long, value_parser = clap::value_parser!(u16).range(100..=599))]
    pub status: Option<u16>,
    /// From this time (RFC 3339) or age (`2h`, `30m`).
    #[arg(long)]
    pub since: Option<String>,
    /// Until this time (RFC 3339) or age.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this route template, or paths with this prefix.
    #[arg(long)]
    pub path: Option<String>,
    /// Print the matching records as JSON lines.
    #[arg(long, conflicts_with = "summary")]
    pub json: bool,
    /// Print counts by rule, tenant, action, portal and hour.
    #[arg(long)]
    pub summary: bool,
    /// After what exists, keep printing new records (like `tail -F`,
    /// surviving rotation) until interrupted.
    #[arg(long, conflicts_with = "summary")]
    pub follow: bool,
    /// Decision-log files; rotated siblings (`FILE.N`) are read first.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// `portalgate healthcheck`
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The URL to check (sends $PORTALGATE_ADMIN_TOKEN as a bearer token if set).
    #[arg(long, default_value = "http://127.0.0.1:9901/healthz")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 2)]
    pub timeout_secs: u64,
    /// For an `https://` URL: trust only the CAs in this PEM bundle
    /// (default: the web PKI roots). The server name is always verified.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
}
