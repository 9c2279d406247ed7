//! `portalgate healthcheck`: GET an admin URL, exit 0 on 200 and 1
//! otherwise. For container `HEALTHCHECK`s in images without curl.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;

use super::Exit;
use crate::cli::HealthcheckArgs;

pub async fn run(args: HealthcheckArgs) -> Exit {
    let check = async {
        let uri: http::Uri = args.url.parse().map_err(|e| format!("{e}"))?;
        let authority = uri.authority().ok_or("the URL needs a host")?.clone();
        let port = authority.port_u16().unwrap_or(80);
        let mut sender = super::http1_connect((authority.host(), port)).await?;
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
