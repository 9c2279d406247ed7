//! `portalgate healthcheck`: GET an admin URL, exit 0 on 200 and 1
//! otherwise. For container `HEALTHCHECK`s in images without curl. An
//! `https://` URL is checked over TLS with the name verified; any other
//! scheme is a usage error.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;

use super::Exit;
use crate::cli::HealthcheckArgs;

pub async fn run(args: HealthcheckArgs) -> Exit {
    let uri: http::Uri = match args.url.parse() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("portalgate: --url {}: {e}", args.url);
            return Exit::Usage;
        }
    };
    let tls = match uri.scheme_str() {
        Some("http") => None,
        Some("https") => match crate::config::tls::client_config(args.ca_file.as_deref(), true) {
            Ok(c) => Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(c))),
            Err(e) => {
                eprintln!("portalgate: --ca-file: {e}");
                return Exit::Usage;
            }
        },
        _ => {
            eprintln!(
                "portalgate: --url {}: use an http:// or https:// URL",
                args.url
            );
            return Exit::Usage;
        }
    };
    let check = async {
        let authority = uri.authority().ok_or("the URL needs a host")?;
        let mut sender = crate::oneshot::connect_url(&uri, tls.as_ref()).await?;
        let mut req = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str());
        if let Ok(token) = std::env::var("PORTALGATE_ADMIN_TOKEN") {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        Ok::<u16, String>(resp.status().as_u16())
    };
    match tokio::time::timeout(Duration::from_secs(args.timeout_secs), check).await {
        Ok(Ok(200)) => Exit::Ok,
        Ok(Ok(status)) => {
            eprintln!("portalgate: {} answered {status}", args.url);
            Exit::Runtime
        }
        Ok(Err(e)) => {
            eprintln!("portalgate: {}: {e}", args.url);
            Exit::Runtime
        }
        Err(_) => {
            eprintln!("portalgate: {} did not answer in time", args.url);
            Exit::Runtime
        }
    }
}
