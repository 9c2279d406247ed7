//! One metadata lookup over HTTP(S): a fresh connection, `GET`, a body of
//! at most [`MAX_METADATA`] bytes, read by [`super::read_metadata`].
//! Lookups are rare (answers are cached) so connections are not pooled.
//! TLS goes through the client configuration given (the upstream's: its CA
//! options), the name always verified.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};

use super::{read_metadata, Lookup, LookupError, Mapping};
use crate::oneshot;

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
        let transport = |e: String| LookupError::Transport(e);
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| transport(e.to_string()))?;
        let authority = uri
            .authority()
            .ok_or("the URL has no host")
            .map_err(|e| transport(e.into()))?;
        let req = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(http::header::HOST, authority.as_str())
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("portalgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| transport(e.to_string()))?;
        let mut sender = oneshot::connect_url(&uri, Some(&self.tls))
            .await
            .map_err(transport)?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_METADATA)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    LookupError::Garbage("larger than 64 KiB")
                } else {
                    transport(e.to_string())
                }
            })?
            .to_bytes();
        Ok((status, body))
    }
}
