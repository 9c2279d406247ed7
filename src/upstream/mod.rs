//! The road to the backend: the pooled client and the header rewriting.
//!
//! [`headers`] is pure (a `HeaderMap` in, a `HeaderMap` out) and unit-tested;
//! [`client`] builds the hyper-util pooled client with the configured
//! timeouts and TLS, and classifies its errors.

pub mod client;
pub mod headers;

pub use client::{build_client, classify, UpstreamClient, UpstreamFailure};
