//! Hot reload: a new configuration snapshot is loaded, validated and built
//! away from the request path, then swapped in atomically (arc-swap).
//!
//! Requests already in flight keep the snapshot they started with (each
//! takes its own `Arc` of it). A snapshot that fails validation is never
//! applied: the old one keeps serving, the errors are logged with file,
//! line and key, `portalgate_config_reload_total{result="error"}` counts
//! it, and readiness is unchanged. TLS certificates are swapped for new
//! handshakes (open connections keep theirs). Listener and admin addresses
//! and decision-log outputs are fixed at startup; a reload that changes them
//! says so in the log, and a restart applies them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config;
use crate::proxy::Proxy;
use crate::telemetry::decision_log::DecisionLog;
use crate::telemetry::metrics::{Metrics, ReloadLabels, ReloadResult};

/// The live configuration of a running server.
pub struct Live {
    /// The snapshot requests use.
    pub proxy: ArcSwap<Proxy>,
    /// The `/config` document of the snapshot.
    config_doc: ArcSwap<serde_json::Value>,
    /// When the last reload was tried and what came of it (`/config`'s
    /// `last_reload`; `null` until one is tried).
    last_reload: std::sync::Mutex<serde_json::Value>,
    source: Option<PathBuf>,
    listeners: Vec<SocketAddr>,
    /// The running listeners' certificates, by address.
    certificates: Vec<(SocketAddr, Arc<config::ReloadableResolver>)>,
    admin: Option<SocketAddr>,
    outputs: crate::telemetry::decision_log::Outputs,
    log: Arc<DecisionLog>,
    metrics: Arc<Metrics>,
    lock: tokio::sync::Mutex<()>,
}

impl Live {
    /// The first snapshot, from the configuration loaded at startup.
    pub fn new(
        config: &config::Config,
        source: Option<PathBuf>,
        log: Arc<DecisionLog>,
        metrics: Arc<Metrics>,
    ) -> Live {
        metrics.config_generation.set(1);
        Live {
            proxy: ArcSwap::from_pointee(Proxy::new(config, log.clone(), metrics.clone(), 1)),
            config_doc: ArcSwap::from_pointee(config_doc(config, 1)),
            source,
            listeners: config.listeners.iter().map(|l| l.address).collect(),
            certificates: config
                .listeners
                .iter()
                .filter_map(|l| l.certificates.clone().map(|c| (l.address, c)))
                .collect(),
            admin: config.admin,
            outputs: config.decision_log.outputs.clone(),
            log,
            metrics,
            lock: tokio::sync::Mutex::new(()),
            last_reload: std::sync::Mutex::new(serde_json::Value::Null),
        }
    }

    /// The `/config` document of the snapshot in force.
    pub fn config_doc(&self) -> String {
        let mut doc = self.config_doc.load().as_ref().clone();
        doc["last_reload"] = self
            .last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        doc.to_string() + "\n"
    }

    /// The metrics, shared by every snapshot.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The decision log, shared by every snapshot.
    pub fn decision_log(&self) -> &DecisionLog {
        &self.log
    }

    /// Loads the configuration file again and swaps it in; returns the new
    /// generation, or every error found (the old snapshot keeps serving).
    pub async fn reload(&self) -> Result<u64, String> {
        let _one_at_a_time = self.lock.lock().await;
        super::notify::notify("RELOADING=1\nSTATUS=reloading");
        let result = self.reload_now().await;
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = match &result {
            Ok(generation) => {
                serde_json::json!({"at": at, "result": "success", "generation": generation})
            }
            Err(errors) => serde_json::json!({"at": at, "result": "error", "errors": errors}),
        };
        super::notify::notify("READY=1\nSTATUS=serving");
        result
    }

    async fn reload_now(&self) -> Result<u64, String> {
        let Some(path) = self.source.clone() else {
            return Err("this server was not started from a configuration file".into());
        };
        // Reading and validating touches the file system: off the runtime.
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| e.to_string())?;
        let config = match loaded {
            Ok(c) => c,
            Err(e) => {
                self.count(ReloadResult::Error);
                let text = e.to_string();
                tracing::error!(errors = %text, "reload rejected; the running configuration keeps serving");
                return Err(text);
            }
        };
        let current: Vec<SocketAddr> = config.listeners.iter().map(|l| l.address).collect();
        if current != self.listeners || config.admin != self.admin {
            tracing::warn!(
                "listener or admin addresses changed: they take effect only after a restart; \
                 the rest of the configuration is applied now"
            );
        }
        // New handshakes get the new certificates; open connections keep theirs.
        let mut rotated = 0;
        for l in &config.listeners {
            if let (Some(new), Some((_, running))) = (
                &l.certificates,
                self.certificates.iter().find(|(a, _)| *a == l.address),
            ) {
                running.replace_with(new);
                rotated += 1;
            }
        }
        if config.decision_log.outputs != self.outputs {
            tracing::warn!("decision log outputs changed: they take effect only after a restart");
        }
        let current = self.proxy.load();
        let generation = current.generation() + 1;
        let mut next = Proxy::new(&config, self.log.clone(), self.metrics.clone(), generation);
        // Tenant regions already discovered stay known, if still true.
        next.judge.succeed(&current.judge);
        drop(current);
        self.config_doc
            .store(Arc::new(config_doc(&config, generation)));
        self.proxy.store(Arc::new(next));
        self.metrics.config_generation.set(generation as i64);
        self.count(ReloadResult::Success);
        tracing::info!(
            generation,
            hash = %config.hash,
            rules = config.rules.rules().len(),
            tls_listeners = rotated,
            "configuration reloaded"
        );
        Ok(generation)
    }

    fn count(&self, result: ReloadResult) {
        self.metrics
            .config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }
}

/// The `/config` document for `config` at `generation`.
pub fn config_doc(config: &crate::config::Config, generation: u64) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = config
        .rules
        .rules()
        .iter()
        .zip(&config.rule_origins)
        .map(|(r, origin)| {
            serde_json::json!({
                "id": r.id,
                "mode": r.mode.as_str(),
                "match": r.matcher.describe(),
                "action": r.action.describe(),
                "defined": origin,
            })
        })
        .collect();
    serde_json::json!({
        "hash": config.hash,
        "generation": generation,
        "rules": rules,
        "tenants": config.directory.len(),
        "discovery": config.discovery.as_ref().map(|d| serde_json::json!({
            "url": d.url,
            "positive_ttl_s": d.limits.positive_ttl.as_secs_f64(),
            "negative_ttl_s": d.limits.negative_ttl.as_secs_f64(),
            "max_entries": d.limits.max_entries,
            "max_lookups_in_flight": d.limits.max_in_flight,
            "timeout_s": d.limits.timeout.as_secs_f64(),
            "on_failure": match d.on_failure {
                crate::config::OnFailure::Refuse => "refuse",
                crate::config::OnFailure::Default => "default",
            },
        })),
    })
}
