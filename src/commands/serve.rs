//! `portalgate serve`: run until SIGTERM or SIGINT, then drain.

use crate::cli::ServeArgs;
use crate::config;
use crate::server::{signal, Server};

use super::{report, Exit};

pub async fn run(args: ServeArgs) -> Exit {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            report(&e);
            return Exit::Usage;
        }
    };
    let server = match Server::bind(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    server.run(signal::terminate()).await;
    Exit::Ok
}
