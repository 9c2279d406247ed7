//! The tenant directory: tenant id → region, host → region, and a default.
//!
//! A request to a host that serves one region only (a Germany front end) is
//! in that region whatever tenant id it names; otherwise the tenant id's
//! entry decides; an unknown tenant gets the default region.
//! Directory files are CSV (`id,region[,name]`, optional header row, `#`
//! comments) or JSON lines (`{"id": ..., "region": ..., "name": ...}`);
//! [`LineParser`] reads them a line at a time and says what is wrong with a
//! bad one. Names are for the file's readers: they are checked, not kept.
//!
//! Sized for a million tenants: each region's ids are kept as one sorted
//! array of 128-bit values (16 bytes a tenant, the region named once),
//! found by a bucket of their top bits and a binary search within it; they
//! are sorted in place once all are read, so loading holds no second copy
//! (see [`Builder`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::id::TenantId;
use super::ids::Ids;

/// A region name such as `germany` (lowercase), interned
/// ([`crate::interned`]): copied with every judgement and record without
/// a reference count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(&'static str);

impl Region {
    /// A region; names are compared lowercase.
    pub fn new(name: &str) -> Region {
        Region(crate::interned::intern(&name.trim().to_ascii_lowercase()))
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
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
    /// Region discovery: the tenant's OpenID metadata (a region it maps, or
    /// the default for a cloud it does not map or a tenant unknown there).
    Discovery,
    /// Region discovery failed and `on_failure = "default"` says to judge
    /// the request in the default region.
    DiscoveryFailed,
}

impl RegionSource {
    /// A stable name for logs and tools.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionSource::Host => "host",
            RegionSource::Directory => "directory",
            RegionSource::Default => "default",
            RegionSource::Discovery => "discovery",
            RegionSource::DiscoveryFailed => "discovery-failed",
        }
    }
}

/// Canonical host → the one region it serves.
pub type Hosts = HashMap<String, Region>;

/// The directory, built once per configuration.
#[derive(Debug, Clone)]
pub struct Directory {
    /// One sorted list of ids per region listed.
    lists: Box<[Listing]>,
    by_host: Arc<Hosts>,
    default: Region,
}

/// The tenants of one region: sorted ids, and where each bucket of their
/// top bits starts.
#[derive(Debug, Clone)]
struct Listing {
    region: Region,
    ids: Ids,
    /// `ids[buckets[b]..buckets[b + 1]]` are the ids whose top `bits` bits
    /// are `b`.
    buckets: Box<[u32]>,
    bits: u32,
}

impl Listing {
    fn new(region: Region, ids: Ids) -> Listing {
        // About 8 ids a bucket, at most 2^16 buckets.
        let bits = match ids.len() {
            0..=63 => 0,
            n => (n.ilog2() - 3).min(16),
        };
        let mut buckets = vec![0u32; (1usize << bits) + 1];
        for &id in ids.as_slice() {
            buckets[bucket(id, bits) + 1] += 1;
        }
        for b in 1..buckets.len() {
            buckets[b] += buckets[b - 1];
        }
        Listing {
            region,
            ids,
            buckets: buckets.into_boxed_slice(),
            bits,
        }
    }

    fn contains(&self, id: u128) -> bool {
        let b = bucket(id, self.bits);
        let (Some(&lo), Some(&hi)) = (self.buckets.get(b), self.buckets.get(b + 1)) else {
            return false;
        };
        self.ids
            .as_slice()
            .get(lo as usize..hi as usize)
            .is_some_and(|ids| ids.binary_search(&id).is_ok())
    }
}

fn bucket(id: u128, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (id >> (128 - bits)) as usize
    }
}

impl Directory {
    /// A directory from its parts; `hosts` keys must be canonical hosts.
    pub fn new(
        entries: HashMap<TenantId, Entry>,
        hosts: HashMap<String, Region>,
        default: Region,
    ) -> Directory {
        let mut b = Builder::with_capacity(entries.len());
        for (id, e) in entries {
            let r = b.region(e.region.as_str());
            b.add(id, r);
        }
        // A map lists each tenant once: there is no conflict to report.
        let (directory, _) = b.build(hosts, default);
        directory
    }

