//! portalgate: a policy-enforcing reverse proxy for partner portals.
//!
//! A request travels through these phases; each names the file and the
//! function that carries it out.
//!
//! ```text
//! accept       server/workers.rs accept_loop, on worker 0; Dispatch::serve
//!                                hands each connection to the next worker's event loop,
//!                                conn.rs start: TCP or TLS (rustls, ALPN h2/http1.1)
//! read head    either codec, chosen per connection by conn.rs serve_http:
//!                proxy/pass/       Proxy::pass: portalgate's HTTP/1.1 codec (httparse, in place);
//!                                  pass/now.rs Proxy::take parses and judges in plain code
//!                proxy/handler.rs  Proxy::handle: hyper (HTTP/2, upgrades, chunked/Expect
//!                                  uploads, HTTP/1.0, or everything with http1_fast_path off),
//!                                  the snapshot held per connection (server/snapshot.rs)
//! view         head.rs           HeadView::of_raw | HeadView::of_parts: one view of the head
//! judge        proxy/judge.rs    Judge::decide, once per request:
//!   intake       proxy/intake.rs   check: limits, framing, Host
//!   canonical    canonical.rs      canonical_path: ONE path, forwarded (ambiguous -> 400);
//!                canonical/fold.rs fold: that path as a lenient backend reads it, judged
//!   rules        policy/engine.rs  RuleSet::evaluate: candidates from policy/index.rs, first
//!                                  enforcing match wins; tenant and region per rule (resolve)
//!   answer       proxy/respond/    Answers::answer: the compiled explanation/redirect/denial
//!   -> Plan      Forward(rewrite) | Answer | Reject(ProxyError) | ReadBody (Judge::resume)
//!                | Discover: an unlisted tenant's region, for a rule that names regions
//! discover     proxy/judge.rs    Judge::settle -> proxy/discover.rs Discoverer::lookup ->
//!                                discovery.rs Cache::resolve (one lookup per tenant),
//!                                discovery/fetch.rs Fetcher::lookup; then Judge::resume
//! execute      the codec that read the head:
//!   forward      proxy/pass/exchange.rs  Proxy::exchange (raw pooled connection), or
//!                proxy/handler.rs        serve_hyper -> upstream/pool.rs UpstreamPool::send;
//!                the head rewritten by upstream/headers.rs rewrite_request / rewrite_response
//!   answer       proxy/answer.rs   Answer::write_http1 | answer/to_hyper.rs into_response
//!                                  (a preset's fields kept per thread as hyper's map); on the
//!                                  pass-through codec rendered and accounted without a
//!                                  future of its own (pass/now.rs Proxy::answer_now), into
//!                                  the thread's answer buffer (pass/scratch.rs lend)
//!   reject       proxy/local.rs    error_response, status from proxy/error.rs ProxyError::status
//! account      proxy/account.rs  Accounts::finish: metrics, one log line for a failure, one
//!                                decision record (telemetry/record.rs, formatted off the path)
//! ```
//!
//! Module map:
//! - [`head`]: the protocol-neutral view of a request head.
//! - [`ascii`]: ASCII-case-insensitive comparison and byte search a word at
//!   a time (routes, methods, header names, a path's slashes).
//! - [`slices`]: sorting and deduplicating a slice in place.
//! - [`deadline`]: a timer that costs nothing to move (connections, bodies).
//! - [`clock`]: wall-clock time from one monotonic reading (`Date`, records).
//! - [`interned`]: configuration names (regions, tenant sources) kept once.
//! - [`oneshot`]: an unpooled HTTP/1.1 client connection (commands, discovery).
//! - [`canonical`]: the one path and host normaliser, for matching and forwarding.
//! - [`tenant`]: tenant ids as values, the tenant directory, the bearer `tid`.
//! - [`discovery`]: an unlisted tenant's region from its OpenID metadata:
//!   the reading, the cache, one lookup per tenant (`[tenants.discovery]`;
//!   used by the judgement through [`proxy::discover`]).
//! - [`policy`]: pure rules, the rule index, evaluation (resumable for the
//!   body), shadow check.
//! - [`config`]: raw TOML structures validated into typed [`config::Config`],
//!   every error located by file, line, column and key path.
//! - [`proxy`]: the logic above the codecs, split by role: judging
//!   ([`proxy::judge`]), forwarding ([`proxy::Forwarder`]), accounting
//!   ([`proxy::account`]); the two codecs ([`proxy::pass`],
//!   [`proxy::handler`]); answers and the single error → status map;
//!   why a forward failed ([`proxy::failure`], below both codecs).
//! - [`upstream`]: the connection pool (one idle cap, one resend rule), the
//!   one rewrite of heads, the request body towards the upstream.
//! - [`server`]: listeners, TLS termination, reload and file watching, graceful
//!   drain, sd_notify, the admin listener and its console
//!   ([`server::console`]: the page and the live feed).
//! - [`telemetry`]: tracing, ids, decision records and the decision log
//!   (pseudonyms, rotation), metrics, the record filters shared by `logs`
//!   and the console ([`telemetry::filter`]), the console's counts.
//! - [`demo`]: the sample partner-portal backend used by `portalgate demo` and tests.
//! - [`cli`] and [`commands`]: the command line.
//!
//! Imports point one way, downwards: commands → server → proxy → upstream
//! → config → policy and telemetry → `tenant`, `canonical`, `head`,
//! `deadline`, `oneshot`, `ascii`, `slices`. The last seven import nothing
//! of the rest (`head` and `canonical` use `ascii`, `tenant` uses
//! `slices`); `policy` uses `head`, `tenant`, `ascii` and `slices`;
//! `telemetry` uses `tenant` (records hold tenant ids) and `ascii`;
//! `discovery` uses `tenant` and `oneshot`; `config` builds policy, tenant
//! and telemetry types.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ascii;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod deadline;
pub mod demo;
pub mod discovery;
pub mod head;
pub mod interned;
pub mod oneshot;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod slices;
pub mod telemetry;
pub mod tenant;
pub mod upstream;
