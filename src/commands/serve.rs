//! `portalgate serve`: run until SIGTERM or SIGINT, then drain.

use crate::cli::ServeArgs;
use crate::server::{signal, Server};

use super::{load_config, Exit};

pub async fn run(args: ServeArgs) -> Exit {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let server = match Server::bind(&config, Some(args.config.clone())).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    server.run(signal::terminate()).await;
    Exit::Ok
}
