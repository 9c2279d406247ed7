//! Configuration: TOML text → [`raw::RawConfig`] → validated [`Config`].
//!
//! [`load`] and [`parse`] never stop at the first problem: syntax errors end
//! parsing, but every unknown key and every invalid value is reported, each
//! with file, line, column and key path (see [`ConfigError`]).
//! Relative file paths (certificates, CA bundles) are resolved against the
//! directory of the configuration file.

mod error;
mod locate;
pub mod raw;
mod tls;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{ConfigError, ConfigErrors, LoadError};
pub use locate::{KeyPath, Seg};
pub use tls::VERSIONS as TLS_VERSIONS;

/// A validated configuration: everything the server needs, already typed.
#[derive(Debug, Clone)]
pub struct Config {
    /// Client-facing listeners, in file order.
    pub listeners: Vec<Listener>,
    /// The backend everything is forwarded to.
    pub upstream: Upstream,
    /// Request limits enforced before forwarding.
    pub limits: Limits,
    /// Treatment of client-supplied forwarding headers.
    pub forwarding: Forwarding,
    /// The admin listener, if enabled.
    pub admin: Option<SocketAddr>,
    /// Connection handling and drain.
    pub server: ServerSettings,
}

/// One client-facing listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Address to bind.
    pub address: SocketAddr,
    /// TLS termination, if any.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The backend.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    /// `host:port` of the backend.
    pub authority: http::uri::Authority,
    /// Time allowed to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed from sending the request until the response head arrives.
    pub response_header_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// Idle pooled connections kept.
    pub pool_max_idle: usize,
    /// Send the client's `Host` (true) or the upstream authority (false).
    pub preserve_host: bool,
    /// TLS client settings; for an `http` upstream an empty trust store
    /// that is never used.
    pub tls: Arc<rustls::ClientConfig>,
    /// Server name for SNI and verification, when not the URL's host.
    pub sni: Option<String>,
}

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sum of header name and value bytes.
    pub max_header_bytes: usize,
    /// Bytes of the request target.
    pub max_uri_bytes: usize,
    /// Number of header fields.
    pub max_headers: usize,
    /// Request body bytes; `None` is unlimited.
    pub max_request_body_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 8 * 1024,
            max_headers: 100,
            max_request_body_bytes: None,
        }
    }
}

/// Treatment of `X-Forwarded-*` and `Forwarded`.
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    /// Peers whose forwarding headers are appended to; all others' are replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Forwarding {
    /// Whether a peer is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// Connection handling.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// How long in-flight requests may take to finish after SIGTERM.
    pub drain_timeout: Duration,
    /// How long a client may take to send a complete request head.
    pub header_read_timeout: Duration,
    /// How long a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// Whether HTTP/2 is offered.
    pub http2: bool,
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(parse(&text, &path.display().to_string(), &base)?)
}

/// Validates configuration `text`; `file` names it in errors and `base` is
/// the directory relative paths are resolved against.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
    let locator = locate::Locator::new(text);
    let mut ctx = validate::Ctx::new(file, &locator, base.to_path_buf());
    let deserializer = toml::Deserializer::parse(text).map_err(|e| syntax(file, &locator, &e))?;
    let mut unknown = Vec::new();
    let raw: raw::RawConfig = serde_ignored::deserialize(deserializer, |p| {
        unknown.push(ignored_path(&p));
    })
    .map_err(|e| syntax(file, &locator, &e))?;
    for path in unknown {
        ctx.error(&path, "unknown key");
    }
    let config = validate::validate(&raw, &mut ctx);
    ctx.finish(config)
}

fn syntax(file: &str, locator: &locate::Locator<'_>, e: &toml::de::Error) -> ConfigErrors {
    let (line, column, key) = match e.span() {
        Some(span) => {
            let (l, c) = locator.line_col(span.start);
            (l, c, locator.path_at(span.start).to_string())
        }
        None => (0, 0, String::new()),
    };
    ConfigErrors(vec![ConfigError {
        file: file.to_string(),
        line,
        column,
        key,
        message: e.message().trim().to_string(),
    }])
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> KeyPath {
    fn go(p: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
        use serde_ignored::Path as P;
        match p {
            P::Root => {}
            P::Seq { parent, index } => {
                go(parent, out);
                out.push(Seg::Index(*index));
            }
            P::Map { parent, key } => {
                go(parent, out);
                out.push(Seg::Key(key.clone()));
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                go(parent, out)
            }
        }
    }
    let mut segs = Vec::new();
    go(p, &mut segs);
    KeyPath(segs)
}

/// Resolves `p` against `base` unless it is absolute.
pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
