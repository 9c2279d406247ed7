//! Configuration: TOML text → [`raw::RawConfig`] → validated [`Config`].
//!
//! [`load`] and [`parse`] never stop at the first problem: syntax errors end
//! parsing, but every unknown key and every invalid value is reported, each
//! with file, line, column and key path (see [`ConfigError`]).
//! Relative file paths (certificates, CA bundles) are resolved against the
//! directory of the configuration file.

mod discovery;
mod error;
mod locate;
mod policy;
pub mod raw;
mod tenants;
pub mod tls;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::policy::{Action, RuleSet};
use crate::tenant::Directory;

pub use error::{ConfigError, ConfigErrors, LoadError};
pub use locate::{KeyPath, Seg};
pub use tls::{ReloadableResolver, VERSIONS as TLS_VERSIONS};

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
    /// Bearer token for the admin data endpoints.
    pub admin_token: Option<String>,
    /// Whether /metrics is served without the token.
    pub admin_public_metrics: bool,
    /// SHA-256 of the configuration text and every included file (hex).
    pub hash: String,
    /// Connection handling and drain.
    pub server: ServerSettings,
    /// The rules, compiled, in order (included files first).
    pub rules: Arc<RuleSet<Action>>,
    /// Where each rule is defined, as `file: key`, for tools.
    pub rule_origins: Vec<String>,
    /// Tenant ids and hosts → regions.
    pub directory: Arc<Directory>,
    /// Region discovery for tenants the directory does not list.
    pub discovery: Option<Discovery>,
    /// Most bytes of a JSON body read for body-aware rules.
    pub max_inspect_body_bytes: usize,
    /// Every file this configuration was read from: included policy files,
    /// tenant files, certificates, keys and the upstream CA bundle (and, from
    /// [`load`], the file itself). Watched for changes.
    pub sources: Vec<PathBuf>,
    /// The decision log.
    pub decision_log: DecisionLogSettings,
}

pub use crate::telemetry::record::ClientAddress;

/// Where the pseudonym key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `decision_log.pseudonym_key`.
    Config,
    /// `$PORTALGATE_PSEUDONYM_KEY`.
    Environment,
    /// Random for this process: pseudonyms do not correlate across restarts.
    Random,
}

/// `[decision_log]`, validated.
#[derive(Clone)]
pub struct DecisionLogSettings {
    /// Outputs and queue size.
    pub outputs: crate::telemetry::decision_log::Outputs,
    /// The pseudonym key.
    pub key: Vec<u8>,
    /// Where the key came from.
    pub key_source: KeySource,
    /// Client address treatment.
    pub client_address: ClientAddress,
    /// Capture names that hold user identifiers.
    pub user_captures: Vec<String>,
    /// Path segments after which a segment is a user identifier, in every
    /// record (default `users`, `usermembers`).
    pub user_collections: Vec<String>,
    /// Every how-many-th forwarded request gets a record (0: none).
    pub forwarded_every: u64,
}

impl std::fmt::Debug for DecisionLogSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLogSettings")
            .field("outputs", &self.outputs)
            .field("key", &"<redacted>")
            .field("key_source", &self.key_source)
            .field("client_address", &self.client_address)
            .field("user_captures", &self.user_captures)
            .finish()
    }
}

/// One client-facing listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Address to bind.
    pub address: SocketAddr,
    /// TLS termination, if any.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificates behind `tls`, swappable on reload.
    pub certificates: Option<Arc<tls::ReloadableResolver>>,
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
    /// The longest wait for the next bytes of a response body (and for the
    /// upstream to take the next bytes of a request body): exceeded, both
    /// connections are released.
    pub read_timeout: Duration,
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

/// `[tenants.discovery]`, validated.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The metadata URL, with `{tenant}` where the tenant id goes.
    pub url: String,
    /// Metadata values → regions.
    pub mapping: crate::discovery::Mapping,
    /// TTLs, the cap and the timeout.
    pub limits: crate::discovery::Limits,
    /// What a request gets while its tenant's lookup fails.
    pub on_failure: OnFailure,
    /// Trust for the metadata server (the upstream's TLS stack).
    pub tls: Arc<rustls::ClientConfig>,
}

