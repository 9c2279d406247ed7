//! The `portalgate` binary: parse the command line, run a command, exit.
#![forbid(unsafe_code)]

use std::process::ExitCode;

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
