//! portalgate: a policy-enforcing reverse proxy for partner portals.
//!
//! A request travels through the modules in this order:
//!
//! ```text
//! server    accept TCP or TLS (rustls, ALPN h2/http1.1), serve HTTP/1.1 and HTTP/2
//!   -> proxy    intake: limits, framing checks, request id, forwarding headers
//!   -> upstream pooled hyper client (keep-alive, timeouts, TLS to the backend)
//!   -> proxy    the response, or a local error response negotiated by `Accept`
//! ```
//!
//! Module map:
//! - [`canonical`]: the one path and host normaliser, for matching and forwarding.
//! - [`config`]: raw TOML structures validated into typed [`config::Config`],
//!   every error located by file, line, column and key path.
//! - [`proxy`]: the request handler (outer: always a response; inner: `?`),
//!   local responses and the single error → status map.
//! - [`upstream`]: the pooled client and the header rewriting towards the backend.
//! - [`server`]: listeners, TLS termination, graceful drain, the admin listener.
//! - [`telemetry`]: tracing initialisation.
//! - [`tenant`]: tenant ids as values (every GUID spelling the backend accepts).
//! - [`demo`]: the sample partner-portal backend used by `portalgate demo` and tests.
//! - [`cli`] and [`commands`]: the command line.
//!
//! Imports point one way: `canonical`, `config` and `telemetry` import nothing of the rest;
//! `upstream` and `proxy` use `config`; `server` uses `proxy`; commands use everything.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod canonical;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod telemetry;
pub mod tenant;
pub mod upstream;
