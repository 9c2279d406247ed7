//! Raw configuration as it is written in TOML, before validation.
//!
//! Every leaf is optional and loosely typed (strings for addresses, durations
//! and URLs) so that validation, not serde, reports problems: that way `check`
//! can list every error with its location instead of stopping at the first.
//! Unknown keys are collected by `serde_ignored` in [`super::load`] and
//! reported as errors, which is `deny_unknown_fields` that reports all of them.
//! The same types give `portalgate schema` its JSON Schema (schemars), so
//! the schema and the parser cannot drift apart.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
    /// Policy files whose `[portals]`, `[docs]` and `[[rules]]` come first,
    /// in order, before this file's own.
    #[serde(default)]
    pub include: Vec<String>,
    /// `[tenants]`
    #[serde(default)]
    pub tenants: RawTenants,
    /// `[inspection]`
    #[serde(default)]
    pub inspection: RawInspection,
    /// `[decision_log]`
    #[serde(default)]
    pub decision_log: RawDecisionLog,
    /// `[portals.KEY]`
    #[serde(default)]
    pub portals: BTreeMap<String, RawPortal>,
    /// `[docs.KEY]`
    #[serde(default)]
    pub docs: BTreeMap<String, RawDoc>,
    /// `[[rules]]`
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// What an included policy file may hold.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawPolicy {
    /// `[portals.KEY]`
    #[serde(default)]
    pub portals: BTreeMap<String, RawPortal>,
    /// `[docs.KEY]`
    #[serde(default)]
    pub docs: BTreeMap<String, RawDoc>,
    /// `[[rules]]`
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// `[tenants]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawTenants {
    /// Region of tenants found nowhere else.
    pub default_region: Option<String>,
    /// Directory files (`.csv`, `.jsonl`).
    #[serde(default)]
    pub files: Vec<String>,
    /// `[[tenants.entries]]`
    #[serde(default)]
    pub entries: Vec<RawTenantEntry>,
    /// `[tenants.hosts]`: host → region for region-only front ends.
    #[serde(default)]
    pub hosts: BTreeMap<String, String>,
    /// `[tenants.discovery]`
    pub discovery: Option<RawDiscovery>,
}

/// `[tenants.discovery]`: the region of a tenant no file or entry lists,
/// from its OpenID metadata.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDiscovery {
    /// The metadata URL; `{tenant}` is replaced by the tenant id.
    pub url: Option<String>,
    /// `cloud_instance_name` value → region (e.g. `"microsoftonline.de" = "germany"`).
    #[serde(default)]
    pub cloud_instance_names: BTreeMap<String, String>,
    /// `tenant_region_scope` value → region, read when the cloud is not mapped.
    #[serde(default)]
    pub tenant_region_scopes: BTreeMap<String, String>,
    /// How long a found region is kept (default 1h).
    pub positive_ttl: Option<String>,
    /// How long "the identity provider does not know this tenant" is kept (default 5m).
    pub negative_ttl: Option<String>,
    /// The most tenants held, lookups in flight included (default 100000).
    pub max_entries: Option<i64>,
    /// The most lookups in flight at once (default 100); more wait-less
    /// requests are refused like a failed lookup.
    pub max_lookups_in_flight: Option<i64>,
    /// The most one lookup may take (default 2s).
    pub timeout: Option<String>,
    /// `refuse` (default: 503, never forwarded) or `default` (the default region).
    pub on_failure: Option<String>,
    /// PEM CA bundle trusted for the metadata server (default: the web PKI roots).
    pub ca_file: Option<String>,
}

/// `[[tenants.entries]]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawTenantEntry {
    /// The tenant id (a GUID).
    pub id: Option<String>,
    /// Its region.
    pub region: Option<String>,
    /// A display name.
    pub name: Option<String>,
}

/// `[decision_log]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDecisionLog {
    /// JSON lines to stdout.
    pub stdout: Option<bool>,
    /// JSON lines appended to this file.
    pub file: Option<String>,
    /// Records queued before new ones are dropped (and counted).
    pub queue_size: Option<i64>,
    /// Key for user pseudonyms (else $PORTALGATE_PSEUDONYM_KEY).
    pub pseudonym_key: Option<String>,
    /// `full`, `truncated` (/24, /48; default) or `omit`.
    pub client_address: Option<String>,
    /// Rotate the file before it exceeds this many bytes (default 100 MiB; 0: never).
    pub max_file_bytes: Option<i64>,
    /// Rotate the file when the UTC day changes (default true).
    pub rotate_daily: Option<bool>,
    /// Rotated files kept (default 7).
    pub keep_files: Option<i64>,
    /// `drop` (default: count and warn) or `block` (back-pressure).
    pub on_overflow: Option<String>,
    /// Fraction (0 to 1) of forwarded requests that get a record too.
    pub forwarded_sample: Option<f64>,
    /// Path capture names that hold user identifiers (default `["user"]`).
    pub user_captures: Option<Vec<String>>,
    /// Path segments after which a segment is a user identifier
    /// (default `["users", "usermembers"]`).
    pub user_collections: Option<Vec<String>>,
}

