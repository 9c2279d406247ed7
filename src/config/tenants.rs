//! Validation of `[tenants]` into the tenant directory. Directory files are
//! read here, streamed a line at a time (a million-line file is never held
//! whole), and each bad line is reported as `file:line`, at most
//! [`ERRORS_PER_FILE`] a file.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use super::error::ConfigError;
use super::locate::KeyPath;
use super::raw::RawTenants;
use super::resolve;
use super::validate::Ctx;
use crate::canonical::canonical_host;
use crate::tenant::directory::{Builder, FileFormat, LineParser, Listed};
use crate::tenant::{Directory, Region};

/// Bad lines reported by name in one file; the rest are counted.
pub const ERRORS_PER_FILE: usize = 100;

fn region_ok(r: &str) -> bool {
    !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether each interned region is one the configuration knows, asked once
/// per region rather than once per line.
struct Known<'k> {
    known: &'k HashSet<Region>,
    names: String,
    by_index: Vec<Option<bool>>,
}

impl Known<'_> {
    /// `None` when the region at `index` is known, else why not.
    fn check(&mut self, b: &Builder, index: u16) -> Option<String> {
        let i = usize::from(index);
        if self.by_index.len() <= i {
            self.by_index.resize(i + 1, None);
        }
        let region = b.region_at(index)?;
        let known = *self.by_index[i].get_or_insert_with(|| self.known.contains(region));
        (!known).then(|| {
            format!(
                "unknown region \"{region}\": no rule names it and it is not the default region (known: {})",
                self.names
            )
        })
    }
}

/// Builds the directory; `None` when any part is invalid. `used`: the
/// regions the rules name. A tenant or host put in a region that neither
/// the rules, the hosts nor `default_region` name is an error: a typo
/// (`germnay`) would otherwise switch enforcement off for that tenant.
pub fn directory(raw: &RawTenants, used: &HashSet<Region>, ctx: &mut Ctx<'_>) -> Option<Directory> {
    let path = KeyPath::default().key("tenants");
    let mut ok = true;
    let default = raw.default_region.as_deref().unwrap_or("global");
    let mut known_set = used.clone();
    known_set.insert(Region::new(default));
    let names = {
        let mut v: Vec<String> = known_set.iter().map(ToString::to_string).collect();
        v.sort();
        v.join(", ")
    };
    let mut known = Known {
        known: &known_set,
        names,
        by_index: Vec::new(),
    };
    if !region_ok(default) {
        ctx.error(
            &path.key("default_region"),
            format!("{default:?}: use letters, digits, '-' or '_'"),
        );
        ok = false;
    }
    // At most one tenant per 38 bytes of a file (a GUID, a comma, a
    // one-letter region, a newline): room reserved for that many in each
    // region costs address space, not memory.
    let bound: u64 = raw
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(resolve(ctx.base(), f)).ok())
        .map(|m| m.len() / 38 + 1)
        .sum::<u64>()
        + raw.entries.len() as u64;
    let mut b = Builder::with_capacity(usize::try_from(bound).unwrap_or(usize::MAX));
    // The files read, to find where a conflict is if one is found.
    let mut files = Vec::new();
    for (i, f) in raw.files.iter().enumerate() {
        let fp = path.key("files").index(i);
        let Some(format) = FileFormat::from_name(f) else {
            ctx.error(&fp, format!("{f:?}: directory files are .csv or .jsonl"));
            ok = false;
            continue;
        };
        let file = resolve(ctx.base(), f);
        let name = file.display().to_string();
        files.push((file.clone(), format));
        let mut bad = Vec::new();
        let mut more = 0usize;
        let mut report = |line: u32, message: String| {
            if bad.len() < ERRORS_PER_FILE {
                bad.push((line, message));
            } else {
                more += 1;
            }
        };
        let read = read_file(&file, format, |line, listed| match listed {
            Ok(listed) => {
                let index = b.region(&listed.region);
                match known.check(&b, index) {
                    Some(msg) => report(line, msg),
                    None => b.add(listed.id, index),
                }
            }
            Err(msg) => report(line, msg),
        });
        if let Err(e) = read {
            ctx.error(&fp, format!("cannot read {}: {e}", file.display()));
            ok = false;
            continue;
        }
        ok &= bad.is_empty();
        let last = bad.last().map_or(0, |(l, _)| *l as usize);
        for (line, message) in bad {
            ctx.push(at(&name, line as usize, message));
        }
        if more > 0 {
            ctx.push(at(
                &name,
                last,
                format!("and {more} more bad lines (the first {ERRORS_PER_FILE} are shown)"),
            ));
        }
    }
    for (i, e) in raw.entries.iter().enumerate() {
        let ep = path.key("entries").index(i);
        let (Some(id), Some(region)) = (&e.id, &e.region) else {
            ctx.error(&ep, "an entry needs `id` and `region`");
            ok = false;
            continue;
        };
        let id = match crate::tenant::TenantId::parse(id) {
            Ok(id) => id,
            Err(err) => {
                ctx.error(&ep.key("id"), format!("{id:?}: {err}"));
                ok = false;
                continue;
            }
        };
        if !region_ok(region) {
            ctx.error(
                &ep.key("region"),
                format!("{region:?}: use letters, digits, '-' or '_'"),
            );
            ok = false;
            continue;
        }
        let index = b.region(region);
        if let Some(msg) = known.check(&b, index) {
            ctx.error(&ep.key("region"), msg);
            ok = false;
            continue;
        }
        b.add(id, index);
    }
    let mut hosts = HashMap::new();
    for (host, region) in &raw.hosts {
        if !region_ok(region) {
            ctx.error(
                &path.key("hosts").key(host),
                format!("{region:?}: use letters, digits, '-' or '_'"),
            );
            ok = false;
            continue;
        }
        let region = Region::new(region);
        if !known_set.contains(&region) {
            let index = b.region(region.as_str());
            if let Some(msg) = known.check(&b, index) {
                ctx.error(&path.key("hosts").key(host), msg);
            }
            ok = false;
            continue;
        }
        hosts.insert(canonical_host(host).into_owned(), region);
    }
    let (directory, conflicts) = b.build(hosts, Region::new(default));
    if !conflicts.is_empty() {
        locate_conflicts(raw, &files, &conflicts, &path, ctx);
        return None;
    }
    ok.then_some(directory)
}

