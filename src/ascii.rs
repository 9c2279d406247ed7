//! ASCII-case-insensitive comparison and byte search, eight bytes per
//! machine word.
//!
//! Route literals, methods and header names are compared the way the
//! backend (ASP.NET) compares them: ASCII letters fold, every other byte
//! must be equal. `<[u8]>::eq_ignore_ascii_case` does that one byte at a
//! time (a dozen instructions per byte); the judgement compares a few
//! dozen bytes per request in its route walk and again for the captures,
//! so it is done here a word at a time. Same answers as the standard
//! library's, for every byte (tests below).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `x` with every byte `A`..=`Z` lowered (bit 0x20 set), others kept.
#[inline]
fn lower8(x: u64) -> u64 {
    // For each byte below 0x80, adding (0x80 - c) sets its high bit when
    // the byte is at least c; the low seven bits cannot carry into the
    // next byte. Bytes at or above 0x80 are masked out by `!x`.
    let low = x & !HIGH;
    let at_least_a = low + ONES * (0x80 - u64::from(b'A'));
    let above_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = at_least_a & !above_z & !x & HIGH;
    x | (upper >> 2)
}

/// The first eight bytes of `b` (all of a shorter `b`, zero-padded) as
/// one little-endian word. Read in pieces of four, two and one: a copy of
/// a variable length into a buffer would be a call to `memcpy`.
#[inline]
pub fn word(b: &[u8]) -> u64 {
    if let Some(w) = b.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    let (mut w, mut shift, mut b) = (0u64, 0, b);
    if let Some((four, rest)) = b.split_first_chunk::<4>() {
        w = u64::from(u32::from_le_bytes(*four));
        (shift, b) = (32, rest);
    }
    if let Some((two, rest)) = b.split_first_chunk::<2>() {
        w |= u64::from(u16::from_le_bytes(*two)) << shift;
        shift += 16;
        b = rest;
    }
    if let Some(&one) = b.first() {
        w |= u64::from(one) << shift;
    }
    w
}

