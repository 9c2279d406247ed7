//! Tenant ids are GUIDs, parsed as values so that every spelling the
//! backend accepts maps to one id.
//!
//! Partner Center runs on ASP.NET, whose `Guid.TryParse` this module follows
//! rule for rule (from .NET's `Guid.cs`):
//!
//! - the value is trimmed of Unicode white space (`char.IsWhiteSpace`, which
//!   is Rust's `char::is_whitespace`: NBSP, ideographic space, ...);
//! - its first character picks the format: `(` is `P`, `{` with a `-` is
//!   `B`, `{` without is `X`, otherwise a `-` means `D` and none means `N`;
//! - `N` is 32 hex digits, `D` is `8-4-4-4-12`, `B` and `P` are `D` in
//!   braces or parentheses;
//! - in `D` (and so `B`, `P`) the first four groups and the first half of the
//!   last one may each start with `+` and then `0x` (`+a1b2c3d-...`,
//!   `0x01b2c3-...`), which .NET's lenient hex reader skips;
//! - `X` (`{0xAAAAAAAA,0xBBBB,0xCCCC,{0xDD,...8 bytes}}`) has every white
//!   space character removed first, anywhere; each field is `0x` and up to 8
//!   significant hex digits (leading zeros are free, `+`/`0x` may follow the
//!   prefix again); the 16-bit fields keep their low 16 bits, the bytes must
//!   be at most 0xFF;
//! - hex digits are ASCII only (`HexConverter.FromChar`).
//!
//! The id may also arrive percent-encoded in a path segment (`%20` around
//! it, `%41` for a hex digit), so escapes are decoded first.
//!
//! A value that is not a GUID to .NET is one of two things. A plain token
//! (ASCII letters, digits and `-._~@`, not GUID-shaped: a domain name, `me`)
//! is [`TenantIdError::NotAGuid`]: no tenant. Anything else (non-ASCII
//! characters, white space or controls inside, GUID punctuation, a
//! near-GUID) is [`TenantIdError::Malformed`], so that a caller fails closed
//! instead of treating a spelling some other reader might take for a GUID
//! as "no tenant".

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

    /// The 128-bit value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// [`TenantId::parse`] of bytes: the plain `D` form is read without
    /// first checking that the bytes are UTF-8 (bytes that are not are
    /// malformed).
    pub fn parse_bytes(raw: &[u8]) -> Result<TenantId, TenantIdError> {
        match parse_d_strict(raw) {
            Some(v) => Ok(TenantId(v)),
            None => parse_other(std::str::from_utf8(raw).map_err(|_| TenantIdError::Malformed)?),
        }
    }

    /// Parses any spelling `Guid.TryParse` accepts (see the module docs).
    pub fn parse(raw: &str) -> Result<TenantId, TenantIdError> {
        // The common case, a plain `D`, without decoding or trimming.
        match parse_d_strict(raw.as_bytes()) {
            Some(v) => Ok(TenantId(v)),
            None => parse_other(raw),
        }
    }
}

