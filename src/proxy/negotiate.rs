//! Content negotiation by `Accept` with q-values (RFC 9110 §12.5.1).

/// The formats the proxy can render a local response in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/problem+json` (RFC 9457).
    Json,
    /// A self-contained HTML page.
    Html,
    /// `text/plain`.
    Text,
}

/// The media types the proxy renders, in the order [`Prefs`] keeps them.
const MEDIA: [&str; 4] = [
    "application/json",
    "application/problem+json",
    "text/html",
    "text/plain",
];
/// [`MEDIA`] as type and subtype.
const SPLIT: [(&str, &str); 4] = [
    ("application", "json"),
    ("application", "problem+json"),
    ("text", "html"),
    ("text", "plain"),
];

/// What an `Accept` header says of the media types the proxy renders,
/// read in one pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prefs {
    /// The quality of each of [`MEDIA`], from its most specific range.
    q: [f32; 4],
    /// `application/problem+json` is listed by name.
    problem_listed: bool,
}

/// An `Accept` value as text when it is one of the values API clients
/// and tools send most (a media type the proxy renders, or `*/*`):
/// compared as bytes, without reading them as UTF-8 first.
pub fn common(accept: &[u8]) -> Option<&'static str> {
    MEDIA
        .iter()
        .chain(&["*/*"])
        .find(|m| m.as_bytes() == accept)
        .copied()
}

impl Prefs {
    /// Reads `accept`; every type has quality 1 without one.
    pub fn of(accept: Option<&str>) -> Prefs {
        let only = |i: usize| {
            let mut q = [0.0; 4];
            q[i] = 1.0;
            Prefs {
                q,
                problem_listed: i == 1,
            }
        };
        // The values API clients and tools send most (see `common`), read
        // without parsing.
        let accept = match accept {
            None | Some("*/*") => {
                return Prefs {
                    q: [1.0; 4],
                    problem_listed: false,
                }
            }
            Some(a) => match MEDIA.iter().position(|m| *m == a) {
                Some(i) => return only(i),
                None => a,
            },
        };
        let mut best: [Option<(u8, f32)>; 4] = [None; 4];
        let mut problem_listed = false;
        for range in accept.split(',') {
            let (name, params) = range.split_once(';').unwrap_or((range, ""));
            let name = name.trim();
            let (rtype, rsub) = name.split_once('/').unwrap_or((name, ""));
            let mut q = None;
            for (i, (mtype, msub)) in SPLIT.iter().enumerate() {
                let specificity =
                    if rtype.eq_ignore_ascii_case(mtype) && rsub.eq_ignore_ascii_case(msub) {
                        3
                    } else if rtype.eq_ignore_ascii_case(mtype) && rsub == "*" {
                        2
                    } else if rtype == "*" && rsub == "*" {
                        1
                    } else {
                        continue;
                    };
                if i == 1 && specificity == 3 {
                    problem_listed = true;
                }
                let q = *q.get_or_insert_with(|| {
                    params
                        .split(';')
                        .filter_map(|p| p.trim().split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                        .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                        .map_or(1.0, |q| q.clamp(0.0, 1.0))
                });
                if best[i].is_none_or(|(s, _)| specificity > s) {
                    best[i] = Some((specificity, q));
                }
            }
        }
        Prefs {
            q: best.map(|b| b.map_or(0.0, |(_, q)| q)),
            problem_listed,
        }
    }

    /// The format the client prefers; ties go to JSON, then HTML.
    pub fn format(&self) -> Format {
        let [json, problem, html, text] = self.q;
        let json = json.max(problem);
        if json >= html && json >= text && json > 0.0 {
            Format::Json
        } else if html >= text && html > 0.0 {
            Format::Html
        } else if text > 0.0 {
            Format::Text
        } else {
            Format::Json
        }
    }

    /// Whether the client asked for problem details explicitly: it lists
    /// `application/problem+json`, at least as high as `application/json`.
    pub fn problem_asked(&self) -> bool {
        self.problem_listed && self.q[1] >= self.q[0]
    }
}

/// The client's quality for one of the media types the proxy renders
/// (0 for others), from the most specific matching range in `accept`;
/// 1.0 when there is no `Accept` header.
pub fn quality(accept: Option<&str>, media: &str) -> f32 {
    let prefs = Prefs::of(accept);
    MEDIA
        .iter()
        .position(|m| *m == media)
        .map_or(0.0, |i| prefs.q[i])
}

/// Picks the format the client prefers; ties go to JSON, then HTML.
pub fn negotiate(accept: Option<&str>) -> Format {
    Prefs::of(accept).format()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_values_read_as_the_text_they_are() {
        for v in MEDIA.iter().chain(&["*/*"]) {
            assert_eq!(common(v.as_bytes()), Some(*v));
        }
        for other in ["application/JSON", "text/html ", "*/*;q=1", ""] {
            assert_eq!(common(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn picks_by_q_value() {
        assert_eq!(negotiate(None), Format::Json);
        assert_eq!(negotiate(Some("*/*")), Format::Json);
        assert_eq!(negotiate(Some("application/json")), Format::Json);
        assert_eq!(
            negotiate(Some(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            Format::Html
        );
        assert_eq!(
            negotiate(Some("text/plain, application/json;q=0.5")),
            Format::Text
        );
        assert_eq!(
            negotiate(Some("text/*;q=0.9, application/json;q=0.1")),
            Format::Html
        );
        assert_eq!(negotiate(Some("image/png")), Format::Json);
        assert_eq!(
            negotiate(Some("application/json;q=0, text/html")),
            Format::Html
        );
    }

    #[test]
    fn most_specific_range_wins() {
        assert_eq!(
            quality(Some("text/*;q=0.2, text/html;q=0.7"), "text/html"),
            0.7
        );
        assert_eq!(quality(Some("*/*;q=0.1"), "text/html"), 0.1);
        assert_eq!(quality(Some("text/html;level=1;q=0.4"), "text/html"), 0.4);
    }
}

#[cfg(test)]
mod shortcuts {
    use super::*;

    /// The values read without parsing give what parsing gives.
    #[test]
    fn shortcuts_agree_with_the_parse() {
        for v in [
            "*/*",
            "application/json",
            "application/problem+json",
            "text/html",
            "text/plain",
        ] {
            // A trailing space skips the shortcut, not the meaning.
            let parsed = Prefs::of(Some(&format!("{v} ")));
            assert_eq!(Prefs::of(Some(v)), parsed, "{v}");
        }
    }
}
