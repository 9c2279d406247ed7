//! Tenant ids are GUIDs, parsed as values so that every spelling the
//! backend accepts maps to one id.
//!
//! Partner Center runs on ASP.NET, whose `Guid.Parse` trims whitespace and
//! accepts five formats: `N` (32 hex digits), `D` (hyphenated 8-4-4-4-12),
//! `B` (`D` in braces), `P` (`D` in parentheses) and `X`
//! (`{0x........,0x....,0x....,{0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..}}`),
//! hex digits in any case. The id may also arrive percent-encoded in a path
//! segment or header (`%20` around it, `%41` for a hex digit), so escapes are
//! decoded first. A value that looks like a GUID but is none of these
//! formats is an error, so a caller can fail closed instead of treating it
//! as "some other tenant".

use std::fmt;

/// A tenant (GUID) as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(u128);

/// Why a value is not a tenant id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    /// Not GUID-shaped at all (e.g. a domain name): not a tenant id.
    #[error("not a GUID")]
    NotAGuid,
    /// GUID-shaped but in no format the backend accepts: ambiguous.
    #[error("a malformed GUID")]
    Malformed,
}

impl TenantId {
    /// The id from its 128-bit value.
    pub const fn from_u128(v: u128) -> Self {
        TenantId(v)
    }

    /// Parses any accepted spelling (see the module docs).
    pub fn parse(raw: &str) -> Result<TenantId, TenantIdError> {
        let decoded = percent_decode(raw).ok_or(TenantIdError::Malformed)?;
        let s = decoded.trim_matches(|c: char| c.is_ascii_whitespace());
        if let Some(v) = parse_nbdp(s).or_else(|| parse_x(s)) {
            return Ok(TenantId(v));
        }
        if looks_like_guid(s) {
            Err(TenantIdError::Malformed)
        } else {
            Err(TenantIdError::NotAGuid)
        }
    }
}

impl TenantId {
    /// The lowercase hyphenated (`D`) form, without the formatting
    /// machinery (it is written for every decision record).
    pub fn to_d(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            *slot = HEX[((self.0 >> (124 - 4 * nibble)) & 0xf) as usize];
            nibble += 1;
        }
        out
    }
}

impl fmt::Display for TenantId {
    /// Lowercase hyphenated (`D`) form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.to_d();
        // Every byte of `to_d` is ASCII.
        f.write_str(std::str::from_utf8(&d).unwrap_or_default())
    }
}

impl std::str::FromStr for TenantId {
    type Err = TenantIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::parse(s)
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(std::borrow::Cow::Borrowed(raw));
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

fn hex_value(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// The `D` form (`8-4-4-4-12` hex digits), the one on every request path,
/// without allocating; `None` for anything else.
fn parse_d(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = (c as char).to_digit(16)?;
        v = v << 4 | u128::from(d);
    }
    Some(v)
}

/// `N`, `D`, `B` and `P`.
fn parse_nbdp(s: &str) -> Option<u128> {
    if let Some(v) = parse_d(s) {
        return Some(v);
    }
    let inner = match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(b'{'), Some(b'}')) | (Some(b'('), Some(b')')) => &s[1..s.len() - 1],
        _ => s,
    };
    if inner.len() == 32 && inner.len() == s.len() {
        return hex_value(inner);
    }
    let groups: Vec<&str> = inner.split('-').collect();
    if groups.len() != 5 || groups.iter().map(|g| g.len()).ne([8, 4, 4, 4, 12]) {
        return None;
    }
    hex_value(&groups.concat())
}

/// `X`: `{0xAAAAAAAA,0xBBBB,0xCCCC,{0xDD,0xDD,0xEE,0xEE,0xEE,0xEE,0xEE,0xEE}}`.
/// .NET allows 1..=8, 1..=4, 1..=4 and 1..=2 hex digits per field.
fn parse_x(s: &str) -> Option<u128> {
    let body = s.strip_prefix('{')?.strip_suffix("}}")?;
    let (head, tail) = body.split_once(",{")?;
    let head: Vec<&str> = head.split(',').collect();
    let tail: Vec<&str> = tail.split(',').collect();
    if head.len() != 3 || tail.len() != 8 {
        return None;
    }
    let field = |f: &str, max: usize| -> Option<u128> {
        let digits = f.strip_prefix("0x").or_else(|| f.strip_prefix("0X"))?;
        if digits.len() > max {
            return None;
        }
        hex_value(digits)
    };
    let mut v = field(head[0], 8)? << 96 | field(head[1], 4)? << 80 | field(head[2], 4)? << 64;
    for (i, byte) in tail.iter().enumerate() {
        v |= field(byte, 2)? << (56 - 8 * i);
    }
    Some(v)
}

/// GUID-shaped: only hex digits and GUID punctuation, with enough hex
/// digits that it was meant as one.
fn looks_like_guid(s: &str) -> bool {
    let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
    let shaped = s.bytes().all(|b| {
        b.is_ascii_hexdigit() || matches!(b, b'-' | b'{' | b'}' | b'(' | b')' | b',' | b'x' | b'X')
    });
    shaped && hex >= 16 || (hex >= 24 && s.bytes().filter(|b| *b == b'-').count() >= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

    #[test]
    fn every_accepted_spelling_is_the_same_id() {
        let id = TenantId::parse(DE).unwrap();
        assert_eq!(id.to_string(), DE);
        for spelling in [
            "0A1B2C3D-0000-4000-8000-00000000DE01",
            "0a1b2c3d00004000800000000000de01",
            "{0a1b2c3d-0000-4000-8000-00000000de01}",
            "(0a1b2c3d-0000-4000-8000-00000000DE01)",
            "  0a1b2c3d-0000-4000-8000-00000000de01\t",
            "%200a1b2c3d-0000-4000-8000-00000000de01%20",
            "%30a1b2c3d-0000-4000-8000-00000000de01",
            "0a1b2c3d-0000-4000-8000-00000000d%6501",
            "{0x0a1b2c3d,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}",
            "{0xa1b2c3d,0x0,0x4000,{0x80,0x0,0x0,0x0,0x0,0x0,0xDE,0x1}}",
        ] {
            assert_eq!(TenantId::parse(spelling), Ok(id), "{spelling:?}");
        }
    }

    #[test]
    fn guid_like_but_malformed_is_an_error() {
        for bad in [
            "0a1b2c3d-0000-4000-8000-00000000de0g",
            "0a1b2c3d-0000-4000-8000-00000000de011",
            "0a1b2c3d-00004-000-8000-00000000de01",
            "{0a1b2c3d-0000-4000-8000-00000000de01",
            "{0a1b2c3d-0000-4000-8000-00000000de01)",
            "0a1b2c3d-0000-4000-8000-00000000de01}",
            "0a1b2c3d0000400080000000000de01",
            "0a1b2c3d000040008000000000000de01",
            "0a1b2c3d--0000-4000-8000-00000000de01",
            "{0x0a1b2c3d,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde}}",
            "{0x0a1b2c3d0,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}",
            "0a1b2c3d-0000-4000-8000-00000000de01%",
            "0a1b2c3d-0000-4000-8000-00000000%ZZ01",
        ] {
            assert_eq!(
                TenantId::parse(bad),
                Err(TenantIdError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn other_values_are_not_guids() {
        for other in ["contoso.onmicrosoft.com", "me", "", "users", "12345"] {
            assert_eq!(
                TenantId::parse(other),
                Err(TenantIdError::NotAGuid),
                "{other:?}"
            );
        }
    }
}