/// Reads the listings again, in order, and reports each later listing of
/// a conflicting tenant in another region where it is (at most
/// [`ERRORS_PER_FILE`] conflicts by name, the rest counted).
fn locate_conflicts(
    raw: &RawTenants,
    files: &[(std::path::PathBuf, FileFormat)],
    conflicts: &[crate::tenant::TenantId],
    path: &KeyPath,
    ctx: &mut Ctx<'_>,
) {
    let named: HashSet<crate::tenant::TenantId> =
        conflicts.iter().take(ERRORS_PER_FILE).copied().collect();
    let mut first: HashMap<crate::tenant::TenantId, Region> = HashMap::new();
    let mut check = |id, region: &str| -> Option<String> {
        if !named.contains(&id) {
            return None;
        }
        let region = Region::new(region);
        match first.get(&id) {
            None => {
                first.insert(id, region);
                None
            }
            Some(was) if *was != region => Some(format!(
                "tenant {id} is already in region {was}, not {region}"
            )),
            Some(_) => None,
        }
    };
    for (file, format) in files {
        let name = file.display().to_string();
        let mut found = Vec::new();
        let _ = read_file(file, *format, |line, listed| {
            if let Some(msg) = listed.ok().and_then(|l| check(l.id, &l.region)) {
                found.push(at(&name, line as usize, msg));
            }
        });
        for e in found {
            ctx.push(e);
        }
    }
    for (i, e) in raw.entries.iter().enumerate() {
        let (Some(id), Some(region)) = (&e.id, &e.region) else {
            continue;
        };
        let Ok(id) = crate::tenant::TenantId::parse(id) else {
            continue;
        };
        if let Some(msg) = check(id, region) {
            ctx.error(&path.key("entries").index(i).key("region"), msg);
        }
    }
    if conflicts.len() > ERRORS_PER_FILE {
        ctx.error(
            &path.key("files"),
            format!(
                "and {} more tenants listed in two regions (the first {ERRORS_PER_FILE} are shown)",
                conflicts.len() - ERRORS_PER_FILE
            ),
        );
    }
}

fn at(file: &str, line: usize, message: String) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        line,
        column: 1,
        key: String::new(),
        message,
    }
}

/// Streams one directory file: each line that lists a tenant, or what is
/// wrong with it, goes to `each` with its number.
fn read_file(
    file: &Path,
    format: FileFormat,
    mut each: impl FnMut(u32, Result<Listed<'_>, String>),
) -> std::io::Result<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(file)?);
    let mut parser = LineParser::new(format);
    let mut buf = Vec::with_capacity(256);
    let mut line = 0u32;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line = line.saturating_add(1);
        let Ok(text) = std::str::from_utf8(&buf) else {
            each(line, Err("not UTF-8".into()));
            continue;
        };
        match parser.line(text) {
            Ok(None) => {}
            Ok(Some(listed)) => each(line, Ok(listed)),
            Err(msg) => each(line, Err(msg)),
        }
    }
}
