use proptest::prelude::*;

use super::*;

/// The candidates by the anchored regexes alone: what the tree must find.
fn by_regex(patterns: &[PathPattern], path: &str) -> Vec<usize> {
    let compiled: Vec<regex::Regex> = patterns
        .iter()
        .map(|p| regex::Regex::new(&p.to_regex().unwrap().0).unwrap())
        .collect();
    matching(&compiled, path)
}

fn matching(compiled: &[regex::Regex], path: &str) -> Vec<usize> {
    compiled
        .iter()
        .enumerate()
        .filter(|(_, re)| re.is_match(path))
        .map(|(i, _)| i)
        .collect()
}

fn index(patterns: &[PathPattern]) -> Index {
    let sources: Vec<String> = patterns.iter().map(|p| p.to_regex().unwrap().0).collect();
    let refs: Vec<Option<&PathPattern>> = patterns.iter().map(Some).collect();
    Index::new(&refs, &sources).unwrap()
}

fn t(s: &str, ci: bool) -> PathPattern {
    PathPattern::Template {
        template: s.into(),
        case_insensitive: ci,
    }
}

#[test]
fn the_germany_shapes() {
    let patterns = [
        t("/v1/customers/{tenant}/users/{user}", true),
        t("/v1/customers/{tenant}/users", true),
        t("/v1/customers/{tenant}/users", false),
        t("/dashboard/customers/{tenant}/users/**", true),
        t("/dashboard/account/usermanagement/**", true),
        t("/v1/**/licenses", true),
        PathPattern::Regex("/v1/customers/[^/]+/subscribedskus".into()),
        t("/", true),
        t("/**", true),
    ];
    let idx = index(&patterns);
    for path in [
        "/",
        "/v1/customers/abc/users",
        "/V1/Customers/abc/USERS/",
        "/v1/customers/abc/users/u1",
        "/v1/customers/abc/users/u1/licenses",
        "/v1/customers/abc/subscribedskus",
        "/dashboard/customers/abc/users",
        "/dashboard/customers/abc/users/x/y",
        "/dashboard/account/usermanagement",
        "/dashboards",
    ] {
        assert_eq!(idx.candidates(path), by_regex(&patterns, path), "{path}");
    }
}

/// A template from a small alphabet, so that paths and templates collide.
fn template() -> impl Strategy<Value = PathPattern> {
    let seg = prop_oneof![
        Just("a".to_string()),
        Just("B".to_string()),
        Just("users".to_string()),
        Just("{x}".to_string()),
        Just("**".to_string()),
    ];
    (
        proptest::collection::vec(seg, 0..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segs, ci, slash)| {
            let mut names = 0;
            let segs: Vec<String> = segs
                .into_iter()
                .map(|s| {
                    if s == "{x}" {
                        names += 1;
                        format!("{{x{names}}}")
                    } else {
                        s
                    }
                })
                .collect();
            let mut text = format!("/{}", segs.join("/"));
            if slash && !text.ends_with('/') {
                text.push('/');
            }
            t(&text, ci)
        })
}

fn path() -> impl Strategy<Value = String> {
    let seg = prop_oneof![
        Just("a"),
        Just("A"),
        Just("b"),
        Just("B"),
        Just("users"),
        Just("Users"),
        Just("x1")
    ];
    (proptest::collection::vec(seg, 0..6), any::<bool>()).prop_map(|(segs, slash)| {
        let mut p = format!("/{}", segs.join("/"));
        if slash && !p.ends_with('/') {
            p.push('/');
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever templates and paths: the tree finds exactly the rules the
    /// anchored regexes match.
    #[test]
    fn the_tree_finds_what_the_regexes_match(
        patterns in proptest::collection::vec(template(), 1..8),
        paths in proptest::collection::vec(path(), 1..8),
    ) {
        let idx = index(&patterns);
        let compiled: Vec<regex::Regex> = patterns
            .iter()
            .map(|p| regex::Regex::new(&p.to_regex().unwrap().0).unwrap())
            .collect();
        for p in &paths {
            prop_assert_eq!(idx.candidates(p), matching(&compiled, p), "{}", p);
        }
    }

    /// A candidate the tree holds has its captures where its template
    /// puts them: read by position, they are what the checked reading
    /// (every literal compared) finds.
    #[test]
    fn a_held_candidates_captures_are_at_their_positions(
        patterns in proptest::collection::vec(template(), 1..8),
        paths in proptest::collection::vec(path(), 1..8),
    ) {
        use crate::policy::pattern::{segments, Segments};
        let idx = index(&patterns);
        for p in &paths {
            let mut segs = Vec::new();
            segments(p, &mut segs);
            for rule in idx.candidates(p) {
                let Some(steps) = Segments::of(&patterns[rule]) else { continue };
                if !idx.holds(rule) {
                    continue;
                }
                let mut checked = Vec::new();
                prop_assert!(steps.captures_with(&segs, |v| checked.push(v)).is_some(), "{}", p);
                let mut by_position = Vec::new();
                steps.captures_of_match(&segs, |v| by_position.push(v));
                prop_assert_eq!(by_position, checked, "{}", p);
            }
        }
    }
}

/// A node with more literal children than are compared in turn is looked
/// up by hash: both ways find what the regexes match.
#[test]
fn wide_and_narrow_nodes_find_the_same() {
    for width in [FEW - 1, FEW, FEW + 1, 4 * FEW] {
        let mut patterns: Vec<PathPattern> = (0..width)
            .map(|i| t(&format!("/v1/Seg{i}/{{x}}"), i % 2 == 0))
            .collect();
        patterns.push(t("/v1/{y}/users", true));
        let idx = index(&patterns);
        for i in 0..=width {
            for path in [
                format!("/v1/Seg{i}/a"),
                format!("/v1/seg{i}/users"),
                format!("/v1/SEG{i}/a/b"),
            ] {
                assert_eq!(
                    idx.candidates(&path),
                    by_regex(&patterns, &path),
                    "{width} {path}"
                );
            }
        }
    }
}
