//! The reference model of a lenient backend: ASP.NET Core routing on IIS,
//! written from their documentation and from .NET's `Guid` source, not from
//! portalgate's code. Shared by the integration tests (`lenient.rs`) and the
//! cargo-fuzz target `lenient` (`fuzz/fuzz_targets/lenient.rs`).
//!
//! Methods and literals compare case-insensitively (with .NET's invariant
//! folding: long s, dotless i), segments are percent-decoded (an encoded `/`
//! stays inside its segment), IIS drops trailing dots and spaces and maps
//! fullwidth forms best-fit, zero-width characters are ignored, dot segments
//! are resolved and empty segments skipped, and the tenant is read by
//! `Guid.TryParse` (Unicode trim, N/D/B/P/X, `+`/`0x` group prefixes, white
//! space anywhere in X).

/// The protected routes of the Germany pack: method and template.
pub const PROTECTED: [(&str, &str); 5] = [
    ("POST", "/v1/customers/{tenant}/users"),
    ("PATCH", "/v1/customers/{tenant}/users/{user}"),
    ("DELETE", "/v1/customers/{tenant}/users/{user}"),
    (
        "POST",
        "/v1/customers/{tenant}/directoryroles/{role}/usermembers",
    ),
    (
        "DELETE",
        "/v1/customers/{tenant}/directoryroles/{role}/usermembers/{user}",
    ),
];

/// One character as IIS/.NET fold it; `None`: ignored.
fn fold(c: char) -> Option<char> {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0),
        '\u{017F}' => Some('s'),
        '\u{0131}' => Some('i'),
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => None,
        c => Some(c),
    }
}

fn decode(seg: &str) -> Option<String> {
    let b = seg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The segments the router matches, or `None` when the backend would
/// not route the path at all.
pub fn segments(path: &str) -> Option<Vec<String>> {
    if path.starts_with("//") {
        return None; // a network-path reference: another host
    }
    let mut out: Vec<String> = Vec::new();
    for raw in path.split('/').skip(1) {
        let seg: String = decode(raw)?.chars().filter_map(fold).collect();
        let seg = seg.trim_end_matches(['.', ' ']).to_string();
        match raw {
            "." => continue,
            ".." => {
                out.pop();
                continue;
            }
            _ => {}
        }
        if !seg.is_empty() {
            out.push(seg);
        }
    }
    Some(out)
}

/// `s` after a leading `0x` (either case), if it has one. Compared by
/// bytes: a group may hold any character, and byte 2 need not start one.
fn strip_0x(s: &str) -> Option<&str> {
    s.as_bytes()
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"))
        .then(|| &s[2..])
}

fn hex_group(s: &str, strict: bool) -> Option<u32> {
    let mut s = s;
    if !strict {
        s = s.strip_prefix('+').unwrap_or(s);
        s = strip_0x(s).unwrap_or(s);
    }
    let t = s.trim_start_matches('0');
    if t.len() > 8 || !t.bytes().all(|b| b.is_ascii_hexdigit()) || (strict && s.is_empty()) {
        return None;
    }
    Some(if t.is_empty() {
        0
    } else {
        u32::from_str_radix(t, 16).ok()?
    })
}

fn parse_d(s: &str) -> Option<u128> {
    if s.len() != 36 || !s.is_ascii() || [8, 13, 18, 23].iter().any(|&i| &s[i..i + 1] != "-") {
        return None;
    }
    let g = |a, b| hex_group(&s[a..b], false);
    Some(
        u128::from(g(0, 8)?) << 96
            | u128::from(g(9, 13)? & 0xffff) << 80
            | u128::from(g(14, 18)? & 0xffff) << 64
            | u128::from(g(19, 23)? & 0xffff) << 48
            | u128::from(g(24, 28)? & 0xffff) << 32
            | u128::from(hex_group(&s[28..36], true)?),
    )
}

/// `Guid.TryParse`.
pub fn guid(s: &str) -> Option<u128> {
    let s = s.trim_matches(char::is_whitespace);
    let n = s.len();
    if s.starts_with('(') || (s.starts_with('{') && s.contains('-')) {
        return (n == 38
            && s.is_ascii()
            && matches!(&s[37..], ")" | "}")
            && (s.starts_with('(') == s.ends_with(')')))
        .then(|| parse_d(&s[1..37]))
        .flatten();
    }
    if s.starts_with('{') {
        let c: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let body = c.strip_prefix('{')?.strip_suffix("}}")?;
        let (head, tail) = body.split_once(",{")?;
        let f: Vec<u32> = head
            .split(',')
            .chain(tail.split(','))
            .map(|x| {
                let x = strip_0x(x)?;
                hex_group(x, false)
            })
            .collect::<Option<_>>()?;
        if f.len() != 11 || f[3..].iter().any(|b| *b > 0xff) {
            return None;
        }
        let mut v = u128::from(f[0]) << 96
            | u128::from(f[1] & 0xffff) << 80
            | u128::from(f[2] & 0xffff) << 64;
        for (i, b) in f[3..].iter().enumerate() {
            v |= u128::from(*b) << (56 - 8 * i);
        }
        return Some(v);
    }
    if s.contains('-') {
        return parse_d(s);
    }
    (n == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

/// Whether the backend routes `method path` to a protected endpoint,
/// and for which tenant.
pub fn protected(method: &str, path: &str) -> Option<u128> {
    let segs = segments(path)?;
    PROTECTED.iter().find_map(|(m, template)| {
        if !m.eq_ignore_ascii_case(method) {
            return None;
        }
        let t: Vec<&str> = template.split('/').skip(1).collect();
        if t.len() != segs.len() {
            return None;
        }
        let mut tenant = None;
        for (want, got) in t.iter().zip(&segs) {
            match *want {
                "{tenant}" => tenant = Some(guid(got)?),
                w if w.starts_with('{') => {}
                w => {
                    if !w.eq_ignore_ascii_case(got) {
                        return None;
                    }
                }
            }
        }
        tenant
    })
}
