//! `portalgate check`: validate a configuration and summarise it.

use crate::cli::CheckArgs;
use crate::config;

use super::{load_config, Exit};

pub fn run(args: &CheckArgs) -> Exit {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    out!("{}: OK", args.config.display());
    for l in &config.listeners {
        let kind = if l.tls.is_some() { "https" } else { "http" };
        out!("  listener  {kind}://{}", l.address);
    }
    let up = &config.upstream;
    out!("  upstream  {}://{}", up.scheme, up.authority);
    match config.admin {
        Some(a) => out!("  admin     http://{a}"),
        None => out!("  admin     off"),
    }
    out!("  tenants   {} in the directory", config.directory.len());
    if let Some(d) = &config.discovery {
        let t = humantime::format_duration;
        out!("  discovery {}", d.url);
        out!(
            "            cache {} tenants, kept {} ({} if unknown), {} lookups at once, timeout {}, on failure {}",
            d.limits.max_entries,
            t(d.limits.positive_ttl),
            t(d.limits.negative_ttl),
            d.limits.max_in_flight,
            t(d.limits.timeout),
            match d.on_failure {
                crate::config::OnFailure::Refuse => "refuse",
                crate::config::OnFailure::Default => "default region",
            }
        );
    }
    print_rules(&config);
    let rules = config.rules.rules();
    for (later, earlier) in crate::policy::shadow::shadowed(rules) {
        let origin = |i: usize| config.rule_origins.get(i).cloned().unwrap_or_default();
        eprintln!(
            "warning: {}: rule {:?} can never match: rule {:?} ({}) always matches first",
            origin(later),
            rules[later].id,
            rules[earlier].id,
            origin(earlier)
        );
    }
    Exit::Ok
}

/// The rule table: id, mode, what it matches, what it does, where it is defined.
fn print_rules(config: &config::Config) {
    let rules = config.rules.rules();
    if rules.is_empty() {
        out!("\nno rules: every request is forwarded");
        return;
    }
    let rows: Vec<[String; 5]> = rules
        .iter()
        .zip(&config.rule_origins)
        .enumerate()
        .map(|(i, (r, origin))| {
            [
                format!("{}", i + 1),
                r.id.clone(),
                r.mode.as_str().to_string(),
                r.matcher.describe(),
                format!("{}  ({origin})", r.action.describe()),
            ]
        })
        .collect();
    let header = ["#", "rule", "mode", "match", "action"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out!();
    for row in std::iter::once(&header).chain(&rows) {
        out!(
            "{:>w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
}
