//! The policy core: rules, path patterns and evaluation. Pure: no I/O, no
//! serde, no server. It uses the `tenant` and `canonical` leaf modules and
//! `http` types, and nothing else of the crate.
//!
//! A request, already canonical, is evaluated against the rules in file
//! order; the first enforcing match decides ([`engine`]).

pub mod action;
pub mod capture;
mod describe;
pub mod engine;
pub mod index;
pub mod pattern;
pub mod rule;
pub mod shadow;

pub use action::{Action, DocLink, JsonFormat, Portal};
pub use capture::Capture;
pub use engine::{
    BearerTid, BodyView, BuildError, Decision, Discovered, Evaluation, JsonFields, Learned,
    Matched, PolicyError, Regions, RequestView, Resolved, Resume, RuleSet, Trace, Verdict, Why,
};
pub use pattern::{PathPattern, PatternError};
pub use rule::{BodyCond, HeaderCond, HeaderTest, Matcher, Mode, Rule, TenantSource};
