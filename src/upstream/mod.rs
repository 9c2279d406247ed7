//! The road to the backend: the connection pool and the header rewriting.
//!
//! [`headers`] is pure (a `HeaderMap` in, a `HeaderMap` out) and unit-tested;
//! [`pool`] keeps keep-alive connections to the upstream (TCP or TLS with
//! hostname verification) and reports failures as [`UpstreamFailure`].

pub mod headers;
pub mod pool;

pub use pool::{Lease, UpstreamError, UpstreamFailure, UpstreamPool};
