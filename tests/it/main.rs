//! The integration test binary: real servers on 127.0.0.1 port 0, real TLS
//! with certificates generated here, and the real binary for CLI tests.

mod support;

mod admin;
mod bypass;
mod canonical;
mod cli;
mod console;
mod decisions;
mod differential;
mod discovered;
mod discovery;
mod errors;
mod faults;
mod forward;
mod lenient;
mod lenient_model;
mod limits;
mod passthrough;
mod policy;
mod privacy;
mod reload;
mod streaming;
mod tls;
mod upgrade;
mod workers;
