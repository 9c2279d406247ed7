//! One metadata lookup over HTTP(S): a fresh connection, `GET`, a body of
//! at most [`MAX_METADATA`] bytes, read by [`super::read_metadata`].
//! Lookups are rare (answers are cached) so connections are not pooled.
//! TLS goes through the client configuration given (the upstream's: its CA
//! options), the name always verified.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use rustls::pki_types::ServerName;

use super::{read_metadata, Lookup, LookupError, Mapping};

/// The most bytes of metadata read; a larger document is garbage.
pub const MAX_METADATA: usize = 64 * 1024;

/// Makes lookups.
#[derive(Clone)]
pub struct Fetcher {
    tls: tokio_rustls::TlsConnector,
    mapping: Arc<Mapping>,
}

impl Fetcher {
    /// Lookups trusting what `tls` trusts, read through `mapping`.
    pub fn new(tls: Arc<rustls::ClientConfig>, mapping: Mapping) -> Fetcher {
        Fetcher {
            tls: tokio_rustls::TlsConnector::from(tls),
            mapping: Arc::new(mapping),
        }
    }

    /// The lookup of the metadata at `url`, for [`super::Cache::resolve`].
    pub fn lookup(&self, url: String) -> Lookup {
        let this = self.clone();
        Box::pin(async move {
            let (status, body) = this.get(&url).await?;
            read_metadata(status, &body, &this.mapping)
        })
    }

    async fn get(&self, url: &str) -> Result<(u16, Bytes), LookupError> {
        let transport = |e: &dyn std::fmt::Display| LookupError::Transport(e.to_string());
        let uri: http::Uri = url.parse().map_err(|e| transport(&e))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(transport(&"the URL is neither http:// nor https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| transport(&"the URL has no host"))?
            .clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| transport(&e))?;
        let _ = tcp.set_nodelay(true);
        let req = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str())
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("portalgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| transport(&e))?;
        let resp = if https {
            let name = ServerName::try_from(host).map_err(|e| transport(&e))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| transport(&format_args!("TLS: {e}")))?;
            send(tls, req).await?
        } else {
            send(tcp, req).await?
        };
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_METADATA)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    LookupError::Garbage("larger than 64 KiB")
                } else {
                    transport(&e)
                }
            })?
            .to_bytes();
        Ok((status, body))
    }
}

async fn send<S>(
    io: S,
    req: http::Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, LookupError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let transport = |e: hyper::Error| LookupError::Transport(e.to_string());
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(transport)?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(transport)
}