    /// The region for a request to canonical `host` naming `tenant`.
    pub fn region(&self, host: Option<&str>, tenant: Option<TenantId>) -> (&Region, RegionSource) {
        if let Some(r) = host.and_then(|h| self.by_host.get(h)) {
            return (r, RegionSource::Host);
        }
        if let Some(r) = tenant.and_then(|t| self.tenant_region(t)) {
            return (r, RegionSource::Directory);
        }
        (&self.default, RegionSource::Default)
    }

    /// The region of tenants listed nowhere else.
    pub fn default_region(&self) -> &Region {
        &self.default
    }

    /// The configured hosts and their regions, shared.
    pub fn hosts(&self) -> Arc<Hosts> {
        self.by_host.clone()
    }

    /// Whether `host` (canonical) is one of the configured hosts.
    pub fn knows_host(&self, host: &str) -> bool {
        self.by_host.contains_key(host)
    }

    /// The region the directory lists a tenant in.
    pub fn tenant_region(&self, tenant: TenantId) -> Option<&Region> {
        let id = tenant.as_u128();
        self.lists
            .iter()
            .find(|l| l.contains(id))
            .map(|l| &l.region)
    }

    /// Number of tenant entries.
    pub fn len(&self) -> usize {
        self.lists.iter().map(|l| l.ids.len()).sum()
    }

    /// Whether there is no tenant entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the tenant entries take (ids and buckets).
    pub fn heap_bytes(&self) -> usize {
        self.lists
            .iter()
            .map(|l| l.ids.len() * 16 + l.buckets.len() * 4)
            .sum()
    }
}

/// Collects tenants, then sorts each region's once into a [`Directory`].
/// The same tenant listed again in the same region is fine; in another
/// region it is a conflict, which [`Builder::build`] names (the caller,
/// which knows where each listing was, says where).
#[derive(Debug, Default)]
pub struct Builder {
    lists: Vec<(Region, Ids)>,
    capacity: usize,
}

impl Builder {
    /// A builder that reserves room for `listings` tenants in each region
    /// (an upper bound; reserved room takes no memory until written).
    pub fn with_capacity(listings: usize) -> Builder {
        Builder {
            lists: Vec::new(),
            capacity: listings,
        }
    }

    /// The index of region `name` (interned; compared lowercase).
    pub fn region(&mut self, name: &str) -> u16 {
        let name = name.trim();
        if let Some(i) = self
            .lists
            .iter()
            .position(|(r, _)| r.as_str().eq_ignore_ascii_case(name))
        {
            return i as u16;
        }
        self.lists
            .push((Region::new(name), Ids::with_capacity(self.capacity)));
        (self.lists.len() - 1) as u16
    }

    /// The region at `index`.
    pub fn region_at(&self, index: u16) -> Option<&Region> {
        self.lists.get(usize::from(index)).map(|(r, _)| r)
    }

    /// Adds a tenant in region `region` (from [`Builder::region`]).
    pub fn add(&mut self, id: TenantId, region: u16) {
        if let Some((_, ids)) = self.lists.get_mut(usize::from(region)) {
            ids.push(id.as_u128());
        }
    }

    /// Tenants added so far (a tenant listed twice counts twice).
    pub fn len(&self) -> usize {
        self.lists.iter().map(|(_, ids)| ids.len()).sum()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The directory, and the tenants listed in more than one region
    /// (sorted; the directory finds such a tenant in the region added
    /// first, but a caller should refuse it).
    pub fn build(
        self,
        hosts: HashMap<String, Region>,
        default: Region,
    ) -> (Directory, Vec<TenantId>) {
        let mut lists: Vec<(Region, Ids)> = self
            .lists
            .into_iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(r, mut ids)| {
                ids.sort_dedup();
                (r, ids)
            })
            .collect();
        // The biggest first: most lookups end in it.
        lists.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        let mut conflicts = Vec::new();
        for (i, (_, ids)) in lists.iter().enumerate() {
            for (_, other) in &lists[i + 1..] {
                conflicts.extend(common(ids.as_slice(), other.as_slice()).map(TenantId::from_u128));
            }
        }
        conflicts.sort_unstable();
        conflicts.dedup();
        let directory = Directory {
            lists: lists
                .into_iter()
                .map(|(r, ids)| Listing::new(r, ids))
                .collect(),
            by_host: Arc::new(hosts),
            default,
        };
        (directory, conflicts)
    }
}

