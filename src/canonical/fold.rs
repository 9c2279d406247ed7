//! The path as a lenient backend reads it, for judging: IIS and ASP.NET on
//! Windows strip trailing dots (and spaces) from segments, map fullwidth
//! forms onto ASCII (best fit), ignore zero-width characters, and compare
//! literals with a case folding that takes the long s for `s` and the
//! dotless i for `i`. A segment spelled that way reaches the handler of the
//! plain literal, so the rules must see the plain literal too.
//!
//! [`fold`] returns that reading when it differs from the canonical path
//! (`None` for the common, plain ASCII path, found without decoding), or
//! refuses a segment that folds to nothing or to a dot segment.

use super::PathRejection;

/// Zero-width and invisible formatting characters a lenient reader drops.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// One character as a lenient reader folds it.
fn fold_char(c: char) -> Option<char> {
    match c {
        // Fullwidth ASCII variants (NFKC and Windows best-fit agree).
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21),
        '\u{3000}' => Some(' '),
        '\u{017F}' => Some('s'),
        '\u{0131}' => Some('i'),
        '\u{212A}' => Some('k'),
        c if invisible(c) => None,
        c => Some(c),
    }
}

/// Whether the canonical path might fold: it has an escape (non-ASCII is
/// escaped in canonical form) or a segment ending in `.`.
fn may_fold(path: &str) -> bool {
    let b = path.as_bytes();
    // One search for both (most paths have neither).
    memchr::memchr2_iter(b'%', b'.', b)
        .any(|i| b[i] == b'%' || b.get(i + 1).is_none_or(|&n| n == b'/'))
}

/// The canonical `path` as a lenient backend reads it, when that differs.
pub fn fold(path: &str) -> Result<Option<String>, PathRejection> {
    if !may_fold(path) {
        return Ok(None);
    }
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.is_empty() {
            continue;
        }
        // Canonical form: escapes are well-formed and decode to UTF-8.
        let text = super::percent_decode(seg).ok_or(PathRejection::InvalidUtf8)?;
        let folded: String = text.chars().filter_map(fold_char).collect();
        let folded = folded.trim_end_matches(['.', ' ']);
        if matches!(folded, "" | "." | "..") {
            return Err(PathRejection::FoldsAway);
        }
        for b in folded.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok((out != path).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_not_touched() {
        for p in ["/v1/customers/x/users", "/", "/v1/a.b/c", "/v1/.well-known"] {
            assert_eq!(fold(p), Ok(None), "{p}");
        }
    }

    #[test]
    fn lenient_spellings_fold_onto_the_literal() {
        for (p, want) in [
            ("/v1/%EF%BD%83ustomers/x/users", "/v1/customers/x/users"),
            ("/v1/customers/x/u%C5%BFers", "/v1/customers/x/users"),
            ("/v1/customers/x/users.", "/v1/customers/x/users"),
            ("/v1/customers./x/users..", "/v1/customers/x/users"),
            ("/v1/customers/x/us%E2%80%8Bers", "/v1/customers/x/users"),
            ("/v1/customers/x/%EF%BB%BFusers", "/v1/customers/x/users"),
            ("/v1/customers/x/users%20.", "/v1/customers/x/users"),
            ("/v1/customers/x/usersd%C4%B1", "/v1/customers/x/usersdi"),
            ("/v1/caf%C3%A9", "/v1/caf%C3%A9"),
        ] {
            let got = fold(p).unwrap().unwrap_or_else(|| p.to_string());
            assert_eq!(got, want, "{p}");
        }
    }

    #[test]
    fn segments_that_fold_away_are_refused() {
        for p in ["/v1/%E2%80%8B/x", "/v1/.../x", "/v1/%20./x"] {
            assert_eq!(fold(p), Err(PathRejection::FoldsAway), "{p}");
        }
    }
}
