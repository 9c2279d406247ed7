//! `portalgate serve`: run until SIGTERM or SIGINT, then drain.

use crate::cli::ServeArgs;
use crate::server::{signal, Server};

use super::{load_config, Exit};

pub async fn run(args: ServeArgs) -> Exit {
    // Signals are handled from here on: a SIGTERM while a large
    // configuration loads drains once it is up, a SIGHUP reloads then.
    let stop = signal::terminate();
    #[cfg(unix)]
    signal::hold_hangups();
    tracing::info!(config = %args.config.display(), "loading the configuration");
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
    // The server holds what it needs; the loaded configuration (a large
    // tenant directory, say) must not outlive the first reload.
    drop(config);
    server.run(stop).await;
    Exit::Ok
}