/// The ids in both sorted lists.
fn common<'a>(a: &'a [u128], b: &'a [u128]) -> impl Iterator<Item = u128> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
            match x.cmp(&y) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                    return Some(x);
                }
            }
        }
        None
    })
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

/// One line of a directory file, parsed: the tenant and its region's name
/// (the name, if any, was checked and is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The tenant.
    pub id: TenantId,
    /// The region as written (checked: letters, digits, `-`, `_`).
    pub region: std::borrow::Cow<'a, str>,
}

/// Reads a directory file a line at a time: blank lines and `#` comments
/// are skipped, and so is a CSV header row (`id,...`) on the first line
/// that is neither.
#[derive(Debug)]
pub struct LineParser {
    format: FileFormat,
    first: bool,
}

impl LineParser {
    /// A parser for a file of `format`.
    pub fn new(format: FileFormat) -> LineParser {
        LineParser {
            format,
            first: true,
        }
    }

    /// The tenant a line lists (`None`: nothing to read on it), or what is
    /// wrong with it.
    pub fn line<'a>(&mut self, raw: &'a str) -> Result<Option<Listed<'a>>, String> {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let first = std::mem::replace(&mut self.first, false);
        match self.format {
            FileFormat::Csv => {
                if first
                    && line
                        .split(',')
                        .next()
                        .is_some_and(|f| f.trim().eq_ignore_ascii_case("id"))
                {
                    return Ok(None);
                }
                if line.contains('"') {
                    return quoted_csv(line);
                }
                let mut fields = line.split(',').map(str::trim);
                let (Some(id), Some(region)) = (fields.next(), fields.next()) else {
                    return Err("expected id,region[,name], got 1 field".into());
                };
                let _name = fields.next();
                let extra = fields.count();
                if extra > 0 {
                    return Err(format!(
                        "expected id,region[,name], got {} fields",
                        3 + extra
                    ));
                }
                listed(id, region).map(Some)
            }
            FileFormat::JsonLines => {
                let j: JsonEntry = serde_json::from_str(line).map_err(|e| e.to_string())?;
                let id = tenant(&j.id)?;
                region_name(&j.region)?;
                Ok(Some(Listed {
                    id,
                    region: j.region.trim().to_owned().into(),
                }))
            }
        }
    }
}

/// A CSV line with quotes, by the csv crate's rules (a quoted field cannot
/// span lines).
fn quoted_csv(line: &str) -> Result<Option<Listed<'_>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    let record = match reader.records().next() {
        Some(r) => r.map_err(|e| e.to_string())?,
        None => return Ok(None),
    };
    if !(2..=3).contains(&record.len()) {
        return Err(format!(
            "expected id,region[,name], got {} fields",
            record.len()
        ));
    }
    let id = tenant(&record[0])?;
    let region = region_name(&record[1])?.to_owned();
    Ok(Some(Listed {
        id,
        region: region.into(),
    }))
}

fn tenant(id: &str) -> Result<TenantId, String> {
    TenantId::parse(id).map_err(|e| format!("tenant id {id:?}: {e}"))
}

fn region_name(region: &str) -> Result<&str, String> {
    let region = region.trim();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "region {region:?}: use letters, digits, '-' or '_'"
        ));
    }
    Ok(region)
}

fn listed<'a>(id: &str, region: &'a str) -> Result<Listed<'a>, String> {
    Ok(Listed {
        id: tenant(id)?,
        region: region_name(region)?.into(),
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry {
    id: String,
    region: String,
    #[allow(dead_code)]
    name: Option<String>,
}

#[cfg(test)]
mod tests;
