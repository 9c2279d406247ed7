//! Validation of [`RawConfig`] into [`Config`], collecting every error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::error::{ConfigError, ConfigErrors};
use super::locate::{KeyPath, Locator};
use super::raw::*;
use super::{resolve, tls, Config, Forwarding, Limits, Listener, ServerSettings, Upstream};

/// Where errors are collected while validating.
pub struct Ctx<'a> {
    file: String,
    locator: &'a Locator<'a>,
    base: PathBuf,
    errors: Vec<ConfigError>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &str, locator: &'a Locator<'a>, base: PathBuf) -> Self {
        Ctx {
            file: file.to_string(),
            locator,
            base,
            errors: Vec::new(),
        }
    }

    /// Records an error at `path`.
    pub fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let (line, column) = self.locator.position(path);
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            column,
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// Records an error located elsewhere (another file).
    pub fn push(&mut self, e: ConfigError) {
        self.errors.push(e);
    }

    /// The directory relative paths are resolved against.
    pub fn base(&self) -> &std::path::Path {
        &self.base
    }

    /// The errors recorded so far, sorted by position.
    pub fn into_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }

    /// How many errors are recorded so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// The config if no error was recorded.
    pub fn finish(mut self, config: Option<Config>) -> Result<Config, ConfigErrors> {
        match config {
            Some(c) if self.errors.is_empty() => Ok(c),
            _ => {
                self.errors.sort_by_key(|e| (e.line, e.column));
                Err(ConfigErrors(self.errors))
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        path: KeyPath,
        raw: &Option<String>,
        default: Duration,
    ) -> Duration {
        let Some(s) = raw else { return default };
        match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.error(&path, "must be greater than zero");
                default
            }
            Err(e) => {
                self.error(
                    &path,
                    format!("invalid duration {s:?} ({e}); write e.g. \"250ms\", \"5s\", \"2m\""),
                );
                default
            }
        }
    }

    pub(super) fn positive(
        &mut self,
        path: KeyPath,
        raw: Option<i64>,
        default: usize,
        max: usize,
    ) -> usize {
        match raw {
            None => default,
            Some(n) if n >= 1 && (n as u64) <= max as u64 => n as usize,
            Some(n) => {
                self.error(&path, format!("must be between 1 and {max}, got {n}"));
                default
            }
        }
    }

    fn address(&mut self, path: KeyPath, raw: &str) -> Option<SocketAddr> {
        match SocketAddr::from_str(raw) {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    &path,
                    format!("invalid socket address {raw:?}; write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8443\""),
                );
                None
            }
        }
    }
}

/// Validates everything; `None` when any part failed.
pub fn validate(raw: &RawConfig, ctx: &mut Ctx<'_>) -> Option<Config> {
    let root = KeyPath::default();
    let server = server(&raw.server, &root.key("server"), ctx);
    let listeners = listeners(&raw.listeners, server.http2, &root, ctx);
    let upstream = match &raw.upstream {
        Some(u) => upstream(u, &root.key("upstream"), ctx),
        None => {
            ctx.error(
                &root.key("upstream"),
                "missing: an [upstream] table with `url` is required",
            );
            None
        }
    };
    let limits = limits(&raw.limits, &root.key("limits"), ctx);
    let forwarding = forwarding(&raw.forwarding, &root.key("forwarding"), ctx);
    let admin = match raw.admin.address.as_deref() {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9901))),
        Some("off") => None,
        Some(a) => ctx.address(root.key("admin").key("address"), a),
    };
    Some(Config {
        listeners: listeners?,
        upstream: upstream?,
        limits,
        forwarding,
        admin,
        admin_token: raw
            .admin
            .token
            .clone()
            .or_else(|| std::env::var("PORTALGATE_ADMIN_TOKEN").ok())
            .filter(|t| !t.is_empty()),
        admin_public_metrics: raw.admin.public_metrics.unwrap_or(false),
        hash: String::new(),
        server,
        // Filled in by `parse` once the policy is validated.
        rules: Arc::new(crate::policy::RuleSet::new(Vec::new()).ok()?),
        rule_origins: Vec::new(),
        directory: Arc::new(crate::tenant::Directory::new(
            Default::default(),
            Default::default(),
            crate::tenant::Region::new("global"),
        )),
        discovery: None,
        max_inspect_body_bytes: 16 * 1024,
        sources: Vec::new(),
        decision_log: decision_log(&raw.decision_log, &root.key("decision_log"), ctx),
    })
}

