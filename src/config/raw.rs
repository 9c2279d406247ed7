//! Raw configuration as it is written in TOML, before validation.
//!
//! Every leaf is optional and loosely typed (strings for addresses, durations
//! and URLs) so that validation, not serde, reports problems: that way `check`
//! can list every error with its location instead of stopping at the first.
//! Unknown keys are collected by `serde_ignored` in [`super::load`] and
//! reported as errors, which is `deny_unknown_fields` that reports all of them.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// `[[listeners]]`
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    /// `[upstream]`
    pub upstream: Option<RawUpstream>,
    /// `[limits]`
    #[serde(default)]
    pub limits: RawLimits,
    /// `[forwarding]`
    #[serde(default)]
    pub forwarding: RawForwarding,
    /// `[admin]`
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[server]`
    #[serde(default)]
    pub server: RawServer,
}

/// `[[listeners]]`
#[derive(Debug, Default, Deserialize)]
pub struct RawListener {
    /// `address = "127.0.0.1:8080"`
    pub address: Option<String>,
    /// `[listeners.tls]`
    pub tls: Option<RawListenerTls>,
}

/// `[listeners.tls]`
#[derive(Debug, Default, Deserialize)]
pub struct RawListenerTls {
    /// `[[listeners.tls.certificates]]`
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
}

/// `[[listeners.tls.certificates]]`
#[derive(Debug, Default, Deserialize)]
pub struct RawCertificate {
    /// PEM certificate chain, leaf first.
    pub cert: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<String>,
    /// SNI names this certificate answers for; none means "the default".
    #[serde(default)]
    pub server_names: Vec<String>,
}

/// `[upstream]`
#[derive(Debug, Default, Deserialize)]
pub struct RawUpstream {
    /// `http://host:port` or `https://host:port`.
    pub url: Option<String>,
    /// Duration string, e.g. `"5s"`.
    pub connect_timeout: Option<String>,
    /// Duration string.
    pub response_header_timeout: Option<String>,
    /// Duration string.
    pub idle_timeout: Option<String>,
    /// Idle pooled connections kept per upstream.
    pub pool_max_idle: Option<i64>,
    /// Keep the client's `Host` header (true) or send the upstream's authority.
    pub preserve_host: Option<bool>,
    /// PEM CA bundle used instead of the built-in web PKI roots.
    pub ca_file: Option<String>,
    /// TLS server name sent to and verified against the upstream.
    pub sni: Option<String>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
pub struct RawLimits {
    /// Total bytes of the request head's header fields.
    pub max_header_bytes: Option<i64>,
    /// Bytes of the request target.
    pub max_uri_bytes: Option<i64>,
    /// Number of header fields.
    pub max_headers: Option<i64>,
    /// Request body bytes; absent means unlimited.
    pub max_request_body_bytes: Option<i64>,
}

/// `[forwarding]`
#[derive(Debug, Default, Deserialize)]
pub struct RawForwarding {
    /// CIDRs of peers whose `X-Forwarded-*` / `Forwarded` headers are kept.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize)]
pub struct RawAdmin {
    /// Address of the admin listener, or `"off"`.
    pub address: Option<String>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    /// Duration string.
    pub drain_timeout: Option<String>,
    /// Duration string.
    pub header_read_timeout: Option<String>,
    /// Duration string.
    pub tls_handshake_timeout: Option<String>,
    /// Accept HTTP/2 (ALPN `h2`, and prior knowledge on cleartext).
    pub http2: Option<bool>,
}