/// Every spelling but the plain `D` form (which was tried first).
fn parse_other(raw: &str) -> Result<TenantId, TenantIdError> {
    let decoded = crate::canonical::percent_decode(raw).ok_or(TenantIdError::Malformed)?;
    let s = decoded.trim_matches(char::is_whitespace);
    if let Some(v) = dotnet_try_parse(s) {
        return Ok(TenantId(v));
    }
    if is_plain_token(s) && !looks_like_guid(s) {
        Err(TenantIdError::NotAGuid)
    } else {
        Err(TenantIdError::Malformed)
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

/// The `D` form exactly (`8-4-4-4-12` ASCII hex digits), without
/// allocating: the spelling on nearly every request.
fn parse_d_strict(b: &[u8]) -> Option<u128> {
    if b.len() != 36 || [b[8], b[13], b[18], b[23]] != [b'-'; 4] {
        return None;
    }
    // Eight digits at a time: the groups of four are read in pairs.
    let pair = |a: &[u8], b: &[u8]| {
        let mut g = [0; 8];
        g[..4].copy_from_slice(a);
        g[4..].copy_from_slice(b);
        g
    };
    let eight = [
        [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]],
        pair(&b[9..13], &b[14..18]),
        pair(&b[19..23], &b[24..28]),
        [b[28], b[29], b[30], b[31], b[32], b[33], b[34], b[35]],
    ];
    let mut v = 0u128;
    for g in eight {
        v = v << 32 | u128::from(hex8(g)?);
    }
    Some(v)
}

/// Eight ASCII hex digits (either case), first the most significant, read
/// as one word: each byte is checked to be a digit or a letter `a`–`f`
/// (after folding case) by carry-free byte arithmetic, and the nibbles are
/// packed by three shifts. `None` when any byte is no hex digit.
fn hex8(g: [u8; 8]) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = u64::from_be_bytes(g);
    if x & HIGH != 0 {
        return None;
    }
    // For bytes below 0x80: the high bit of each byte of the result is
    // set where the byte lies in `lo..=hi` (no sum or difference crosses
    // into the next byte).
    let within = |x: u64, lo: u8, hi: u8| {
        let at_least = x + ONES * u64::from(0x80 - lo);
        let at_most = ONES * u64::from(0x80 + hi) - x;
        at_least & at_most & HIGH
    };
    let digits = within(x, b'0', b'9');
    let letters = within(x | (ONES * 0x20), b'a', b'f');
    if digits | letters != HIGH {
        return None;
    }
    let nibbles = (x & (ONES * 0x0f)) + (letters >> 7) * 9;
    let v = (nibbles | nibbles >> 4) & 0x00ff_00ff_00ff_00ff;
    let v = (v | v >> 8) & 0x0000_ffff_0000_ffff;
    let v = (v | v >> 16) & 0xffff_ffff;
    u32::try_from(v).ok()
}

fn hex_digit(c: u8) -> Option<u8> {
    let d = HEX_DIGITS[usize::from(c)];
    (d < 16).then_some(d)
}

/// Each byte's value as an ASCII hex digit (either case), 0xff for none,
/// for the spellings other than the plain `D` form.
static HEX_DIGITS: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// `Guid.TryParse` on an already trimmed value.
fn dotnet_try_parse(s: &str) -> Option<u128> {
    // Past the trim, success needs ASCII (hex digits and punctuation), and
    // `X` drops white space: nothing else can be part of a GUID.
    match s.as_bytes().first()? {
        b'(' => parse_wrapped(s, b'(', b')'),
        b'{' if s.contains('-') => parse_wrapped(s, b'{', b'}'),
        b'{' => parse_x(s),
        _ if s.contains('-') => parse_d(s.as_bytes()),
        _ => parse_n(s.as_bytes()),
    }
}

/// `B` and `P`: `D` inside one pair of delimiters.
fn parse_wrapped(s: &str, open: u8, close: u8) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 38 || b[0] != open || b[37] != close {
        return None;
    }
    parse_d(&b[1..37])
}

/// `N`: 32 ASCII hex digits.
fn parse_n(b: &[u8]) -> Option<u128> {
    if b.len() != 32 {
        return None;
    }
    b.iter()
        .try_fold(0u128, |v, &c| Some(v << 4 | u128::from(hex_digit(c)?)))
}

/// `D`: dashes at 8, 13, 18 and 23; the groups read by .NET's lenient hex
/// reader, except the last 8 digits, which are strict.
fn parse_d(b: &[u8]) -> Option<u128> {
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let a = lenient_hex(&b[0..8])?.0;
    let bb = lenient_hex(&b[9..13])?.0 & 0xffff;
    let c = lenient_hex(&b[14..18])?.0 & 0xffff;
    let de = lenient_hex(&b[19..23])?.0 & 0xffff;
    let fg = lenient_hex(&b[24..28])?.0 & 0xffff;
    let hijk = strict_hex(&b[28..36])?;
    Some(
        u128::from(a) << 96
            | u128::from(bb) << 80
            | u128::from(c) << 64
            | u128::from(de) << 48
            | u128::from(fg) << 32
            | u128::from(hijk),
    )
}

