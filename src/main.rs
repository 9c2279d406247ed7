//! The `portalgate` binary: parse the command line, run a command, exit.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use portalgate::cli::Cli;
use portalgate::commands::{self, Exit};

// mimalloc: per-thread heaps without cross-thread locking, and freed
// pages go back to the system (glibc's malloc kept most of the memory of
// a burst of connections after they closed; see the README's figures).
// It replaces `malloc` and `free` for the whole process (its `override`
// feature) and Rust allocates through them (`System`): the crate's
// `GlobalAlloc` takes mimalloc's aligned path for every allocation, which
// cost about 20 instructions more per allocation, 120 to 200 per request.
// Naming the crate links it.
use mimalloc as _;

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
