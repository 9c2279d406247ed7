//! Rules that can never match because an earlier rule always wins.
//!
//! Conservative: a later rule is reported only when an earlier *enforcing*
//! rule provably matches every request the later one matches: no body or
//! header condition, methods, hosts and regions that include the later
//! rule's, the same tenant sources when regions are compared, and a path
//! pattern that is the same or a `/**` prefix of it. Overlaps it cannot
//! prove are not reported.

use super::pattern::PathPattern;
use super::rule::{Mode, Rule};

/// `(later, earlier)` index pairs: `later` is shadowed by `earlier`.
pub fn shadowed<A>(rules: &[Rule<A>]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (b, later) in rules.iter().enumerate() {
        if later.mode == Mode::Off {
            continue;
        }
        if let Some(a) = rules[..b].iter().position(|earlier| covers(earlier, later)) {
            out.push((b, a));
        }
    }
    out
}

fn covers<A, B>(a: &Rule<A>, b: &Rule<B>) -> bool {
    let (ma, mb) = (&a.matcher, &b.matcher);
    a.mode == Mode::Enforce
        && ma.body.is_none()
        && ma.headers.is_empty()
        && (ma.methods.is_empty()
            || (!mb.methods.is_empty() && mb.methods.iter().all(|m| ma.methods.contains(m))))
        && (ma.hosts.is_empty()
            || (!mb.hosts.is_empty() && mb.hosts.iter().all(|h| ma.hosts.contains(h))))
        && (ma.regions.is_empty()
            || (!mb.regions.is_empty()
                && mb.regions.iter().all(|r| ma.regions.contains(r))
                && ma.tenant_from == mb.tenant_from))
        && path_covers(ma.path.as_ref(), mb.path.as_ref())
}

fn path_covers(a: Option<&PathPattern>, b: Option<&PathPattern>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pa), Some(pb)) if pa == pb => true,
        (
            Some(PathPattern::Template {
                template: ta,
                case_insensitive: ca,
            }),
            Some(PathPattern::Template {
                template: tb,
                case_insensitive: cb,
            }),
        ) => {
            let Some(prefix) = ta.strip_suffix("/**") else {
                return false;
            };
            // A case-insensitive prefix covers either; a case-sensitive one
            // only a case-sensitive template with the same letters.
            let (p, t) = if *ca {
                (prefix.to_ascii_lowercase(), tb.to_ascii_lowercase())
            } else if !cb {
                (prefix.to_string(), tb.clone())
            } else {
                return false;
            };
            !p.contains('{') && (t == p || t.starts_with(&format!("{p}/")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rule::Matcher;

    fn r(id: &str, mode: Mode, methods: &[&str], path: Option<&str>) -> Rule<()> {
        Rule {
            id: id.into(),
            description: String::new(),
            mode,
            matcher: Matcher {
                methods: methods.iter().map(|m| m.parse().unwrap()).collect(),
                path: path.map(|t| PathPattern::Template {
                    template: t.into(),
                    case_insensitive: true,
                }),
                ..Matcher::default()
            },
            action: (),
        }
    }

    #[test]
    fn finds_provable_shadows_only() {
        let rules = vec![
            r(
                "all-posts",
                Mode::Enforce,
                &["POST"],
                Some("/v1/customers/**"),
            ),
            r(
                "create",
                Mode::Enforce,
                &["POST"],
                Some("/v1/Customers/{tenant}/users"),
            ),
            r(
                "read",
                Mode::Enforce,
                &["GET"],
                Some("/v1/customers/{tenant}/users"),
            ),
            r("report", Mode::ReportOnly, &["GET"], Some("/v2/**")),
            r("v2", Mode::Enforce, &["GET"], Some("/v2/x")),
            r(
                "same",
                Mode::Enforce,
                &["GET", "DELETE"],
                Some("/v1/customers/{tenant}/users"),
            ),
            r(
                "later-same",
                Mode::Enforce,
                &["DELETE"],
                Some("/v1/customers/{tenant}/users"),
            ),
        ];
        assert_eq!(shadowed(&rules), [(1, 0), (6, 5)]);
    }

    #[test]
    fn conditions_on_the_earlier_rule_prevent_a_shadow() {
        let mut a = r("a", Mode::Enforce, &[], None);
        a.matcher.body = Some(crate::policy::BodyCond {
            json_field_present: vec!["x".into()],
        });
        let b = r("b", Mode::Enforce, &["POST"], Some("/x"));
        assert!(shadowed(&[a, b.clone()]).is_empty());
        let catch_all = r("all", Mode::Enforce, &[], None);
        assert_eq!(shadowed(&[catch_all, b]), [(1, 0)]);
    }
}
