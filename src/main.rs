//! The `portalgate` binary: parse the command line, run a command, exit.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// mimalloc: measured faster than glibc malloc on the proxy's many small,
/// short-lived allocations (see benches/load).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use portalgate::cli::Cli;
use portalgate::commands::{self, Exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    commands::run(cli).into()
}