impl Discovery {
    /// Whether answers cached under `self` stay true under `other` (same
    /// source, same mapping, same limits).
    pub fn same_answers(&self, other: &Discovery) -> bool {
        self.url == other.url && self.mapping == other.mapping && self.limits == other.limits
    }
}

/// What a request whose tenant's region cannot be discovered gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// 503 with an explanation; never forwarded (the default: fail closed).
    Refuse,
    /// Judged in the default region (recorded as `discovery-failed`).
    Default,
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

impl Limits {
    /// The longest request head read before refusing it with 431: above
    /// the configured limits (a head just over them gets the proxy's
    /// 414/431 naming the limit), and bounded, so a client cannot make the
    /// proxy buffer without end.
    pub fn max_head_bytes(&self) -> usize {
        self.max_header_bytes * 2 + self.max_uri_bytes * 2 + 8192
    }
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
    /// Protocols a client may switch to (lowercase): an upgrade to any
    /// other is forwarded as a plain request, and a 101 for it is a 502.
    pub upgrade_protocols: Vec<Box<str>>,
}

impl Forwarding {
    /// Whether `Upgrade: value` names one allowed protocol (a list, or a
    /// protocol not allowed, is not).
    pub fn upgrade_allowed(&self, value: &[u8]) -> bool {
        let Ok(v) = std::str::from_utf8(value) else {
            return false;
        };
        let v = v.trim();
        self.upgrade_protocols.iter().any(|p| {
            v.eq_ignore_ascii_case(p)
                || v.get(..p.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(p) && v[p.len()..].starts_with('/'))
        })
    }

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
    /// The longest wait for the next bytes of a request body from the
    /// client (exceeded: 408, the client's fault).
    pub client_body_timeout: Duration,
    /// How long a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// Whether HTTP/2 is offered.
    pub http2: bool,
    /// Whether plain HTTP/1.1 forwards take the proxy's own HTTP/1.1 path
    /// ([`crate::proxy::pass`]); everything else is served by hyper.
    pub http1_fast_path: bool,
    /// Whether source files are watched for changes.
    pub watch: bool,
    /// Worker threads, each with its own single-threaded event loop that
    /// accepts and serves its own connections (nginx's worker processes,
    /// Pingora's no-steal runtime): nothing per request crosses threads.
    pub workers: usize,
}

