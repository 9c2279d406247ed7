//! A rule's tenant and region: the tenant id from each of the rule's
//! sources (all must agree; ASP.NET's reading of a query parameter), and
//! its region from the directory or, for a tenant the directory does not
//! list, from what region discovery has learned.

use super::{BearerTid, PolicyError, RequestView, Resolved};
use crate::head::text;
use crate::policy::capture::Capture;
use crate::policy::rule::TenantSource;
use crate::tenant::{Directory, Region, RegionSource, TenantId, TenantIdError};

/// Where rules find a tenant's region.
#[derive(Clone, Copy)]
pub struct Regions<'a> {
    /// Hosts and listed tenants.
    pub directory: &'a Directory,
    /// What region discovery knows of tenants the directory does not list;
    /// `None` when discovery is not configured (they get the default).
    pub discovered: Option<&'a dyn Discovered>,
}

impl<'a> Regions<'a> {
    /// The directory alone.
    pub fn of(directory: &'a Directory) -> Regions<'a> {
        Regions {
            directory,
            discovered: None,
        }
    }
}

/// What region discovery knows, now, of a tenant the directory does not list.
pub trait Discovered {
    /// What is known of the tenant's region.
    fn learned(&self, tenant: TenantId) -> Learned;
}

/// What region discovery knows of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    /// Its region (`None`: the default region) and where it came from.
    Known(Option<Region>, RegionSource),
    /// Its lookup failed and no region may be assumed: a rule that
    /// enforces stops for it (and the request is refused); a report-only
    /// rule is skipped, since it must never change what the client gets.
    Unavailable,
    /// Not known yet: a lookup is needed.
    NotYet,
}

/// The value of query parameter `name` as ASP.NET's model binding reads it:
/// names compared ASCII-case-insensitively after percent-decoding, `+` as
/// a space. `Ok(None)`: absent; `Ok(Some(None))`: not decodable; a name
/// given twice is ambiguous (binders disagree on which one counts).
fn query_value(query: Option<&str>, name: &str) -> Result<Option<Option<String>>, PolicyError> {
    // `+` is a space in a query; an escaped `%2B` stays a plus.
    let decode = |s: &str| -> Option<String> {
        crate::canonical::percent_decode(&s.replace('+', " ")).map(std::borrow::Cow::into_owned)
    };
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = match decode(k) {
            Some(k) if !k.trim().eq_ignore_ascii_case(name) => continue,
            Some(_) => decode(v),
            // An undecodable name may be this one: its value is unreadable.
            None => None,
        };
        if found.is_some() {
            return Err(PolicyError::RepeatedTenantSource(format!("query:{name}")));
        }
        found = Some(value);
    }
    Ok(found)
}

/// The tenant id from every listed source that has one (all must agree),
/// and its region; the tenant too when its region is not known yet, and
/// whether its lookup failed (the default stands in, for rules that do not
/// name regions).
pub(super) fn resolve(
    sources: &[TenantSource],
    names: &[&'static str],
    captures: &[(&str, Capture)],
    req: &RequestView<'_>,
    regions: Regions<'_>,
) -> Result<(Resolved, Option<(TenantId, bool)>), PolicyError> {
    let mut found: Option<(TenantId, usize)> = None;
    for (i, source) in sources.iter().enumerate() {
        let raw: Option<Result<TenantId, TenantIdError>> = match source {
            TenantSource::Capture(name) => captures
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| TenantId::parse_bytes(v.as_bytes())),
            TenantSource::Header(h) => {
                let mut values = req.headers.get_all(h);
                let first = values.next();
                if values.next().is_some() {
                    return Err(PolicyError::RepeatedTenantSource(h.to_string()));
                }
                first.map(|v| {
                    text(v)
                        .ok_or(TenantIdError::Malformed)
                        .and_then(TenantId::parse)
                })
            }
            TenantSource::Host => req
                .host
                .and_then(|h| h.split('.').next())
                .map(TenantId::parse)
                .filter(|r| r.is_ok()),
            TenantSource::BearerTid => match req.bearer_tid {
                BearerTid::Absent => None,
                BearerTid::Tid(t) => Some(Ok(t)),
                BearerTid::Unreadable => Some(Err(TenantIdError::Malformed)),
            },
            TenantSource::Query(name) => query_value(req.query, name)?.map(|v| {
                v.ok_or(TenantIdError::Malformed)
                    .and_then(|v| TenantId::parse(&v))
            }),
        };
        let id = match raw {
            None | Some(Err(TenantIdError::NotAGuid)) => continue,
            Some(Err(TenantIdError::Malformed)) => {
                return Err(PolicyError::MalformedTenant {
                    from: source.describe(),
                })
            }
            Some(Ok(id)) => id,
        };
        match found {
            Some((prev, prev_source)) if prev != id => {
                return Err(PolicyError::ConflictingTenants {
                    first: sources[prev_source].describe(),
                    second: source.describe(),
                })
            }
            Some(_) => {}
            None => found = Some((id, i)),
        }
    }
    let tenant = found.as_ref().map(|f| f.0);
    let (region, mut region_source) = regions.directory.region(req.host, tenant);
    let mut region = *region;
    let mut unknown = None;
    if let (RegionSource::Default, Some(t), Some(d)) = (region_source, tenant, regions.discovered) {
        match d.learned(t) {
            Learned::Known(learned, source) => {
                if let Some(r) = learned {
                    region = r;
                }
                region_source = source;
            }
            Learned::Unavailable => unknown = Some((t, true)),
            Learned::NotYet => unknown = Some((t, false)),
        }
    }
    Ok((
        Resolved {
            tenant,
            tenant_source: found.and_then(|f| names.get(f.1).copied()),
            region,
            region_source,
        },
        unknown,
    ))
}
