//! Path patterns: templates such as `/v1/customers/{tenant}/users/{user}`
//! and whole-path regexes, compiled to anchored regexes.
//!
//! Template syntax: literal segments, `{name}` for exactly one segment
//! (captured under `name`), and `**` for any number of segments (zero or
//! more). A trailing `/` on the request is accepted whether or not the
//! template has one. Literals can be compared ASCII-case-insensitively (the
//! Partner Center backend routes that way); captured values keep their case.
//!
//! Every compiled pattern is anchored (`^…$`): a pattern that matched a
//! substring would let `/x/v1/customers/…` or `/v1/customers/…/users/extra`
//! match where the operator did not mean it (Sozu anchors host patterns for
//! the same reason).

/// A path pattern as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// A template (see the module docs).
    Template {
        /// The template text.
        template: String,
        /// Compare literal segments ASCII-case-insensitively.
        case_insensitive: bool,
    },
    /// A regex that must match the whole canonical path.
    Regex(String),
}

/// Why a pattern cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The template does not start with `/`.
    #[error("a path template must start with '/'")]
    NotAbsolute,
    /// A `{` without its `}` or a name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid placeholder {0:?}: write {{name}} with letters, digits and '_'")]
    BadPlaceholder(String),
    /// The same placeholder twice.
    #[error("placeholder {{{0}}} appears twice")]
    DuplicatePlaceholder(String),
    /// A placeholder or `**` mixed with text inside one segment.
    #[error("segment {0:?} mixes a placeholder or '**' with text; use a whole segment")]
    MixedSegment(String),
    /// The regex does not compile.
    #[error("invalid regex: {0}")]
    Regex(String),
}

impl PathPattern {
    /// The anchored regex source for this pattern, and its capture names.
    pub fn to_regex(&self) -> Result<(String, Vec<String>), PatternError> {
        match self {
            PathPattern::Regex(r) => {
                let anchored = format!("^(?:{r})$");
                let compiled =
                    regex::Regex::new(&anchored).map_err(|e| PatternError::Regex(e.to_string()))?;
                let names = compiled
                    .capture_names()
                    .flatten()
                    .map(str::to_owned)
                    .collect();
                Ok((anchored, names))
            }
            PathPattern::Template {
                template,
                case_insensitive,
            } => template_regex(template, *case_insensitive),
        }
    }
}

/// A template compiled to whole-segment steps, for reading the captures of
/// a path the pattern's regex already matched without running a regex
/// again. Only templates whose `**` (if any) is the last segment have one;
/// the others are read by their regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    steps: Vec<Step>,
    /// Ends in `**`: any number of further segments.
    open: bool,
    case_insensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Literal(String),
    /// The index of the capture's name.
    Capture(usize),
}

impl Segments {
    /// The steps of a valid template, if its shape allows them.
    pub fn of(pattern: &PathPattern) -> Option<Segments> {
        let (segs, open, case_insensitive) = template_segments(pattern)?;
        let mut names = 0;
        let mut steps = Vec::with_capacity(segs.len());
        for seg in segs {
            if seg.contains("**") {
                return None;
            }
            if seg.starts_with('{') {
                steps.push(Step::Capture(names));
                names += 1;
            } else {
                steps.push(Step::Literal(seg.to_owned()));
            }
        }
        Some(Segments {
            steps,
            open,
            case_insensitive,
        })
    }

    /// The captured segments of `path` (a canonical path), in the order of
    /// the template's names; `None` when the path does not match.
    pub fn captures<'p>(&self, path: &'p str, out: &mut Vec<&'p str>) -> Option<()> {
        if !path.starts_with('/') {
            return None;
        }
        with_segments(path, |segs| self.captures_of(segs, out))
    }

    /// [`Segments::captures`] of a path already split by [`segments`].
    pub fn captures_of<'p>(&self, segs: &[&'p str], out: &mut Vec<&'p str>) -> Option<()> {
        self.captures_with(segs, |v| out.push(v))
    }

    /// The captured segments of `segs`, which the rule index already
    /// matched to this template: each capture by its position, no literal
    /// compared again.
    pub fn captures_of_match<'p>(&self, segs: &[&'p str], mut out: impl FnMut(&'p str)) {
        for (step, seg) in self.steps.iter().zip(segs) {
            if let Step::Capture(_) = step {
                out(seg);
            }
        }
    }

    /// [`Segments::captures_of`], each value handed to `out` in order (some
    /// may be handed before the path turns out not to match).
    pub fn captures_with<'p>(&self, segs: &[&'p str], mut out: impl FnMut(&'p str)) -> Option<()> {
        if segs.len() < self.steps.len() || (!self.open && segs.len() > self.steps.len()) {
            return None;
        }
        for (step, seg) in self.steps.iter().zip(segs) {
            if seg.is_empty() {
                return None;
            }
            match step {
                Step::Literal(l) if self.case_insensitive => {
                    if !crate::ascii::eq_ignore_case(seg.as_bytes(), l.as_bytes()) {
                        return None;
                    }
                }
                Step::Literal(l) => {
                    if seg != l {
                        return None;
                    }
                }
                Step::Capture(_) => out(seg),
            }
        }
        segs[self.steps.len()..]
            .iter()
            .all(|s| !s.is_empty())
            .then_some(())
    }
}