/// `[inspection]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawInspection {
    /// Most bytes of a JSON body read for body-aware rules.
    pub max_body_bytes: Option<i64>,
}

/// `[portals.KEY]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawPortal {
    /// Display name.
    pub name: Option<String>,
    /// Address.
    pub url: Option<String>,
}

/// `[docs.KEY]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawDoc {
    /// Link text.
    pub title: Option<String>,
    /// Address.
    pub url: Option<String>,
}

/// `[[rules]]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id.
    pub id: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// `enforce` (default), `report-only` or `off`.
    pub mode: Option<String>,
    /// `[rules.match]`
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// `[rules.action]`
    pub action: Option<RawAction>,
}

/// `[rules.match]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawMatch {
    /// Methods; empty matches any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Hosts (`*.example.de` for subdomains); empty matches any.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// A path template.
    pub path: Option<String>,
    /// A regex that must match the whole canonical path.
    pub path_regex: Option<String>,
    /// Compare template literals ASCII-case-insensitively (default true).
    pub case_insensitive: Option<bool>,
    /// `[[rules.match.headers]]`
    #[serde(default)]
    pub headers: Vec<RawHeaderCond>,
    /// Regions; empty matches any.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Tenant sources: `path:NAME`, `header:NAME`, `host`, `jwt:tid`.
    pub tenant_from: Option<Vec<String>>,
    /// `[rules.match.body]`
    pub body: Option<RawBodyCond>,
}

/// `[[rules.match.headers]]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawHeaderCond {
    /// Header name.
    pub name: Option<String>,
    /// `true`: present; `false`: absent.
    pub present: Option<bool>,
    /// A value equal to this (ASCII case-insensitively).
    pub equals: Option<String>,
    /// A value matching this regex (whole value).
    pub matches: Option<String>,
}

/// `[rules.match.body]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawBodyCond {
    /// Dotted path of a JSON field that must be present.
    pub json_field_present: Option<String>,
}

/// `[rules.action]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawAction {
    /// `allow`, `deny`, `redirect` or `explain`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Status for deny, redirect or explain.
    pub status: Option<i64>,
    /// Redirect target, with `{capture}` placeholders.
    pub location: Option<String>,
    /// One portal key.
    pub portal: Option<String>,
    /// Several portal keys.
    #[serde(default)]
    pub portals: Vec<String>,
    /// Doc keys.
    #[serde(default)]
    pub docs: Vec<String>,
    /// Explanation message key.
    pub feature: Option<String>,
    /// `problem` (default) or `partner-center`.
    pub json: Option<String>,
    /// Message overrides by language.
    #[serde(default)]
    pub messages: BTreeMap<String, String>,
}

/// `[[listeners]]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawListener {
    /// `address = "127.0.0.1:8080"`
    pub address: Option<String>,
    /// `[listeners.tls]`
    pub tls: Option<RawListenerTls>,
}

/// `[listeners.tls]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawListenerTls {
    /// `[[listeners.tls.certificates]]`
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
}

/// `[[listeners.tls.certificates]]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawUpstream {
    /// `http://host:port` or `https://host:port`.
    pub url: Option<String>,
    /// Duration string, e.g. `"5s"`.
    pub connect_timeout: Option<String>,
    /// Duration string.
    pub response_header_timeout: Option<String>,
    /// Duration string.
    pub idle_timeout: Option<String>,
    /// Duration string.
    pub read_timeout: Option<String>,
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
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
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawForwarding {
    /// CIDRs of peers whose `X-Forwarded-*` / `Forwarded` headers are kept.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Protocols a client may switch to with `Upgrade` (default
    /// `["websocket"]`).
    pub upgrade_protocols: Option<Vec<String>>,
}

/// `[admin]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawAdmin {
    /// Address of the admin listener, or `"off"`.
    pub address: Option<String>,
    /// Bearer token required for /metrics, /config and /decisions/recent
    /// (else $PORTALGATE_ADMIN_TOKEN; unset: no token).
    pub token: Option<String>,
    /// Serve /metrics without the token (it carries no personal data).
    pub public_metrics: Option<bool>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RawServer {
    /// Duration string.
    pub drain_timeout: Option<String>,
    /// Duration string.
    pub header_read_timeout: Option<String>,
    /// Duration string.
    pub client_body_timeout: Option<String>,
    /// Duration string.
    pub tls_handshake_timeout: Option<String>,
    /// Accept HTTP/2 (ALPN `h2`, and prior knowledge on cleartext).
    pub http2: Option<bool>,
    /// Serve plain HTTP/1.1 forwards on portalgate's own HTTP/1.1 path
    /// (default true).
    pub http1_fast_path: Option<bool>,
    /// Reload when the configuration, an included file or a tenant file
    /// changes (default true).
    pub watch: Option<bool>,
    /// Worker threads, each with its own event loop (default: the CPUs
    /// this process may use).
    pub workers: Option<i64>,
}
