//! The road to the backend: the connection pool and the header rewriting.
//!
//! [`headers`] is pure (a `HeaderMap` in, a `HeaderMap` out) and unit-tested;
//! [`pool`] keeps keep-alive connections to the upstream (TCP or TLS with
//! hostname verification; hyper's client connections for hyper's path, raw
//! [`stream::Stream`]s for the pass-through path) and reports failures as
//! [`UpstreamFailure`].

pub mod body;
pub mod headers;
pub mod pool;
pub mod stream;

pub use pool::{Lease, UpstreamError, UpstreamFailure, UpstreamPool};
