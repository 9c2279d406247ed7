//! Builders for real servers and clients used by the integration tests.
#![allow(dead_code)]

pub mod backend;
pub mod certs;
pub mod child;
pub mod client;
pub mod proxy;
pub mod script;

pub use backend::Backend;
pub use proxy::ProxyBuilder;