/// Bit 7 set in each byte of `w` that equals `needle`, exactly: the low
/// seven bits are added apart from the eighth, so nothing borrows from a
/// neighbouring byte. Little-endian: byte `i` of the text is bit `8i + 7`.
#[inline]
pub fn matches(w: u64, needle: u8) -> u64 {
    const LOW7: u64 = !HIGH;
    let x = w ^ (ONES * u64::from(needle));
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// Calls `f` with the position of each `needle` in `hay`, in order, eight
/// bytes at a time: for a short text (a path's slashes) cheaper than a
/// vectorised search restarted after each hit.
#[inline]
pub fn each_position(hay: &[u8], needle: u8, mut f: impl FnMut(usize)) {
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for w in words.by_ref() {
        let mut hits = matches(word(w), needle);
        while hits != 0 {
            f(base + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
        base += 8;
    }
    for (i, &b) in words.remainder().iter().enumerate() {
        if b == needle {
            f(base + i);
        }
    }
}

/// Whether `a` and `b` are equal when ASCII letters are folded: the same
/// answer as `a.eq_ignore_ascii_case(b)`.
#[inline(always)]
pub fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    eq_words(a, b, lower8)
}

/// Whether `a` equals `lower`, a text already in ASCII lowercase, with
/// `a`'s ASCII letters folded.
#[inline(always)]
pub fn eq_lowercase(a: &[u8], lower: &[u8]) -> bool {
    eq_words(a, lower, |w| w)
}

/// Whether `a` and `b` are the same length and each word of `a`, lowered,
/// equals the same word of `b` taken through `b_word`.
// Always inlined: called out of line, the call costs as much as a short
// name's comparison.
#[inline(always)]
fn eq_words(a: &[u8], b: &[u8], b_word: impl Fn(u64) -> u64) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut x = a.chunks_exact(8);
    let mut y = b.chunks_exact(8);
    for (p, q) in x.by_ref().zip(y.by_ref()) {
        if lower8(word(p)) != b_word(word(q)) {
            return false;
        }
    }
    lower8(word(x.remainder())) == b_word(word(y.remainder()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_byte_lowers_as_the_standard_library_lowers_it() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut w = [b'q'; 8];
                w[at] = b;
                let want: Vec<u8> = w.iter().map(u8::to_ascii_lowercase).collect();
                assert_eq!(
                    lower8(u64::from_le_bytes(w)).to_le_bytes().as_slice(),
                    want.as_slice(),
                    "byte {b:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn every_pair_of_bytes_compares_as_the_standard_library_compares_it() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for len in [1, 8, 11] {
                    let mut x = vec![b'k'; len];
                    let mut y = x.clone();
                    x[len - 1] = a;
                    y[len - 1] = b;
                    assert_eq!(eq_ignore_case(&x, &y), x.eq_ignore_ascii_case(&y));
                    if y == y.to_ascii_lowercase() {
                        assert_eq!(eq_lowercase(&x, &y), x.eq_ignore_ascii_case(&y));
                    }
                }
            }
        }
    }

    #[test]
    fn a_word_is_the_first_eight_bytes_zero_padded() {
        let bytes: Vec<u8> = (1..=12).collect();
        for n in 0..=12 {
            let mut w = [0u8; 8];
            let k = n.min(8);
            w[..k].copy_from_slice(&bytes[..k]);
            assert_eq!(word(&bytes[..n]), u64::from_le_bytes(w), "{n} bytes");
        }
    }

    #[test]
    fn every_position_of_every_byte_is_found() {
        for needle in [0u8, b'/', 0x7f, 0x80, 0xaf, 0xff] {
            for len in 0..=19 {
                for at in 0..len {
                    // The needle at `at`, its neighbours in value around it.
                    let hay: Vec<u8> = (0..len)
                        .map(|i| {
                            if i == at || i == (at * 7 + 3) % len {
                                needle
                            } else {
                                needle ^ [1u8, 0x80, 0x7f, 0x2f][i % 4]
                            }
                        })
                        .collect();
                    let mut found = Vec::new();
                    each_position(&hay, needle, |i| found.push(i));
                    let want: Vec<usize> = (0..len).filter(|&i| hay[i] == needle).collect();
                    assert_eq!(found, want, "{needle:#x} in {hay:?}");
                }
            }
        }
    }

    #[test]
    fn lengths_and_positions() {
        assert!(eq_ignore_case(b"", b""));
        assert!(!eq_ignore_case(b"a", b""));
        assert!(eq_ignore_case(b"Customers", b"cUSTOMERS"));
        assert!(!eq_ignore_case(b"customers", b"customerz"));
        assert!(eq_lowercase(b"DASHBOARD-Users_2", b"dashboard-users_2"));
        assert!(!eq_lowercase(b"dashboard", b"dashboarD"));
        // `@` and `[` sit beside the letters; 0xC1 and 0xDA are `A` and
        // `Z` with the high bit set: none of them fold.
        assert!(!eq_ignore_case(b"@", b"`"));
        assert!(!eq_ignore_case(b"[", b"{"));
        assert!(!eq_ignore_case(&[0xC1], &[0xE1]));
        assert!(!eq_ignore_case(&[0xDA], &[0xFA]));
    }

    proptest! {
        #[test]
        fn positions_agree_with_a_byte_loop(
            hay in proptest::collection::vec(prop_oneof![Just(b'/'), any::<u8>()], 0..70),
        ) {
            let mut found = Vec::new();
            each_position(&hay, b'/', |i| found.push(i));
            let want: Vec<usize> = (0..hay.len()).filter(|&i| hay[i] == b'/').collect();
            prop_assert_eq!(found, want);
        }

        #[test]
        fn agrees_with_the_standard_library(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            flips in proptest::collection::vec(any::<bool>(), 40),
        ) {
            // `b`: `a` with some letters' case swapped, sometimes a byte
            // changed; random pairs are almost never equal.
            let mut b: Vec<u8> = a
                .iter()
                .zip(&flips)
                .map(|(&c, &f)| if f && c.is_ascii_alphabetic() { c ^ 0x20 } else { c })
                .collect();
            prop_assert_eq!(eq_ignore_case(&a, &b), a.eq_ignore_ascii_case(&b));
            let lower = b.to_ascii_lowercase();
            prop_assert_eq!(eq_lowercase(&a, &lower), a.eq_ignore_ascii_case(&lower));
            if let Some(last) = b.last_mut() {
                *last = last.wrapping_add(1);
            }
            prop_assert_eq!(eq_ignore_case(&a, &b), a.eq_ignore_ascii_case(&b));
        }
    }
}
