//! `portalgate logs`: read decision logs, filter, print or summarise.
//!
//! Streams line by line (flat memory whatever the size); a malformed line
//! is reported with its file and line number and skipped. For each file
//! `F` given, rotated siblings `F.N` are read first, oldest (highest N)
//! first.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use super::Exit;
use crate::cli::LogsArgs;
use crate::telemetry::filter::{when, Fields, Filter};
use crate::tenant::TenantId;

/// The fields `logs` reads; the rest of a record is ignored.
#[derive(Deserialize)]
struct Line {
    ts: String,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    action: String,
    status: u16,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    portal: Option<String>,
}

impl Fields for Line {
    fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }
    fn tenant(&self) -> Option<TenantId> {
        self.tenant.as_deref().and_then(|t| TenantId::parse(t).ok())
    }
    fn action(&self) -> &str {
        &self.action
    }
    fn mode(&self) -> &str {
        self.mode.as_deref().unwrap_or("enforce")
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

/// `F.N` siblings of `F`, oldest (highest N) first, then `F`.
fn with_rotated(file: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let other = e.file_name();
                let Some(other) = other.to_str() else {
                    continue;
                };
                if let Some(n) = other
                    .strip_prefix(name)
                    .and_then(|r| r.strip_prefix('.'))
                    .and_then(|n| n.parse().ok())
                {
                    rotated.push((n, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|r| r.1).collect();
    out.push(file.to_path_buf());
    out
}

#[derive(Default)]
struct Summary {
    total: u64,
    by_rule: HashMap<String, u64>,
    by_tenant: HashMap<String, u64>,
    by_action: HashMap<String, u64>,
    by_portal: HashMap<String, u64>,
    by_hour: HashMap<String, u64>,
}

impl Summary {
    fn add(&mut self, l: &Line) {
        self.total += 1;
        let dash = || "-".to_string();
        *self
            .by_rule
            .entry(l.rule.clone().unwrap_or_else(dash))
            .or_default() += 1;
        *self
            .by_tenant
            .entry(l.tenant.clone().unwrap_or_else(dash))
            .or_default() += 1;
        let action = match l.mode.as_deref() {
            Some("report-only") => format!("{} (report-only)", l.action),
            _ => l.action.clone(),
        };
        *self.by_action.entry(action).or_default() += 1;
        *self
            .by_portal
            .entry(l.portal.clone().unwrap_or_else(dash))
            .or_default() += 1;
        let hour = l.ts.get(..13).map_or_else(dash, |h| format!("{h}:00Z"));
        *self.by_hour.entry(hour).or_default() += 1;
    }

    fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "{} decisions\n", self.total)?;
        for (title, map) in [
            ("rule", &self.by_rule),
            ("tenant", &self.by_tenant),
            ("action", &self.by_action),
            ("portal", &self.by_portal),
        ] {
            let mut rows: Vec<(&String, &u64)> = map.iter().collect();
            rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let width = rows
                .iter()
                .map(|r| r.0.chars().count())
                .max()
                .unwrap_or(0)
                .max(title.len());
            writeln!(out, "{title:<width$}  count")?;
            for (k, v) in rows {
                writeln!(out, "{k:<width$}  {v:>5}")?;
            }
            writeln!(out)?;
        }
        let mut hours: Vec<(&String, &u64)> = self.by_hour.iter().collect();
        hours.sort();
        let max = hours.iter().map(|h| *h.1).max().unwrap_or(1).max(1);
        writeln!(out, "{:<17}  count", "hour (UTC)")?;
        for (h, n) in hours {
            let bar = "█".repeat(((n * 40).div_ceil(max)) as usize);
            writeln!(out, "{h:<17}  {n:>5}  {bar}")?;
        }
        Ok(())
    }
}

fn print_line(out: &mut impl Write, l: &Line, raw: &str, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{raw}");
    }
    writeln!(
        out,
        "{:<24}  {:<8}  {:<11}  {:>3}  {:<32}  {:<16}  {:<36}  {:<8}  {:<6}  {}",
        l.ts,
        l.action,
        l.mode.as_deref().unwrap_or("enforce"),
        l.status,
        l.rule.as_deref().unwrap_or("-"),
        l.reason.as_deref().unwrap_or("-"),
        l.tenant.as_deref().unwrap_or("-"),
        l.region.as_deref().unwrap_or("-"),
        l.method.as_deref().unwrap_or("-"),
        // A rejected request has no canonical path: its (redacted) target.
        l.path.as_deref().or(l.target.as_deref()).unwrap_or("-"),
    )
}

