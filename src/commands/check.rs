//! `portalgate check`: validate a configuration and summarise it.

use crate::cli::CheckArgs;
use crate::config;

use super::{load_config, Exit};

pub fn run(args: &CheckArgs) -> Exit {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    println!("{}: OK", args.config.display());
    for l in &config.listeners {
        let kind = if l.tls.is_some() { "https" } else { "http" };
        println!("  listener  {kind}://{}", l.address);
    }
    let up = &config.upstream;
    println!("  upstream  {}://{}", up.scheme, up.authority);
    match config.admin {
        Some(a) => println!("  admin     http://{a}"),
        None => println!("  admin     off"),
    }
    println!("  tenants   {} in the directory", config.directory.len());
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
        println!("\nno rules: every request is forwarded");
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
                describe_match(&r.matcher),
                format!("{}  ({origin})", describe_action(&r.action)),
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
    println!();
    for row in std::iter::once(&header).chain(&rows) {
        println!(
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

fn describe_match(m: &crate::policy::Matcher) -> String {
    use crate::policy::PathPattern;
    let methods = if m.methods.is_empty() {
        "*".to_string()
    } else {
        m.methods
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let path = match &m.path {
        None => "/**".to_string(),
        Some(PathPattern::Template { template, .. }) => template.clone(),
        Some(PathPattern::Regex(r)) => format!("~{r}"),
    };
    let mut s = format!("{methods} {path}");
    if !m.regions.is_empty() {
        let regions: Vec<&str> = m.regions.iter().map(|r| r.as_str()).collect();
        s.push_str(&format!(" region={}", regions.join(",")));
    }
    if !m.hosts.is_empty() {
        s.push_str(&format!(" host={}", m.hosts.join(",")));
    }
    if let Some(b) = &m.body {
        s.push_str(&format!(" body.{}", b.json_field_present.join(".")));
    }
    if !m.headers.is_empty() {
        s.push_str(&format!(" +{} header cond.", m.headers.len()));
    }
    s
}

fn describe_action(a: &crate::policy::Action) -> String {
    use crate::policy::Action;
    match a {
        Action::Allow => "allow".into(),
        Action::Deny { status } => format!("deny {}", status.as_u16()),
        Action::Redirect { location, .. } => format!("redirect {location}"),
        Action::Explain {
            feature, portals, ..
        } => {
            let p: Vec<&str> = portals.iter().map(|p| p.key.as_str()).collect();
            format!("explain {feature} -> {}", p.join(", "))
        }
    }
}
