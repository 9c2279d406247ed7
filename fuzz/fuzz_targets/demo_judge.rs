//! The judge every fuzz target holds to its properties: the shipped demo
//! configuration (the Germany pack with its demo tenants), so every kind of
//! plan is reachable. Included by the targets with `#[path]`.

use std::sync::OnceLock;

use portalgate::proxy::judge::Judge;

/// Built once per fuzzing process.
pub fn judge() -> &'static Judge {
    static JUDGE: OnceLock<Judge> = OnceLock::new();
    JUDGE.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let config = portalgate::config::load(&dir.join("demo.toml")).expect("demo config");
        Judge::new(&config, &portalgate::telemetry::metrics::Metrics::default())
    })
}
