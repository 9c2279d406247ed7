//! The tenant directory: tenant id → region, host → region, and a default.
//!
//! A request to a host that serves one region only (a Germany front end) is
//! in that region whatever tenant id it names; otherwise the tenant id's
//! entry decides; an unknown tenant gets the default region.
//! Directory files are CSV (`id,region[,name]`, optional header row, `#`
//! comments) or JSON lines (`{"id": ..., "region": ..., "name": ...}`);
//! [`parse_file`] reports every bad line with its number.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::id::TenantId;

/// A region name such as `germany` (lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(Arc<str>);

impl Region {
    /// A region; names are compared lowercase.
    pub fn new(name: &str) -> Region {
        Region(Arc::from(name.trim().to_ascii_lowercase()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One tenant's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tenant's region.
    pub region: Region,
    /// A display name for operators (never personal data).
    pub name: Option<String>,
}

/// Where a request's region came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// The request's host serves one region.
    Host,
    /// The tenant id's directory entry.
    Directory,
    /// No host or directory match: the configured default.
    Default,
}

impl RegionSource {
    /// A stable name for logs and tools.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionSource::Host => "host",
            RegionSource::Directory => "directory",
            RegionSource::Default => "default",
        }
    }
}

/// The directory, built once per configuration.
#[derive(Debug, Clone)]
pub struct Directory {
    by_id: HashMap<TenantId, Entry>,
    by_host: HashMap<String, Region>,
    default: Region,
}

impl Directory {
    /// A directory from its parts; `hosts` keys must be canonical hosts.
    pub fn new(
        entries: HashMap<TenantId, Entry>,
        hosts: HashMap<String, Region>,
        default: Region,
    ) -> Directory {
        Directory {
            by_id: entries,
            by_host: hosts,
            default,
        }
    }

    /// The region for a request to canonical `host` naming `tenant`.
    pub fn region(&self, host: Option<&str>, tenant: Option<TenantId>) -> (&Region, RegionSource) {
        if let Some(r) = host.and_then(|h| self.by_host.get(h)) {
            return (r, RegionSource::Host);
        }
        if let Some(e) = tenant.and_then(|t| self.by_id.get(&t)) {
            return (&e.region, RegionSource::Directory);
        }
        (&self.default, RegionSource::Default)
    }

    /// Whether `host` (canonical) is one of the configured hosts.
    pub fn knows_host(&self, host: &str) -> bool {
        self.by_host.contains_key(host)
    }

    /// The entry for a tenant.
    pub fn entry(&self, tenant: TenantId) -> Option<&Entry> {
        self.by_id.get(&tenant)
    }

    /// Number of tenant entries.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no tenant entry.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// A bad line in a directory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The format of a directory file, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.csv`
    Csv,
    /// `.jsonl` / `.ndjson`
    JsonLines,
}

impl FileFormat {
    /// The format for a file name, if it is a known one.
    pub fn from_name(name: &str) -> Option<FileFormat> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(FileFormat::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(FileFormat::JsonLines)
        } else {
            None
        }
    }
}

/// Parses a directory file's text: every entry, or every bad line.
pub fn parse_file(
    text: &str,
    format: FileFormat,
) -> Result<Vec<(usize, TenantId, Entry)>, Vec<LineError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    match format {
        FileFormat::Csv => parse_csv(text, &mut entries, &mut errors),
        FileFormat::JsonLines => parse_jsonl(text, &mut entries, &mut errors),
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn entry(
    line: usize,
    id: &str,
    region: &str,
    name: Option<&str>,
) -> Result<(usize, TenantId, Entry), LineError> {
    let id = TenantId::parse(id).map_err(|e| LineError {
        line,
        message: format!("tenant id {id:?}: {e}"),
    })?;
    let region = region.trim();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(LineError {
            line,
            message: format!("region {region:?}: use letters, digits, '-' or '_'"),
        });
    }
    Ok((
        line,
        id,
        Entry {
            region: Region::new(region),
            name: name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        },
    ))
}

/// One entry per line: lines are numbered here, and each line is parsed
/// with the csv crate for its quoting rules (a quoted field cannot span lines).
fn parse_csv(text: &str, entries: &mut Vec<(usize, TenantId, Entry)>, errors: &mut Vec<LineError>) {
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(trimmed.as_bytes());
        let record = match reader.records().next() {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                errors.push(LineError {
                    line,
                    message: e.to_string(),
                });
                continue;
            }
            None => continue,
        };
        let header = first && record.get(0).is_some_and(|f| f.eq_ignore_ascii_case("id"));
        first = false;
        if header {
            continue;
        }
        if !(2..=3).contains(&record.len()) {
            errors.push(LineError {
                line,
                message: format!("expected id,region[,name], got {} fields", record.len()),
            });
            continue;
        }
        match entry(line, &record[0], &record[1], record.get(2)) {
            Ok(e) => entries.push(e),
            Err(e) => errors.push(e),
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry {
    id: String,
    region: String,
    name: Option<String>,
}

fn parse_jsonl(
    text: &str,
    entries: &mut Vec<(usize, TenantId, Entry)>,
    errors: &mut Vec<LineError>,
) {
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match serde_json::from_str::<JsonEntry>(trimmed) {
            Ok(j) => match entry(line, &j.id, &j.region, j.name.as_deref()) {
                Ok(e) => entries.push(e),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(LineError {
                line,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