/// The JSON Schema of the configuration file, derived from the types that
/// parse it ([`raw::RawConfig`]). What it cannot say (addresses, durations,
/// regions that exist, rules that compile) `check` says.
pub fn schema() -> String {
    let mut schema = schemars::schema_for!(raw::RawConfig);
    schema.insert("title".into(), "portalgate configuration".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        file: path.display().to_string(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut config = parse(&text, &path.display().to_string(), &base)?;
    config.sources.insert(0, path.to_path_buf());
    Ok(config)
}

/// Validates configuration `text`; `file` names it in errors and `base` is
/// the directory relative paths (certificates, included policy files,
/// tenant files) are resolved against.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigErrors> {
    let locator = locate::Locator::new(text);
    let mut ctx = validate::Ctx::new(file, &locator, base.to_path_buf());
    let raw: raw::RawConfig = deserialize(text, file, &locator, &mut ctx)?;

    // Included policy files: each with its own locator, so errors name it.
    let mut included: Vec<(String, String)> = Vec::new();
    for (i, inc) in raw.include.iter().enumerate() {
        let path = resolve(base, inc);
        match std::fs::read_to_string(&path) {
            Ok(t) => included.push((path.display().to_string(), t)),
            Err(e) => ctx.error(
                &KeyPath::default().key("include").index(i),
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    let locators: Vec<locate::Locator<'_>> = included
        .iter()
        .map(|(_, t)| locate::Locator::new(t))
        .collect();
    let mut ctxs: Vec<validate::Ctx<'_>> = included
        .iter()
        .zip(&locators)
        .map(|((name, _), loc)| validate::Ctx::new(name, loc, base.to_path_buf()))
        .collect();
    let mut policies: Vec<Option<raw::RawPolicy>> = Vec::new();
    for ((name, text), (loc, c)) in included.iter().zip(locators.iter().zip(ctxs.iter_mut())) {
        policies.push(deserialize(text, name, loc, c).ok());
    }

    let mut parts = policy::Parts::default();
    for (p, c) in policies.iter().zip(ctxs.iter_mut()) {
        if let Some(p) = p {
            policy::definitions(&p.portals, &p.docs, c, &mut parts);
        }
    }
    policy::definitions(&raw.portals, &raw.docs, &mut ctx, &mut parts);
    for (i, (p, c)) in policies.iter().zip(ctxs.iter_mut()).enumerate() {
        if let Some(p) = p {
            policy::rules(&p.rules, i, c, &mut parts);
        }
    }
    let main_index = included.len();
    policy::rules(&raw.rules, main_index, &mut ctx, &mut parts);

    let used = parts
        .rules
        .iter()
        .flat_map(|r| r.matcher.regions.iter().cloned())
        .collect();
    let directory = tenants::directory(&raw.tenants, &used, &mut ctx);
    let discovery = raw
        .tenants
        .discovery
        .as_ref()
        .map(|d| discovery::validate(d, &raw.tenants, &used, &mut ctx));
    let max_inspect_body_bytes = match raw.inspection.max_body_bytes {
        None => 16 * 1024,
        Some(n) if (1..=1 << 20).contains(&n) => n as usize,
        Some(n) => {
            ctx.error(
                &KeyPath::default().key("inspection").key("max_body_bytes"),
                format!("must be between 1 and 1048576, got {n}"),
            );
            16 * 1024
        }
    };
    let rule_origins: Vec<String> = parts
        .origins
        .iter()
        .map(|(f, k)| {
            format!(
                "{}: {k}",
                included.get(*f).map_or(file, |(n, _)| n.as_str())
            )
        })
        .collect();
    let rules = match crate::policy::RuleSet::new(std::mem::take(&mut parts.rules)) {
        Ok(set) => Some(set),
        Err(e) => {
            let (key, message) = match &e {
                crate::policy::BuildError::Pattern { index, source } => (
                    parts.origins.get(*index).map(|o| o.1.key("match")),
                    source.to_string(),
                ),
                crate::policy::BuildError::Set(m) => (None, m.clone()),
            };
            ctx.error(&key.unwrap_or_default(), message);
            None
        }
    };

    let config = validate::validate(&raw, &mut ctx);
    let mut errors: Vec<ConfigError> = Vec::new();
    for c in ctxs {
        errors.extend(c.into_errors());
    }
    let mut sources: Vec<PathBuf> = included.iter().map(|(n, _)| PathBuf::from(n)).collect();
    sources.extend(raw.tenants.files.iter().map(|f| resolve(base, f)));
    // Certificates, keys and the upstream CA: a rotated Secret reloads too.
    for l in &raw.listeners {
        for c in l.tls.iter().flat_map(|t| &t.certificates) {
            sources.extend(
                [&c.cert, &c.key]
                    .into_iter()
                    .flatten()
                    .map(|f| resolve(base, f)),
            );
        }
    }
    if let Some(ca) = raw.upstream.as_ref().and_then(|u| u.ca_file.as_deref()) {
        sources.push(resolve(base, ca));
    }
    if let Some(ca) = raw
        .tenants
        .discovery
        .as_ref()
        .and_then(|d| d.ca_file.as_deref())
    {
        sources.push(resolve(base, ca));
    }
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(text.as_bytes());
    for (_, t) in &included {
        digest.update(t.as_bytes());
    }
    let hash: String = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let main = ctx.finish(config.zip(rules).zip(directory).map(
        |((mut config, rules), directory)| {
            config.hash = hash;
            config.sources = sources;
            config.rules = Arc::new(rules);
            config.rule_origins = rule_origins;
            config.directory = Arc::new(directory);
            config.discovery = discovery.flatten();
            config.max_inspect_body_bytes = max_inspect_body_bytes;
            config
        },
    ));
    match main {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(ConfigErrors(mut rest)) => {
            errors.append(&mut rest);
            Err(ConfigErrors(errors))
        }
    }
}

/// Deserializes one file, collecting unknown keys as errors in `ctx`.
fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    locator: &locate::Locator<'_>,
    ctx: &mut validate::Ctx<'_>,
) -> Result<T, ConfigErrors> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| syntax(file, locator, &e))?;
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(deserializer, |p| {
        unknown.push(ignored_path(&p));
    })
    .map_err(|e| syntax(file, locator, &e))?;
    for path in unknown {
        ctx.error(&path, "unknown key");
    }
    Ok(value)
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
