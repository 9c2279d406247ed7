//! `portalgate demo`: the sample backend and the proxy in one process.

use std::net::SocketAddr;

use crate::cli::DemoArgs;
use crate::config;
use crate::demo::{self, GERMANY_TENANT, GLOBAL_TENANT};
use crate::server::{signal, Server};

use super::Exit;

/// The shipped demo configuration, embedded so `demo` runs from anywhere.
pub const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
/// The Germany policy pack the demo configuration includes.
pub const GERMANY_PACK: &str = include_str!("../../config/policies/germany.toml");

/// Writes the embedded files into a private directory and loads them from
/// there, so includes resolve as they do for a deployed configuration.
fn load_demo_config() -> Result<config::Config, String> {
    let dir = std::env::temp_dir().join(format!("portalgate-demo-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("policies"))?;
        std::fs::write(dir.join("demo.toml"), DEMO_CONFIG)?;
        std::fs::write(dir.join("policies").join("germany.toml"), GERMANY_PACK)
    };
    write().map_err(|e| {
        format!(
            "cannot write the demo configuration to {}: {e}",
            dir.display()
        )
    })?;
    let loaded = config::parse(DEMO_CONFIG, "config/demo.toml", &dir).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

pub async fn run(args: DemoArgs) -> Exit {
    let mut config = match load_demo_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Usage;
        }
    };
    let backend = match tokio::net::TcpListener::bind(args.backend_listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "portalgate: cannot listen on {} for the demo backend: {e}",
                args.backend_listen
            );
            return Exit::Runtime;
        }
    };
    let backend_addr = backend.local_addr().unwrap_or(args.backend_listen);
    let backend_task = tokio::spawn(demo::serve(backend));
    if let Some(l) = config.listeners.first_mut() {
        l.address = args.listen;
    }
    match backend_addr.to_string().parse() {
        Ok(a) => config.upstream.authority = a,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    }
    config.admin = Some(args.admin_listen);
    let server = match Server::bind(&config, None).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    let proxy = server.local_addrs().first().copied().unwrap_or(args.listen);
    let admin = server.admin_addr().unwrap_or(args.admin_listen);
    println!("{}", banner(proxy, backend_addr, admin));
    server.run(signal::terminate()).await;
    backend_task.abort();
    Exit::Ok
}

fn banner(proxy: SocketAddr, backend: SocketAddr, admin: SocketAddr) -> String {
    let p = format!("http://{proxy}");
    format!(
        "portalgate demo: the Germany policy pack in front of a sample Partner Center\n\
         \n  proxy    {p}\n  backend  http://{backend}  (sample Partner Center API and web UI)\n  admin    http://{admin}\n\
         \n  Germany tenant: {GERMANY_TENANT}\n  global tenant:  {GLOBAL_TENANT}\n\
         \nTry (a response with x-demo-backend: reached came from the backend):\n\
         \n  # Germany: creating a customer user is explained, never forwarded\
         \n  curl -si -X POST {p}/v1/customers/{GERMANY_TENANT}/users -H 'Accept: application/problem+json' -H 'Content-Type: application/json' -d '{{\"userPrincipalName\":\"new.user@contoso.example\"}}'\
         \n  # the same in Partner Center's error format, echoing MS-CorrelationId\
         \n  curl -si -X POST {p}/v1/customers/{GERMANY_TENANT}/users -H 'Accept: application/json' -H 'MS-CorrelationId: 5f0d1c7e-demo' -H 'Content-Type: application/json' -d '{{}}'\
         \n  # a password reset, explained in German\
         \n  curl -s -X PATCH {p}/v1/customers/{GERMANY_TENANT}/users/7f4b1c2e-0000-4000-8000-000000000001 -H 'Accept: text/plain' -H 'Accept-Language: de' -H 'Content-Type: application/json' -d '{{\"passwordProfile\":{{\"forceChangePassword\":true}}}}'\
         \n  # a browser on the Germany front end is redirected to the portal\
         \n  curl -si {p}/dashboard/account/usermanagement -H 'Host: partnercenter.microsoftonline.de' -H 'Accept: text/html'\
         \n  # the global tenant's request reaches the backend unchanged\
         \n  curl -si -X POST {p}/v1/customers/{GLOBAL_TENANT}/users -H 'Accept: application/json' -H 'Content-Type: application/json' -d '{{}}'\
         \n  # reads are forwarded; license reads are forwarded and logged as report-only\
         \n  curl -si {p}/v1/customers/{GERMANY_TENANT}/users/7f4b1c2e-0000-4000-8000-000000000001/licenses\
         \n  curl -s http://{admin}/readyz\
         \n\nStop with Ctrl-C."
    )
}
