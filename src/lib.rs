//! portalgate: a policy-enforcing reverse proxy for partner portals.
//!
//! A request travels through the modules in this order:
//!
//! ```text
//! server     accept TCP or TLS (rustls, ALPN h2/http1.1), serve HTTP/1.1 and HTTP/2;
//!            take the configuration snapshot in force (reload swaps it atomically);
//!            plain HTTP/1.1 forwards take proxy::pass, everything else hyper
//!   -> proxy      intake: limits, framing, Host, request id
//!   -> canonical  ONE canonical path, judged and forwarded (ambiguous -> 400)
//!   -> tenant     tenant id from the rule's sources (must agree) -> region
//!   -> policy     first enforcing rule in file order; body read only if a rule asks
//!        forward        -> upstream: pooled connection, forwarding headers, timeouts
//!        explain/redirect/deny -> proxy::respond, negotiated by Accept/Accept-Language
//!        report-only    -> forwarded, recorded as "would have"
//!   -> telemetry  exactly one decision record (pseudonymised) and the metrics
//! ```
//!
//! Module map:
//! - [`canonical`]: the one path and host normaliser, for matching and forwarding.
//! - [`tenant`]: tenant ids as values, the tenant directory, the bearer `tid`.
//! - [`policy`]: pure rules, path patterns in one `RegexSet`, evaluation, shadow check.
//! - [`config`]: raw TOML structures validated into typed [`config::Config`],
//!   every error located by file, line, column and key path.
//! - [`proxy`]: the request handler (outer: always a response and one record;
//!   inner: `?`), body inspection, policy answers, the single error → status map;
//!   [`proxy::pass`]: the HTTP/1.1 pass-through path for plain forwards, which
//!   hands everything else to the handler.
//! - [`upstream`]: the connection pool and the header rewriting towards the backend.
//! - [`server`]: listeners, TLS termination, reload and file watching, graceful
//!   drain, sd_notify, the admin listener.
//! - [`telemetry`]: tracing, the decision log (pseudonyms, rotation), metrics.
//! - [`demo`]: the sample partner-portal backend used by `portalgate demo` and tests.
//! - [`cli`] and [`commands`]: the command line.
//!
//! Imports point one way: `canonical`, `tenant` and `head` import nothing
//! of the rest, `telemetry` only `tenant` (records hold tenant ids); `policy` uses `tenant` and `canonical` only; `config` builds
//! policy and tenant types; `upstream` and `proxy` use `config`; `server`
//! uses `proxy`; commands use everything.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod canonical;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod head;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod telemetry;
pub mod tenant;
pub mod upstream;
