//! The filters over decision records, one set for every reader: `portalgate
//! logs` (flags), `/decisions/recent` and the console's live feed (query
//! parameters). The values each filter takes are listed once here, and an
//! unknown value is an error wherever it is given.

use std::time::SystemTime;

use crate::tenant::TenantId;

/// The actions a record can carry (`--action`, `action=`).
pub const ACTIONS: [&str; 6] = ["explain", "redirect", "deny", "allow", "reject", "forward"];
/// The modes a record can carry (`--mode`, `mode=`).
pub const MODES: [&str; 2] = ["enforce", "report-only"];

/// What a filter reads of a record.
pub trait Fields {
    /// The rule that decided, if any.
    fn rule(&self) -> Option<&str>;
    /// The tenant, if one was resolved.
    fn tenant(&self) -> Option<TenantId>;
    /// The action.
    fn action(&self) -> &str;
    /// `enforce` or `report-only`.
    fn mode(&self) -> &str;
    /// The response status.
    fn status(&self) -> u16;
    /// When the decision was taken (`None`: unreadable, never kept by a
    /// time filter).
    fn at(&self) -> Option<SystemTime>;
    /// The route template of the rule.
    fn route(&self) -> Option<&str>;
    /// The canonical (pseudonymised) path.
    fn path(&self) -> Option<&str>;
}

/// A conjunction of filters; the default keeps every record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this tenant (any GUID spelling given).
    pub tenant: Option<TenantId>,
    /// Only this action (one of [`ACTIONS`]).
    pub action: Option<String>,
    /// Only this mode (one of [`MODES`]).
    pub mode: Option<String>,
    /// Only this status.
    pub status: Option<u16>,
    /// Not before.
    pub since: Option<SystemTime>,
    /// Not after.
    pub until: Option<SystemTime>,
    /// Only this route template, or paths starting with this.
    pub path: Option<String>,
}

/// A time (`2026-11-24T09:00:00Z`) or an age before `now` (`2h`, `30m`).
pub fn when(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return now
            .checked_sub(d)
            .ok_or_else(|| format!("{s:?} reaches before 1970"));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("{s:?}: write a time (2026-11-24T09:00:00Z) or an age (2h, 30m)"))
}

impl Filter {
    /// Whether the record passes every filter.
    pub fn keep(&self, r: &impl Fields) -> bool {
        if self.rule.as_deref().is_some_and(|x| r.rule() != Some(x)) {
            return false;
        }
        if self.tenant.is_some_and(|t| r.tenant() != Some(t)) {
            return false;
        }
        if self.action.as_deref().is_some_and(|a| a != r.action()) {
            return false;
        }
        if self.mode.as_deref().is_some_and(|m| m != r.mode()) {
            return false;
        }
        if self.status.is_some_and(|s| s != r.status()) {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(at) = r.at() else { return false };
            if self.since.is_some_and(|s| at < s) || self.until.is_some_and(|u| at > u) {
                return false;
            }
        }
        if let Some(p) = self.path.as_deref() {
            let route = r.route() == Some(p);
            let prefix = r.path().is_some_and(|x| x.starts_with(p));
            if !(route || prefix) {
                return false;
            }
        }
        true
    }

    /// The filters a query string gives (`rule=…&tenant=…&action=…&mode=…&
    /// status=…&since=…&until=…&path=…`; percent-encoded, `+` for a space,
    /// empty values ignored, other names ignored). An unknown action or mode,
    /// a status outside 100–599, a malformed tenant or time is an error that
    /// names the parameter.
    pub fn from_query(query: &str, now: SystemTime) -> Result<Filter, String> {
        let mut f = Filter::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let spaced = raw.replace('+', " ");
            let value = crate::canonical::percent_decode(&spaced)
                .ok_or_else(|| format!("{name}: malformed percent-encoding"))?;
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let bad = |why: String| format!("{name}: {why}");
            match name {
                "rule" => f.rule = Some(value.to_owned()),
                "tenant" => {
                    f.tenant = Some(TenantId::parse(value).map_err(|e| bad(e.to_string()))?)
                }
                "action" => f.action = Some(one_of(value, &ACTIONS).map_err(bad)?),
                "mode" => f.mode = Some(one_of(value, &MODES).map_err(bad)?),
                "status" => {
                    f.status = Some(
                        value
                            .parse::<u16>()
                            .ok()
                            .filter(|s| (100..=599).contains(s))
                            .ok_or_else(|| bad(format!("{value:?} is not a status (100-599)")))?,
                    )
                }
                "since" => f.since = Some(when(value, now).map_err(bad)?),
                "until" => f.until = Some(when(value, now).map_err(bad)?),
                "path" => f.path = Some(value.to_owned()),
                _ => {}
            }
        }
        Ok(f)
    }
}

fn one_of(value: &str, allowed: &[&str]) -> Result<String, String> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not one of {}", allowed.join(", ")))
    }
}

impl Fields for super::record::DecisionRecord {
    fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }
    fn tenant(&self) -> Option<TenantId> {
        self.tenant.as_deref().and_then(|t| TenantId::parse(t).ok())
    }
    fn action(&self) -> &str {
        self.action
    }
    fn mode(&self) -> &str {
        self.mode
    }
    fn status(&self) -> u16 {
        self.status
    }
    fn at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.ts).ok()
    }
    fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }
    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

#[cfg(test)]
mod tests;