fn server(raw: &RawServer, path: &KeyPath, ctx: &mut Ctx<'_>) -> ServerSettings {
    ServerSettings {
        drain_timeout: ctx.duration(
            path.key("drain_timeout"),
            &raw.drain_timeout,
            Duration::from_secs(30),
        ),
        header_read_timeout: ctx.duration(
            path.key("header_read_timeout"),
            &raw.header_read_timeout,
            Duration::from_secs(30),
        ),
        client_body_timeout: ctx.duration(
            path.key("client_body_timeout"),
            &raw.client_body_timeout,
            Duration::from_secs(60),
        ),
        tls_handshake_timeout: ctx.duration(
            path.key("tls_handshake_timeout"),
            &raw.tls_handshake_timeout,
            Duration::from_secs(10),
        ),
        http2: raw.http2.unwrap_or(true),
        http1_fast_path: raw.http1_fast_path.unwrap_or(true),
        watch: raw.watch.unwrap_or(true),
        workers: ctx.positive(
            path.key("workers"),
            raw.workers,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            1024,
        ),
    }
}

fn listeners(
    raw: &[RawListener],
    http2: bool,
    root: &KeyPath,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<Listener>> {
    let path = root.key("listeners");
    if raw.is_empty() {
        ctx.error(
            &path,
            "missing: at least one [[listeners]] with an `address` is required",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, l) in raw.iter().enumerate() {
        let lp = path.index(i);
        let address = match &l.address {
            Some(a) => ctx.address(lp.key("address"), a),
            None => {
                ctx.error(
                    &lp.key("address"),
                    "missing: every listener needs an address",
                );
                None
            }
        };
        if let Some(a) = address {
            if out
                .iter()
                .any(|o: &Listener| o.address == a && a.port() != 0)
            {
                ctx.error(
                    &lp.key("address"),
                    format!("{a} is used by an earlier listener"),
                );
            }
        }
        let tls = match &l.tls {
            Some(t) => listener_tls(t, http2, &lp.key("tls"), ctx).map(Some),
            None => Some(None),
        };
        match (address, tls) {
            (Some(address), Some(tls)) => {
                let (tls, certificates) = match tls {
                    Some((c, r)) => (Some(c), Some(r)),
                    None => (None, None),
                };
                out.push(Listener {
                    address,
                    tls,
                    certificates,
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn listener_tls(
    raw: &RawListenerTls,
    http2: bool,
    path: &KeyPath,
    ctx: &mut Ctx<'_>,
) -> Option<(Arc<rustls::ServerConfig>, Arc<tls::ReloadableResolver>)> {
    let cp = path.key("certificates");
    if raw.certificates.is_empty() {
        ctx.error(
            &cp,
            "missing: TLS needs at least one [[listeners.tls.certificates]] with `cert` and `key`",
        );
        return None;
    }
    let mut loaded = Vec::new();
    for (i, c) in raw.certificates.iter().enumerate() {
        let p = cp.index(i);
        let (Some(cert), Some(key)) = (&c.cert, &c.key) else {
            ctx.error(&p, "both `cert` and `key` are required");
            continue;
        };
        match tls::certified_key(&resolve(&ctx.base, cert), &resolve(&ctx.base, key)) {
            Ok(ck) => loaded.push((c.server_names.clone(), ck)),
            Err(e) => {
                let which = if e.contains("private key") || e.contains(key.as_str()) {
                    "key"
                } else {
                    "cert"
                };
                ctx.error(&p.key(which), e);
            }
        }
    }
    if loaded.len() != raw.certificates.len() {
        return None;
    }
    let resolver = match tls::SniResolver::new(loaded) {
        Ok(r) => r,
        Err((i, e)) => {
            ctx.error(&cp.index(i).key("server_names"), e);
            return None;
        }
    };
    let resolver = Arc::new(tls::ReloadableResolver::new(resolver));
    match tls::server_config(resolver.clone(), http2) {
        Ok(c) => Some((Arc::new(c), resolver)),
        Err(e) => {
            ctx.error(path, e);
            None
        }
    }
}

fn upstream(raw: &RawUpstream, path: &KeyPath, ctx: &mut Ctx<'_>) -> Option<Upstream> {
    let connect_timeout = ctx.duration(
        path.key("connect_timeout"),
        &raw.connect_timeout,
        Duration::from_secs(5),
    );
    let response_header_timeout = ctx.duration(
        path.key("response_header_timeout"),
        &raw.response_header_timeout,
        Duration::from_secs(60),
    );
    let idle_timeout = ctx.duration(
        path.key("idle_timeout"),
        &raw.idle_timeout,
        Duration::from_secs(90),
    );
    let read_timeout = ctx.duration(
        path.key("read_timeout"),
        &raw.read_timeout,
        Duration::from_secs(60),
    );
    let pool_max_idle = ctx.positive(path.key("pool_max_idle"), raw.pool_max_idle, 256, 65_536);
    let up = path.key("url");
    let Some(url) = &raw.url else {
        ctx.error(
            &up,
            "missing: the backend's URL, e.g. \"http://127.0.0.1:9080\"",
        );
        return None;
    };
    let uri = match http::Uri::from_str(url) {
        Ok(u) => u,
        Err(e) => {
            ctx.error(&up, format!("invalid URL {url:?}: {e}"));
            return None;
        }
    };
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        ctx.error(
            &up,
            format!("{url:?} needs a scheme and a host, e.g. \"http://backend:8080\""),
        );
        return None;
    };
    let https = match scheme.as_str() {
        "http" => false,
        "https" => true,
        other => {
            ctx.error(
                &up,
                format!("scheme {other:?} is not supported; use http or https"),
            );
            return None;
        }
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        ctx.error(
            &up,
            "must not have a path or query: requests keep their own path",
        );
        return None;
    }
    if authority.as_str().contains('@') {
        ctx.error(&up, "must not carry user information");
        return None;
    }
    // `http::Uri` keeps a port it cannot read as u16 (`:99999`, `:0`,
    // `:`): the proxy would then dial the scheme's default port.
    if let Some((_, port)) = authority.as_str().rsplit_once(':') {
        let bracketed_v6 = authority.as_str().ends_with(']');
        if !bracketed_v6 && !port.parse::<u16>().is_ok_and(|p| p != 0) {
            ctx.error(
                &up,
                format!("{url:?}: port {port:?} is not a port number (1 to 65535)"),
            );
            return None;
        }
    }
    if authority.host().is_empty() {
        ctx.error(&up, format!("{url:?} needs a host"));
        return None;
    }
    if !https {
        for (key, set) in [
            ("ca_file", raw.ca_file.is_some()),
            ("sni", raw.sni.is_some()),
        ] {
            if set {
                ctx.error(&path.key(key), "only applies to an https upstream");
            }
        }
    }
    let ca = raw.ca_file.as_deref().map(|p| resolve(&ctx.base, p));
    let tls = match tls::client_config(ca.as_deref(), https) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            ctx.error(&path.key("ca_file"), e);
            return None;
        }
    };
    if let Some(sni) = &raw.sni {
        if rustls::pki_types::ServerName::try_from(sni.as_str()).is_err() {
            ctx.error(
                &path.key("sni"),
                format!("{sni:?} is not a valid DNS name or IP address"),
            );
        }
    }
    Some(Upstream {
        scheme,
        authority,
        connect_timeout,
        response_header_timeout,
        idle_timeout,
        read_timeout,
        pool_max_idle,
        preserve_host: raw.preserve_host.unwrap_or(true),
        tls,
        sni: raw.sni.clone(),
    })
}

fn limits(raw: &RawLimits, path: &KeyPath, ctx: &mut Ctx<'_>) -> Limits {
    let d = Limits::default();
    let max_request_body_bytes = match raw.max_request_body_bytes {
        None => None,
        Some(n) if n >= 0 => Some(n as u64),
        Some(n) => {
            ctx.error(
                &path.key("max_request_body_bytes"),
                format!("must not be negative, got {n}"),
            );
            None
        }
    };
    Limits {
        max_header_bytes: ctx.positive(
            path.key("max_header_bytes"),
            raw.max_header_bytes,
            d.max_header_bytes,
            1 << 20,
        ),
        max_uri_bytes: ctx.positive(
            path.key("max_uri_bytes"),
            raw.max_uri_bytes,
            d.max_uri_bytes,
            65_000,
        ),
        max_headers: ctx.positive(
            path.key("max_headers"),
            raw.max_headers,
            d.max_headers,
            1_000,
        ),
        max_request_body_bytes,
    }
}

fn forwarding(raw: &RawForwarding, path: &KeyPath, ctx: &mut Ctx<'_>) -> Forwarding {
    let mut trusted_proxies = Vec::new();
    for (i, s) in raw.trusted_proxies.iter().enumerate() {
        let parsed = ipnet::IpNet::from_str(s)
            .or_else(|_| std::net::IpAddr::from_str(s).map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net.trunc()),
            Err(_) => ctx.error(
                &path.key("trusted_proxies").index(i),
                format!("invalid CIDR {s:?}; write e.g. \"10.0.0.0/8\" or \"192.0.2.7\""),
            ),
        }
    }
    let mut upgrade_protocols = Vec::new();
    for (i, p) in raw
        .upgrade_protocols
        .clone()
        .unwrap_or_else(|| vec!["websocket".into()])
        .iter()
        .enumerate()
    {
        let token = !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b));
        if p.eq_ignore_ascii_case("h2c") || p.to_ascii_lowercase().starts_with("h2c/") {
            ctx.error(
                &path.key("upgrade_protocols").index(i),
                "h2c cannot be allowed: its requests would reach the backend unjudged",
            );
        } else if token {
            upgrade_protocols.push(p.to_ascii_lowercase().into_boxed_str());
        } else {
            ctx.error(
                &path.key("upgrade_protocols").index(i),
                format!("{p:?} is not a protocol token"),
            );
        }
    }
    Forwarding {
        trusted_proxies,
        upgrade_protocols,
    }
}

fn decision_log(
    raw: &RawDecisionLog,
    path: &KeyPath,
    ctx: &mut Ctx<'_>,
) -> super::DecisionLogSettings {
    use super::{ClientAddress, KeySource};
    let queue = ctx.positive(path.key("queue_size"), raw.queue_size, 8192, 1 << 20);
    let file = raw.file.as_deref().map(|f| resolve(&ctx.base, f));
    let client_address = match raw.client_address.as_deref() {
        None | Some("truncated") => ClientAddress::Truncated,
        Some("full") => ClientAddress::Full,
        Some("omit") => ClientAddress::Omit,
        Some(other) => {
            ctx.error(
                &path.key("client_address"),
                format!("{other:?}: use full, truncated or omit"),
            );
            ClientAddress::Truncated
        }
    };
    let (key, key_source) = match (
        &raw.pseudonym_key,
        std::env::var("PORTALGATE_PSEUDONYM_KEY"),
    ) {
        (Some(k), _) if k.len() >= 16 => (k.as_bytes().to_vec(), KeySource::Config),
        (Some(_), _) => {
            ctx.error(
                &path.key("pseudonym_key"),
                "use at least 16 characters (32 random bytes recommended)",
            );
            (Vec::new(), KeySource::Config)
        }
        (None, Ok(k)) if k.len() >= 16 => (k.into_bytes(), KeySource::Environment),
        // One key per process: pseudonyms stay the same across reloads.
        (None, _) => (
            crate::telemetry::pseudonym::process_key().to_vec(),
            KeySource::Random,
        ),
    };
    super::DecisionLogSettings {
        outputs: crate::telemetry::decision_log::Outputs {
            stdout: raw.stdout.unwrap_or(false),
            file,
            queue,
            on_overflow: match raw.on_overflow.as_deref() {
                None | Some("drop") => crate::telemetry::decision_log::Overflow::Drop,
                Some("block") => crate::telemetry::decision_log::Overflow::Block,
                Some(other) => {
                    ctx.error(
                        &path.key("on_overflow"),
                        format!("{other:?}: use drop or block"),
                    );
                    crate::telemetry::decision_log::Overflow::Drop
                }
            },
            rotation: crate::telemetry::decision_log::Rotation {
                max_bytes: match raw.max_file_bytes {
                    None => Some(100 << 20),
                    Some(0) => None,
                    Some(n) if n > 0 => Some(n as u64),
                    Some(n) => {
                        ctx.error(
                            &path.key("max_file_bytes"),
                            format!("must not be negative, got {n}"),
                        );
                        None
                    }
                },
                daily: raw.rotate_daily.unwrap_or(true),
                keep: match raw.keep_files {
                    None => 7,
                    Some(n) if (0..=1000).contains(&n) => n as usize,
                    Some(n) => {
                        ctx.error(
                            &path.key("keep_files"),
                            format!("must be between 0 and 1000, got {n}"),
                        );
                        7
                    }
                },
            },
        },
        key,
        key_source,
        client_address,
        user_captures: raw
            .user_captures
            .clone()
            .unwrap_or_else(|| vec!["user".into()]),
        user_collections: raw
            .user_collections
            .clone()
            .unwrap_or_else(|| vec!["users".into(), "usermembers".into()]),
        forwarded_every: match raw.forwarded_sample {
            None => 0,
            Some(0.0) => 0,
            Some(f) if f > 0.0 && f <= 1.0 => (1.0 / f).round().max(1.0) as u64,
            Some(f) => {
                ctx.error(
                    &path.key("forwarded_sample"),
                    format!("must be between 0 and 1, got {f}"),
                );
                0
            }
        },
    }
}