/// `uint.TryParse(.., AllowHexSpecifier)`: 1 to 8 ASCII hex digits, after
/// any leading zeros.
fn strict_hex(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let digits = b.iter().skip_while(|&&c| c == b'0').count();
    if digits > 8 {
        return None;
    }
    b.iter().try_fold(0u32, |v, &c| {
        Some(v.wrapping_mul(16) | u32::from(hex_digit(c)?))
    })
}

/// .NET's `Guid.TryParseHex`: an optional `+`, an optional `0x`, leading
/// zeros, then hex digits (none is zero). Returns the value and whether it
/// overflowed 32 bits (more than 8 significant digits).
fn lenient_hex(mut b: &[u8]) -> Option<(u32, bool)> {
    if let Some(rest) = b.strip_prefix(b"+") {
        b = rest;
    }
    if b.len() > 1 && b[0] == b'0' && b[1] | 0x20 == b'x' {
        b = &b[2..];
    }
    let mut v: u32 = 0;
    let mut digits = 0;
    for &c in b.iter().skip_while(|&&c| c == b'0') {
        v = v.wrapping_mul(16) | u32::from(hex_digit(c)?);
        digits += 1;
    }
    Some((v, digits > 8))
}

/// `X`: `{0xAAAAAAAA,0xBBBB,0xCCCC,{0xDD,0xDD,0xDD,0xDD,0xDD,0xDD,0xDD,0xDD}}`
/// after every white space character is removed.
fn parse_x(s: &str) -> Option<u128> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let body = compact.strip_prefix('{')?.strip_suffix("}}")?;
    let (head, tail) = body.split_once(",{")?;
    let head: Vec<&str> = head.split(',').collect();
    let tail: Vec<&str> = tail.split(',').collect();
    if head.len() != 3 || tail.len() != 8 {
        return None;
    }
    // Each field: the required `0x`, then the lenient reader; no overflow.
    let field = |f: &str| -> Option<u32> {
        let b = f.as_bytes();
        if b.len() < 3 || b[0] != b'0' || b[1] | 0x20 != b'x' {
            return None;
        }
        match lenient_hex(&b[2..])? {
            (_, true) => None,
            (v, false) => Some(v),
        }
    };
    let mut v = u128::from(field(head[0])?) << 96
        | u128::from(field(head[1])? & 0xffff) << 80
        | u128::from(field(head[2])? & 0xffff) << 64;
    for (i, byte) in tail.iter().enumerate() {
        let b = field(byte)?;
        if b > 0xff {
            return None;
        }
        v |= u128::from(b) << (56 - 8 * i);
    }
    Some(v)
}

/// ASCII letters, digits and `-._~@`: what a path segment or header that is
/// plainly not a GUID (a domain name, `me`) is made of.
fn is_plain_token(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@'))
}

