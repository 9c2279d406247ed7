//! Validation of `[tenants]` into the tenant directory; directory files are
//! read here and each bad line is reported as `file:line`.

use std::collections::HashMap;

use super::error::ConfigError;
use super::locate::KeyPath;
use super::raw::RawTenants;
use super::resolve;
use super::validate::Ctx;
use crate::canonical::canonical_host;
use crate::tenant::directory::{parse_file, FileFormat};
use crate::tenant::{Directory, Entry, Region, TenantId};

fn region_ok(r: &str) -> bool {
    !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Builds the directory; `None` when any part is invalid. `used`: the
/// regions the rules name. A tenant or host put in a region that neither
/// the rules, the hosts nor `default_region` name is an error: a typo
/// (`germnay`) would otherwise switch enforcement off for that tenant.
pub fn directory(
    raw: &RawTenants,
    used: &std::collections::HashSet<Region>,
    ctx: &mut Ctx<'_>,
) -> Option<Directory> {
    let path = KeyPath::default().key("tenants");
    let mut ok = true;
    let default = raw.default_region.as_deref().unwrap_or("global");
    let mut known = used.clone();
    known.insert(Region::new(default));
    let names = {
        let mut v: Vec<String> = known.iter().map(ToString::to_string).collect();
        v.sort();
        v.join(", ")
    };
    let unknown = |region: &Region| {
        (!known.contains(region)).then(|| {
            format!("unknown region \"{region}\": no rule names it and it is not the default region (known: {names})")
        })
    };
    if !region_ok(default) {
        ctx.error(
            &path.key("default_region"),
            format!("{default:?}: use letters, digits, '-' or '_'"),
        );
        ok = false;
    }
    let mut entries: HashMap<TenantId, Entry> = HashMap::new();
    let mut add = |id: TenantId, e: Entry, ctx: &mut Ctx<'_>, at: &dyn Fn(&mut Ctx<'_>, String)| {
        if let Some(prev) = entries.get(&id) {
            if prev.region != e.region {
                at(
                    ctx,
                    format!(
                        "tenant {id} is already in region {}, not {}",
                        prev.region, e.region
                    ),
                );
                return false;
            }
        }
        entries.insert(id, e);
        true
    };
    for (i, f) in raw.files.iter().enumerate() {
        let fp = path.key("files").index(i);
        let Some(format) = FileFormat::from_name(f) else {
            ctx.error(&fp, format!("{f:?}: directory files are .csv or .jsonl"));
            ok = false;
            continue;
        };
        let file = resolve(ctx.base(), f);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                ctx.error(&fp, format!("cannot read {}: {e}", file.display()));
                ok = false;
                continue;
            }
        };
        let name = file.display().to_string();
        match parse_file(&text, format) {
            Ok(list) => {
                for (line, id, e) in list {
                    let at = |ctx: &mut Ctx<'_>, msg: String| {
                        ctx.push(ConfigError {
                            file: name.clone(),
                            line,
                            column: 1,
                            key: String::new(),
                            message: msg,
                        })
                    };
                    if let Some(msg) = unknown(&e.region) {
                        at(ctx, msg);
                        ok = false;
                        continue;
                    }
                    ok &= add(id, e, ctx, &at);
                }
            }
            Err(lines) => {
                ok = false;
                for l in lines {
                    ctx.push(ConfigError {
                        file: name.clone(),
                        line: l.line,
                        column: 1,
                        key: String::new(),
                        message: l.message,
                    });
                }
            }
        }
    }
    for (i, e) in raw.entries.iter().enumerate() {
        let ep = path.key("entries").index(i);
        let (Some(id), Some(region)) = (&e.id, &e.region) else {
            ctx.error(&ep, "an entry needs `id` and `region`");
            ok = false;
            continue;
        };
        let id = match TenantId::parse(id) {
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
        let entry = Entry {
            region: Region::new(region),
            name: e.name.clone(),
        };
        let at = |ctx: &mut Ctx<'_>, msg: String| ctx.error(&ep.key("region"), msg);
        if let Some(msg) = unknown(&entry.region) {
            at(ctx, msg);
            ok = false;
            continue;
        }
        ok &= add(id, entry, ctx, &at);
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
        if let Some(msg) = unknown(&region) {
            ctx.error(&path.key("hosts").key(host), msg);
            ok = false;
            continue;
        }
        hosts.insert(canonical_host(host).into_owned(), region);
    }
    ok.then(|| Directory::new(entries, hosts, Region::new(default)))
}
