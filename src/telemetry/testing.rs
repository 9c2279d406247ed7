//! Records for the telemetry tests: a recorder with two rules and a
//! record builder.

use std::sync::Arc;
use std::time::SystemTime;

use super::id::Id;
use super::pseudonym::Pseudonymizer;
use super::record::{ClientAddress, Local, RawRecord, Recorder, RuleFacts, Texts};
use crate::tenant::TenantId;

/// The rules the records below name, by index.
pub const CREATE: u32 = 0;
/// The second rule (report-only).
pub const LICENSES: u32 = 1;

/// The recorder every test record names (one per process).
pub fn recorder() -> Arc<Local> {
    static RECORDER: std::sync::OnceLock<Arc<Local>> = std::sync::OnceLock::new();
    let rule = |id: &str, mode: &'static str| RuleFacts {
        id: id.into(),
        mode,
        route: None,
        portal: Some("https://portal.microsoftazure.de".into()),
    };
    RECORDER
        .get_or_init(|| {
            Arc::new(Local(Arc::new(Recorder {
                pseudonyms: Pseudonymizer::new(b"k"),
                client_address: ClientAddress::Omit,
                user_collections: Vec::new(),
                generation: 1,
                config_hash: String::new(),
                known_hosts: Default::default(),
                rules: vec![
                    rule("germany-customer-user-create", "enforce"),
                    rule("germany-license-read", "report-only"),
                ],
            })))
        })
        .clone()
}

/// A record of a decision at `at`, shared as the log shares it.
pub fn record(
    at: SystemTime,
    rule: Option<u32>,
    action: &'static str,
    tenant: Option<&str>,
) -> Arc<RawRecord> {
    Arc::new(raw(at, rule, action, tenant, "/"))
}

/// A record of a decision at `at` on `target`.
pub fn raw(
    at: SystemTime,
    rule: Option<u32>,
    action: &'static str,
    tenant: Option<&str>,
    target: &str,
) -> RawRecord {
    RawRecord {
        at,
        decision_id: Id::new(),
        request_id: Id::new(),
        rule,
        action,
        status: 403,
        reason: None,
        method: http::Method::POST,
        texts: Texts::new(None, None, target, None),
        tenant: tenant.and_then(|t| TenantId::parse(t).ok()),
        tenant_source: None,
        region: None,
        region_source: None,
        users: Vec::new(),
        peer: [127, 0, 0, 1].into(),
        protocol: "HTTP/1.1",
        duration_ms: 0.1,
        recorder: recorder(),
    }
}
