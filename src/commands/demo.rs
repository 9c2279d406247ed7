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

/// Writes the embedded files, with the chosen addresses, into a private
/// directory that lives as long as the demo, and loads them from there: the
/// demo reloads like a deployment does (edit the file, SIGHUP, or
/// `POST /reload`).
fn write_demo_config(
    dir: &std::path::Path,
    args: &DemoArgs,
    backend: SocketAddr,
) -> Result<std::path::PathBuf, String> {
    let mut text = DEMO_CONFIG.to_string();
    for (from, to) in [
        (
            "address = \"127.0.0.1:8080\"",
            format!("address = \"{}\"", args.listen),
        ),
        (
            "url = \"http://127.0.0.1:9080\"",
            format!("url = \"http://{backend}\""),
        ),
        (
            "address = \"127.0.0.1:9901\"",
            format!("address = \"{}\"", args.admin_listen),
        ),
    ] {
        if !text.contains(from) {
            return Err(format!("the embedded demo configuration has no {from}"));
        }
        text = text.replace(from, &to);
    }
    let path = dir.join("demo.toml");
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("policies"))?;
        std::fs::write(&path, &text)?;
        std::fs::write(dir.join("policies").join("germany.toml"), GERMANY_PACK)
    };
    write().map_err(|e| {
        format!(
            "cannot write the demo configuration to {}: {e}",
            dir.display()
        )
    })?;
    Ok(path)
}

pub async fn run(args: DemoArgs) -> Exit {
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
    let dir = std::env::temp_dir().join(format!("portalgate-demo-{}", std::process::id()));
    let exit = run_with(&args, &dir, backend_addr).await;
    let _ = std::fs::remove_dir_all(&dir);
    backend_task.abort();
    exit
}

async fn run_with(args: &DemoArgs, dir: &std::path::Path, backend_addr: SocketAddr) -> Exit {
    // The banner names the pid to send SIGHUP to: handle it from before then.
    #[cfg(unix)]
    signal::hold_hangups();
    let path = match write_demo_config(dir, args, backend_addr) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Usage;
        }
    };
    let server = match Server::bind(&config, Some(path.clone())).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("portalgate: {e}");
            return Exit::Runtime;
        }
    };
    // The server holds what it needs; the loaded configuration (a large
    // tenant directory, say) must not outlive the first reload.
    drop(config);
    let proxy = server.local_addrs().first().copied().unwrap_or(args.listen);
    let admin = server.admin_addr().unwrap_or(args.admin_listen);
    out!(
        "{}",
        banner(
            proxy,
            backend_addr,
            admin,
            &path,
            &dir.join("decisions.jsonl")
        )
    );
    server.run(signal::terminate()).await;
    Exit::Ok
}

fn banner(
    proxy: SocketAddr,
    backend: SocketAddr,
    admin: SocketAddr,
    config: &std::path::Path,
    decisions: &std::path::Path,
) -> String {
    let pid = std::process::id();
    let p = format!("http://{proxy}");
    format!(
        "portalgate demo: the Germany policy pack in front of a sample Partner Center\n\
         \n  proxy    {p}\n  backend  http://{backend}  (sample Partner Center API and web UI)\n  admin    http://{admin}\n  console  http://{admin}/ui/  (blocked requests live, counts, rules)\n\
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
         \n\nEvery blocked request is recorded in {decisions}:\
         \n  portalgate logs {decisions}\
         \n  portalgate logs --summary {decisions}\
         \n  portalgate logs --follow {decisions}\
         \n\nThe configuration is {config}: edit it (or its policies/germany.toml) and it reloads;\
         \nso do `kill -HUP {pid}` and `curl -X POST http://{admin}/reload`.\
         \n\nStop with Ctrl-C (pid {pid}).",
        config = config.display(),
        decisions = decisions.display()
    )
}
