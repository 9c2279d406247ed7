//! One HTTP/1.1 client connection, cleartext or TLS, opened for a few
//! requests rather than pooled: for the commands that talk to a proxy or an
//! admin listener (`healthcheck`, `test`) and for region discovery's
//! lookups. The connection's task is spawned; errors are messages.

use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::ServerName;

/// A connection to `addr` (cleartext).
pub async fn connect<B>(addr: impl tokio::net::ToSocketAddrs) -> Result<SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    handshake(tcp).await
}

/// A connection to the host of an `http://` or `https://` URL (its port,
/// else 80 or 443); `https` goes through `tls`, the name verified.
pub async fn connect_url<B>(
    uri: &http::Uri,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = match (uri.scheme_str(), tls) {
        (Some("http"), _) => None,
        (Some("https"), Some(tls)) => Some(tls),
        (Some("https"), None) => return Err("https without a TLS configuration".into()),
        _ => return Err("the URL is neither http:// nor https://".into()),
    };
    let authority = uri.authority().ok_or("the URL needs a host")?;
    let port = authority
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => handshake(tcp).await,
        Some(connector) => {
            let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            handshake(stream).await
        }
    }
}

/// A connection over an established stream.
pub async fn handshake<B, S>(io: S) -> Result<SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}
