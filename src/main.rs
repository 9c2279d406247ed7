//! The `portalgate` binary: parse the command line, run a command, exit.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use portalgate::cli::Cli;
use portalgate::commands::{self, Exit};

/// mimalloc: per-thread heaps without cross-thread locking, and freed
/// pages go back to the system (glibc's malloc kept most of the memory of
/// a burst of connections after they closed; see the README's figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
