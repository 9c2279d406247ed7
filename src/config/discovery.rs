//! Validation of `[tenants.discovery]`: the metadata URL template, the
//! mapping of metadata values to regions the configuration knows, the
//! cache's TTLs and cap, the timeout, the answer on failure and the trust
//! for the metadata server.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::locate::KeyPath;
use super::raw::{RawDiscovery, RawTenants};
use super::validate::Ctx;
use super::{resolve, tls, Discovery, OnFailure};
use crate::tenant::Region;

/// The most tenants the cache may be configured to hold.
pub const MAX_ENTRIES: usize = 10_000_000;

/// The most lookups in flight that may be configured.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// The discovery settings; `None` when any is invalid (each error located).
pub fn validate(
    raw: &RawDiscovery,
    tenants: &RawTenants,
    used: &HashSet<Region>,
    ctx: &mut Ctx<'_>,
) -> Option<Discovery> {
    let path = KeyPath::default().key("tenants").key("discovery");
    let before = ctx.error_count();
    let url = template(raw.url.as_deref(), &path.key("url"), ctx);
    let default = Region::new(tenants.default_region.as_deref().unwrap_or("global"));
    let mut known: Vec<String> = used
        .iter()
        .chain(std::iter::once(&default))
        .map(ToString::to_string)
        .collect();
    known.sort();
    known.dedup();
    let mut mapping = crate::discovery::Mapping::default();
    for (key, raw_map, into) in [
        (
            "cloud_instance_names",
            &raw.cloud_instance_names,
            &mut mapping.cloud_instance_name,
        ),
        (
            "tenant_region_scopes",
            &raw.tenant_region_scopes,
            &mut mapping.tenant_region_scope,
        ),
    ] {
        *into = regions(raw_map, &path.key(key), used, &default, &known, ctx);
    }
    if mapping.cloud_instance_name.is_empty() && mapping.tenant_region_scope.is_empty() {
        ctx.error(
            &path,
            "maps nothing: give `cloud_instance_names` (e.g. \"microsoftonline.de\" = \"germany\") \
             or `tenant_region_scopes`",
        );
    }
    let limits = crate::discovery::Limits {
        positive_ttl: ctx.duration(
            path.key("positive_ttl"),
            &raw.positive_ttl,
            Duration::from_secs(3600),
        ),
        negative_ttl: ctx.duration(
            path.key("negative_ttl"),
            &raw.negative_ttl,
            Duration::from_secs(300),
        ),
        max_entries: ctx.positive(
            path.key("max_entries"),
            raw.max_entries,
            100_000,
            MAX_ENTRIES,
        ),
        max_in_flight: ctx.positive(
            path.key("max_lookups_in_flight"),
            raw.max_lookups_in_flight,
            100,
            MAX_IN_FLIGHT,
        ),
        timeout: ctx.duration(path.key("timeout"), &raw.timeout, Duration::from_secs(2)),
    };
    let on_failure = match raw.on_failure.as_deref() {
        None | Some("refuse") => OnFailure::Refuse,
        Some("default") => OnFailure::Default,
        Some(other) => {
            ctx.error(
                &path.key("on_failure"),
                format!("{other:?}: write \"refuse\" (503, never forwarded) or \"default\""),
            );
            OnFailure::Refuse
        }
    };
    let ca = raw.ca_file.as_deref().map(|p| resolve(ctx.base(), p));
    let tls = match tls::client_config(ca.as_deref(), true) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            ctx.error(&path.key("ca_file"), e);
            None
        }
    };
    if ctx.error_count() > before {
        return None;
    }
    Some(Discovery {
        url: url?,
        mapping,
        limits,
        on_failure,
        tls: tls?,
    })
}

/// The URL template: http(s), a host, `{tenant}` in its path.
fn template(raw: Option<&str>, path: &KeyPath, ctx: &mut Ctx<'_>) -> Option<String> {
    let Some(url) = raw else {
        ctx.error(
            path,
            "missing: the metadata URL, e.g. \
             \"https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration\"",
        );
        return None;
    };
    let Some((scheme_host, rest)) = url.split_once("://").map(|(s, r)| {
        let end = r.find('/').unwrap_or(r.len());
        ((s, &r[..end]), &r[end..])
    }) else {
        ctx.error(path, format!("{url:?} is not an http or https URL"));
        return None;
    };
    let (scheme, authority) = scheme_host;
    if !matches!(scheme, "http" | "https") {
        ctx.error(path, format!("{url:?}: the scheme must be http or https"));
        return None;
    }
    if authority.contains("{tenant}") || !rest.contains("{tenant}") {
        ctx.error(
            path,
            format!("{url:?}: put {{tenant}} in the path, where the tenant id goes"),
        );
        return None;
    }
    // A sample id must make a valid URI with a host.
    let sample = url.replace("{tenant}", "00000000-0000-0000-0000-000000000000");
    match sample.parse::<http::Uri>() {
        Ok(u) if u.host().is_some_and(|h| !h.is_empty()) => Some(url.to_owned()),
        _ => {
            ctx.error(path, format!("{url:?} is not a valid URL with a host"));
            None
        }
    }
}

/// One mapping table: each region must be one the configuration knows (a
/// typo would silently switch enforcement off for those tenants).
fn regions(
    raw: &BTreeMap<String, String>,
    path: &KeyPath,
    used: &HashSet<Region>,
    default: &Region,
    known: &[String],
    ctx: &mut Ctx<'_>,
) -> Vec<(String, Region)> {
    let mut out = Vec::with_capacity(raw.len());
    for (value, region) in raw {
        let r = Region::new(region);
        if value.trim().is_empty() {
            ctx.error(&path.key(value), "an empty metadata value maps nothing");
        } else if out
            .iter()
            .any(|(v, _): &(String, Region)| v.eq_ignore_ascii_case(value.trim()))
        {
            ctx.error(
                &path.key(value),
                "given twice: metadata values compare case-insensitively",
            );
        } else if !used.contains(&r) && r != *default {
            ctx.error(
                &path.key(value),
                format!(
                    "unknown region {region:?}: no rule names it and it is not the default region (known: {})",
                    known.join(", ")
                ),
            );
        } else {
            out.push((value.trim().to_owned(), r));
        }
    }
    out
}