/// Like `tail -F`: from byte `start` of `path`, waits for new records; when
/// the file is rotated (a new inode at the path) finishes the old one, then
/// reads the new one from its start; a truncated file is read again from its
/// start. Ends when stdout goes away.
fn follow(path: &Path, start: u64, filters: &Filter, json: bool, out: &mut impl Write) -> Exit {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::MetadataExt;
    let open = |at: u64| -> Option<(BufReader<std::fs::File>, u64)> {
        let mut f = std::fs::File::open(path).ok()?;
        let ino = f.metadata().ok()?.ino();
        f.seek(SeekFrom::Start(at)).ok()?;
        Some((BufReader::new(f), ino))
    };
    let mut current = open(start);
    let mut line = String::new();
    loop {
        let mut progressed = false;
        if let Some((reader, _)) = current.as_mut() {
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    // A partial last line: wait for the rest.
                    Ok(n) if !line.ends_with('\n') => {
                        let _ = reader.seek_relative(-(n as i64));
                        break;
                    }
                    Ok(_) => {
                        progressed = true;
                        let raw = line.trim_end();
                        match serde_json::from_str::<Line>(raw) {
                            Ok(l) if filters.keep(&l) => {
                                if print_line(out, &l, raw, json)
                                    .and_then(|_| out.flush())
                                    .is_err()
                                {
                                    return Exit::Ok;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                eprintln!("{}: malformed record skipped: {e}", path.display())
                            }
                        }
                    }
                }
            }
        }
        // Rotated (new inode) or truncated (shorter than what was read)?
        // Everything of the old file has been read by now.
        let now = std::fs::metadata(path).ok();
        let switch = match (current.as_mut(), &now) {
            (None, Some(_)) => true,
            (Some((r, ino)), Some(m)) => {
                m.ino() != *ino || r.stream_position().is_ok_and(|pos| m.len() < pos)
            }
            _ => false,
        };
        if switch {
            current = open(0);
            continue;
        }
        if !progressed {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

pub fn run(args: &LogsArgs) -> Exit {
    let now = SystemTime::now();
    let parse_time = |s: &Option<String>| s.as_deref().map(|v| when(v, now)).transpose();
    let filters = match (parse_time(&args.since), parse_time(&args.until)) {
        (Ok(since), Ok(until)) => Filter {
            rule: args.rule.clone(),
            tenant: match args.tenant.as_deref().map(TenantId::parse).transpose() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("portalgate: --tenant: {e}");
                    return Exit::Usage;
                }
            },
            action: args.action.clone(),
            mode: args.mode.clone(),
            status: args.status,
            since,
            until,
            path: args.path.clone(),
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("portalgate: {e}");
            return Exit::Usage;
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut malformed = 0u64;
    // Bytes read from the last file: `--follow` continues from there.
    let mut consumed = 0u64;
    if !args.json && !args.summary {
        let _ = writeln!(
            out,
            "{:<24}  {:<8}  {:<11}  {:>3}  {:<32}  {:<16}  {:<36}  {:<8}  {:<6}  path",
            "time", "action", "mode", "st", "rule", "reason", "tenant", "region", "method"
        );
    }
    for given in &args.files {
        for file in with_rotated(given) {
            let f = match std::fs::File::open(&file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("portalgate: cannot read {}: {e}", file.display());
                    return Exit::Runtime;
                }
            };
            let mut reader = BufReader::with_capacity(1 << 16, f);
            let mut buf = String::new();
            consumed = 0;
            for i in 0.. {
                buf.clear();
                let line = match reader.read_line(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        consumed += n as u64;
                        buf.trim_end_matches(['\n', '\r'])
                    }
                    Err(e) => {
                        eprintln!("{}:{}: unreadable line skipped: {e}", file.display(), i + 1);
                        malformed += 1;
                        break;
                    }
                };
                if line.trim().is_empty() {
                    continue;
                }
                let parsed: Line = match serde_json::from_str(line) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!(
                            "{}:{}: malformed record skipped: {e}",
                            file.display(),
                            i + 1
                        );
                        malformed += 1;
                        continue;
                    }
                };
                if !filters.keep(&parsed) {
                    continue;
                }
                let written = if args.summary {
                    summary.add(&parsed);
                    Ok(())
                } else {
                    print_line(&mut out, &parsed, line, args.json)
                };
                if written.is_err() {
                    // The reader went away (e.g. `| head`): stop quietly.
                    return Exit::Ok;
                }
            }
        }
    }
    if args.follow {
        let _ = out.flush();
        if let Some(last) = args.files.last() {
            return follow(last, consumed, &filters, args.json, &mut out);
        }
    }
    if args.summary {
        let _ = summary.print(&mut out);
    }
    let _ = out.flush();
    if malformed > 0 {
        eprintln!(
            "{malformed} malformed line{} skipped",
            if malformed == 1 { "" } else { "s" }
        );
    }
    Exit::Ok
}