/// A template's segments (without a trailing `**`), whether it ends in
/// `**`, and whether its literals compare case-insensitively; `None` for
/// a regex or a template that does not start with `/`.
pub fn template_segments(pattern: &PathPattern) -> Option<(Vec<&str>, bool, bool)> {
    let PathPattern::Template {
        template,
        case_insensitive,
    } = pattern
    else {
        return None;
    };
    let body = template.strip_prefix('/')?;
    let body = body.strip_suffix('/').unwrap_or(body);
    let mut segs: Vec<&str> = if body.is_empty() {
        Vec::new()
    } else {
        body.split('/').collect()
    };
    let open = segs.last() == Some(&"**");
    if open {
        segs.pop();
    }
    Some((segs, open, *case_insensitive))
}

/// The segments of a canonical path without the leading and a trailing
/// `/`, split without a searcher (they are short).
pub fn segments<'p>(path: &'p str, out: &mut Vec<&'p str>) {
    each_segment(path, |s| out.push(s));
}

/// Segments a path may have for [`with_segments`] to keep them on the
/// stack (every route a portal serves has far fewer).
const STACK_SEGMENTS: usize = 32;

/// Calls `f` with the [`segments`] of `path`: on the stack for up to
/// 32 of them (`STACK_SEGMENTS`), so that judging a request allocates
/// nothing for them; in a vector for a longer path.
pub fn with_segments<'p, R>(path: &'p str, f: impl FnOnce(&[&'p str]) -> R) -> R {
    let mut stack = [""; STACK_SEGMENTS];
    let mut n = 0;
    each_segment(path, |s| {
        if let Some(slot) = stack.get_mut(n) {
            *slot = s;
        }
        n += 1;
    });
    match stack.get(..n) {
        Some(fit) => f(fit),
        None => {
            let mut segs = Vec::with_capacity(n);
            segments(path, &mut segs);
            f(&segs)
        }
    }
}

fn each_segment<'p>(path: &'p str, mut out: impl FnMut(&'p str)) {
    let b = path.as_bytes();
    let end = if b.len() > 1 && b[b.len() - 1] == b'/' {
        b.len() - 1
    } else {
        b.len()
    };
    if end <= 1 {
        return;
    }
    let mut start = 1;
    crate::ascii::each_position(&b[1..end], b'/', |i| {
        let i = i + 1;
        out(&path[start..i]);
        start = i + 1;
    });
    out(&path[start..end]);
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn template_regex(t: &str, ci: bool) -> Result<(String, Vec<String>), PatternError> {
    let Some(body) = t.strip_prefix('/') else {
        return Err(PatternError::NotAbsolute);
    };
    let body = body.strip_suffix('/').unwrap_or(body);
    let mut re = String::from("^");
    let mut names: Vec<String> = Vec::new();
    if body.is_empty() {
        re.push_str("/?$");
        return Ok((re, names));
    }
    for seg in body.split('/') {
        if seg == "**" {
            // Zero or more whole segments.
            re.push_str("(?:/[^/]+)*");
        } else if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !valid_name(name) {
                return Err(PatternError::BadPlaceholder(seg.to_owned()));
            }
            if names.iter().any(|n| n == name) {
                return Err(PatternError::DuplicatePlaceholder(name.to_owned()));
            }
            re.push_str(&format!("/(?P<{name}>[^/]+)"));
            names.push(name.to_owned());
        } else if seg.contains('{') || seg.contains('}') {
            // "{x" is a broken placeholder; "a{x}" is text around one.
            return Err(if seg.starts_with('{') {
                PatternError::BadPlaceholder(seg.to_owned())
            } else {
                PatternError::MixedSegment(seg.to_owned())
            });
        } else if seg.contains("**") {
            return Err(PatternError::MixedSegment(seg.to_owned()));
        } else {
            re.push('/');
            let lit = regex::escape(seg);
            if ci {
                re.push_str(&format!("(?i:{lit})"));
            } else {
                re.push_str(&lit);
            }
        }
    }
    re.push_str("/?$");
    Ok((re, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(p: &PathPattern, path: &str) -> Option<Vec<(String, String)>> {
        let (src, names) = p.to_regex().unwrap();
        let re = regex::Regex::new(&src).unwrap();
        re.captures(path).map(|c| {
            names
                .iter()
                .map(|n| (n.clone(), c.name(n).map_or("", |m| m.as_str()).to_owned()))
                .collect()
        })
    }

    fn t(s: &str, ci: bool) -> PathPattern {
        PathPattern::Template {
            template: s.into(),
            case_insensitive: ci,
        }
    }

    #[test]
    fn templates_capture_whole_segments_and_are_anchored() {
        let p = t("/v1/customers/{tenant}/users/{user}", true);
        let caps = matches(&p, "/v1/Customers/AbC/USERS/u1").unwrap();
        assert_eq!(
            caps,
            [
                ("tenant".into(), "AbC".into()),
                ("user".into(), "u1".into())
            ]
        );
        assert!(matches(&p, "/v1/customers/abc/users/u1/").is_some());
        assert!(matches(&p, "/v1/customers/abc/users/u1/licenses").is_none());
        assert!(matches(&p, "/x/v1/customers/abc/users/u1").is_none());
        assert!(matches(&p, "/v1/customers/abc/users").is_none());
        assert!(matches(
            &t("/v1/customers/{tenant}/users", false),
            "/v1/Customers/a/users"
        )
        .is_none());
    }

    #[test]
    fn segments_on_the_stack_or_not_are_the_same() {
        let long = "/a".repeat(STACK_SEGMENTS + 5);
        for path in [
            "/",
            "/x",
            "/v1/customers/c1/users/",
            "//a//b",
            long.as_str(),
        ] {
            let mut expected = Vec::new();
            segments(path, &mut expected);
            assert_eq!(with_segments(path, <[&str]>::to_vec), expected, "{path}");
        }
        assert_eq!(with_segments(&long, <[&str]>::len), STACK_SEGMENTS + 5);
    }

    #[test]
    fn double_star_matches_any_number_of_segments() {
        let p = t("/dashboard/**", true);
        for ok in [
            "/dashboard",
            "/dashboard/",
            "/dashboard/account/usermanagement",
        ] {
            assert!(matches(&p, ok).is_some(), "{ok}");
        }
        assert!(matches(&p, "/dashboards").is_none());
        let mid = t("/v1/**/users", false);
        assert!(matches(&mid, "/v1/users").is_some());
        assert!(matches(&mid, "/v1/customers/x/users").is_some());
    }

    #[test]
    fn literals_are_escaped() {
        let p = t("/v1/a.b", false);
        assert!(matches(&p, "/v1/a.b").is_some());
        assert!(matches(&p, "/v1/aXb").is_none());
    }

    #[test]
    fn regexes_must_match_the_whole_path() {
        let p = PathPattern::Regex("/v1/customers/(?P<tenant>[^/]+)/users".into());
        assert!(matches(&p, "/v1/customers/x/users").is_some());
        assert!(matches(&p, "/v1/customers/x/users/y").is_none());
        assert!(matches(&p, "/a/v1/customers/x/users").is_none());
        assert!(matches!(
            PathPattern::Regex("(".into()).to_regex(),
            Err(PatternError::Regex(_))
        ));
    }

    #[test]
    fn segments_read_what_the_regex_reads() {
        let patterns = [
            t("/v1/customers/{tenant}/users/{user}", true),
            t("/v1/customers/{tenant}/users", false),
            t("/dashboard/customers/{tenant}/users/**", true),
            t("/dashboard/**", true),
            t("/", true),
            t("/{a}/", true),
        ];
        let paths = [
            "/v1/customers/AbC/USERS/u1",
            "/v1/customers/abc/users/u1/",
            "/v1/customers/abc/users/u1/licenses",
            "/v1/customers/abc/users",
            "/v1/Customers/a/users",
            "/dashboard/customers/x/users",
            "/dashboard/customers/x/users/",
            "/dashboard/customers/x/Users/a/b",
            "/dashboard",
            "/dashboards",
            "/",
            "/a",
            "/a/",
        ];
        for p in &patterns {
            let segments = Segments::of(p).expect("a template of this shape");
            for path in paths {
                let by_regex = matches(p, path)
                    .map(|caps| caps.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
                let mut got = Vec::new();
                let by_segments = segments
                    .captures(path, &mut got)
                    .map(|()| got.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                assert_eq!(by_segments, by_regex, "{p:?} on {path}");
            }
        }
        assert_eq!(Segments::of(&t("/v1/**/users", false)), None);
        assert_eq!(Segments::of(&PathPattern::Regex("/x".into())), None);
    }

    #[test]
    fn bad_templates_are_errors() {
        assert_eq!(
            t("v1", false).to_regex().unwrap_err(),
            PatternError::NotAbsolute
        );
        assert!(matches!(
            t("/v1/{1x}", false).to_regex(),
            Err(PatternError::BadPlaceholder(_))
        ));
        assert!(matches!(
            t("/v1/{x", false).to_regex(),
            Err(PatternError::BadPlaceholder(_))
        ));
        assert!(matches!(
            t("/v1/a{x}", false).to_regex(),
            Err(PatternError::MixedSegment(_))
        ));
        assert!(matches!(
            t("/v1/a**", false).to_regex(),
            Err(PatternError::MixedSegment(_))
        ));
        assert_eq!(
            t("/v1/{x}/{x}", false).to_regex().unwrap_err(),
            PatternError::DuplicatePlaceholder("x".into())
        );
    }
}
