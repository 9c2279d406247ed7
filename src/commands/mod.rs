//! The commands behind the CLI, and the exit codes.
//!
//! Exit codes: 0 success, 64 bad configuration or usage (as linkerd2-proxy
//! and sysexits' `EX_USAGE`), 1 a runtime failure (e.g. a port in use).

/// `println!` for a command's report that does not panic when its reader
/// goes away (`portalgate check | head -1`): what cannot be written is
/// dropped, and the exit code still says how the command went.
macro_rules! out {
    () => {
        out!("")
    };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod check;
mod demo;
mod explain;
mod healthcheck;
mod logs;
mod serve;
mod test;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok,
    /// Runtime failure.
    Runtime,
    /// Bad configuration or usage.
    Usage,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(match e {
            Exit::Ok => 0,
            Exit::Runtime => 1,
            Exit::Usage => 64,
        })
    }
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> Exit {
    // `test` and `explain` report on stdout; per-request logs would bury that.
    let quiet = matches!(cli.command, Command::Test(_) | Command::Explain(_))
        && std::env::var_os("PORTALGATE_LOG").is_none();
    let level = cli.log_level.as_deref().or(quiet.then_some("warn"));
    crate::telemetry::init(level, cli.log_format);
    match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Serve(args) => with_runtime(Threads::Workers, || serve::run(args)),
        Command::Demo(args) => with_runtime(Threads::Workers, || demo::run(args)),
        Command::Test(args) => with_runtime(Threads::Pool, || test::run(args)),
        Command::Explain(args) => with_runtime(Threads::Pool, || explain::run(args)),
        Command::Logs(args) => logs::run(&args),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut cmd = crate::cli::Cli::command();
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "portalgate", &mut out);
            emit(&out, "the completions")
        }
        Command::Schema => emit(
            format!("{}\n", crate::config::schema()).as_bytes(),
            "the schema",
        ),
        Command::Man => {
            use clap::CommandFactory;
            let man = clap_mangen::Man::new(crate::cli::Cli::command());
            let mut out = Vec::new();
            match man.render(&mut out) {
                Ok(()) => emit(&out, "the man page"),
                Err(e) => {
                    eprintln!("portalgate: cannot render the man page: {e}");
                    Exit::Runtime
                }
            }
        }
        Command::Healthcheck(args) => with_runtime(Threads::Pool, || healthcheck::run(args)),
    }
}

/// Writes a generated document to stdout. A reader that stops early
/// (`portalgate schema | head`) is not a failure, as for any Unix filter.
fn emit(bytes: &[u8], what: &str) -> Exit {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Ok,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("portalgate: cannot write {what}: {e}");
            Exit::Runtime
        }
    }
}

/// Which runtime a command runs on.
enum Threads {
    /// The server's: this thread's own event loop, worker 0 of
    /// `server.workers` (the server starts the others).
    Workers,
    /// Tokio's work-stealing pool over the CPUs (one thread on one CPU).
    Pool,
}

fn with_runtime<F: std::future::Future<Output = Exit>>(
    threads: Threads,
    f: impl FnOnce() -> F,
) -> Exit {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cpus == 1 || matches!(threads, Threads::Workers) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    match builder.enable_all().build() {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eprintln!("portalgate: cannot start the runtime: {e}");
            Exit::Runtime
        }
    }
}

/// Loads a configuration, or prints its errors and gives the exit code.
fn load_config(path: &std::path::Path) -> Result<crate::config::Config, Exit> {
    crate::config::load(path).map_err(|e| {
        report(&e);
        Exit::Usage
    })
}

/// Prints configuration errors, one per line, and a count.
fn report(errors: &crate::config::LoadError) {
    eprintln!("{errors}");
    if let crate::config::LoadError::Invalid(list) = errors {
        let n = list.0.len();
        eprintln!("{n} error{} found", if n == 1 { "" } else { "s" });
    }
}
