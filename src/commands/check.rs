//! `portalgate check`: validate a configuration and summarise it.

use crate::cli::CheckArgs;
use crate::config;

use super::{report, Exit};

pub fn run(args: &CheckArgs) -> Exit {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            report(&e);
            return Exit::Usage;
        }
    };
    println!("{}: OK", args.config.display());
    for l in &config.listeners {
        let kind = if l.tls.is_some() { "https" } else { "http" };
        println!("  listener  {kind}://{}", l.address);
    }
    let up = &config.upstream;
    println!("  upstream  {}://{}", up.scheme, up.authority);
    match config.admin {
        Some(a) => println!("  admin     http://{a}"),
        None => println!("  admin     off"),
    }
    Exit::Ok
}