/// GUID-shaped: only hex digits and GUID punctuation, with enough hex
/// digits that it was meant as one.
fn looks_like_guid(s: &str) -> bool {
    let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
    let shaped = s.bytes().all(|b| {
        b.is_ascii_hexdigit()
            || matches!(
                b,
                b'-' | b'{' | b'}' | b'(' | b')' | b',' | b'x' | b'X' | b'+'
            )
    });
    shaped && hex >= 16 || (hex >= 24 && s.bytes().filter(|b| *b == b'-').count() >= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

    #[test]
    fn the_strict_d_form_reads_every_digit_and_no_other_byte() {
        let want = u128::from_str_radix(&DE.replace('-', ""), 16).unwrap();
        assert_eq!(parse_d_strict(DE.as_bytes()), Some(want));
        assert_eq!(parse_d_strict(DE.to_uppercase().as_bytes()), Some(want));
        for i in 0..36 {
            for bad in [b'g', b'-', b' ', 0xc3] {
                let mut b = DE.as_bytes().to_vec();
                if b[i] == bad {
                    continue;
                }
                b[i] = bad;
                assert_eq!(parse_d_strict(&b), None, "{i} {bad}");
            }
            let mut b = DE.as_bytes().to_vec();
            if b[i] != b'-' {
                b[i] = b'f';
                let got = parse_d_strict(&b).unwrap();
                let text = String::from_utf8(b).unwrap().replace('-', "");
                assert_eq!(got, u128::from_str_radix(&text, 16).unwrap());
            }
        }
        assert_eq!(parse_d_strict(&DE.as_bytes()[1..]), None);
    }

    #[test]
    fn eight_digits_at_once_read_as_one_at_a_time() {
        let reference = |g: [u8; 8]| {
            g.iter()
                .try_fold(0u32, |v, &c| (c as char).to_digit(16).map(|d| v << 4 | d))
        };
        // Every byte value at every position, among digits and letters.
        for base in [*b"0a1B2c3D", *b"ffffffff", *b"00000000", *b"9AfE5d7c"] {
            for i in 0..8 {
                for c in 0..=255u8 {
                    let mut g = base;
                    g[i] = c;
                    assert_eq!(hex8(g), reference(g), "{g:?}");
                }
            }
        }
    }

    #[test]
    fn bytes_parse_as_their_text_does() {
        for v in [
            DE,
            " {0a1b2c3d-0000-4000-8000-00000000de01} ",
            "0A1B2C3D00004000800000000000DE01",
            "x",
            "",
        ] {
            assert_eq!(
                TenantId::parse_bytes(v.as_bytes()),
                TenantId::parse(v),
                "{v}"
            );
        }
        assert_eq!(
            TenantId::parse_bytes(b"\xff\xfe"),
            Err(TenantIdError::Malformed)
        );
    }

    #[test]
    fn hex_digits_are_exactly_those_of_either_case() {
        for c in 0..=255u8 {
            let want = (c as char).to_digit(16).map(|d| d as u8);
            assert_eq!(hex_digit(c), want, "{c}");
        }
    }

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
            // .NET's own leniencies, read as .NET reads them.
            "\u{a0}0a1b2c3d-0000-4000-8000-00000000de01\u{3000}",
            "%C2%A00a1b2c3d-0000-4000-8000-00000000de01",
            "\u{2003}{0a1b2c3d-0000-4000-8000-00000000de01}\u{2028}",
            "{0x0a1b2c3d, 0x0000,\u{3000}0x4000, {0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01} }",
            "{ 0x0a1b2c3d,\t0x0000,\n0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}",
            "{0x00000000000a1b2c3d,0x+0,0x0x4000,{0x80,0x0,0x0,0x0,0x0,0x0,0xde,0x1}}",
            "{0x0a1b2c3d,0x10000,0x14000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}",
            "+a1b2c3d-+000-4000-8000-00000000de01",
            "+a1b2c3d-0x00-4000-8000-00000000de01",
            "{+a1b2c3d-0X00-4000-8000-00000000de01}",
            "(0a1b2c3d-+0x0-4000-8000-+0000000de01)",
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
            "{0x1a1b2c3d0,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x01}}",
            "{0x0a1b2c3d,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x100}}",
            "0a1b2c3d-0000-4000-8000-00000000de01%",
            // Not white space to .NET either (format characters, digits of
            // other scripts, fullwidth forms): some reader may still fold
            // them, so they are refused, never "no tenant".
            "0a1b2c3d-0000-4000-8000-00000000de01\u{200b}",
            "\u{feff}0a1b2c3d-0000-4000-8000-00000000de01",
            "\u{ff10}a1b2c3d-0000-4000-8000-00000000de01",
            "\u{660}a1b2c3d-0000-4000-8000-00000000de01",
            "0a1b2c3d-0000-4000-8000-00000000de0\u{661}",
            "{0x0a1b2c3d,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0xde,0x\u{661}}}",
            "0a1b2c3d 0000 4000 8000 00000000de01",
            "0a1b2c3d-0000-4000-8000-00000000de01\u{0}",
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
