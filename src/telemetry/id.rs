//! Request and decision ids, for correlating answers, logs and records:
//! keep a well-formed incoming `X-Request-Id`, else make one.
//!
//! New ids are 32 hex digits: a random 64-bit prefix and a counter, both
//! per thread, so ids are unique across threads and processes and making
//! one touches no memory another thread writes (a shared counter would
//! bounce its cache line between cores on every request).

use std::cell::Cell;

use ring::rand::{SecureRandom, SystemRandom};

/// The longest id kept from a client.
pub const MAX_LEN: usize = 128;

/// An id: a new one inline, a client's on the heap (they are rare, and a
/// small `Id` is cheap to move with the judgement).
#[derive(Clone)]
pub enum Id {
    /// Made here: 32 hex digits.
    New([u8; 32]),
    /// The client's, well-formed.
    Kept(Box<[u8]>),
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Id {}

impl Id {
    /// The id for a request: `incoming` when it is well-formed, else a new one.
    pub fn for_request(incoming: Option<&[u8]>) -> Id {
        match incoming.filter(|v| is_valid(v)) {
            Some(v) => Id::Kept(v.into()),
            None => Id::new(),
        }
    }

    /// A new id.
    pub fn new() -> Id {
        let (prefix, n) = NEXT.with(|c| {
            let (prefix, n) = c.get().unwrap_or_else(|| {
                let (prefix, n) = seed();
                (hex16(prefix), n)
            });
            c.set(Some((prefix, n.wrapping_add(1))));
            (prefix, n)
        });
        let mut bytes = [0; 32];
        bytes[..16].copy_from_slice(&prefix);
        bytes[16..].copy_from_slice(&hex16(n));
        Id::New(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Id::New(b) => b,
            Id::Kept(b) => b,
        }
    }

    /// The id as text (always ASCII: see [`is_valid`]).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The id as records and logs carry it: a new one, or a client's that
    /// is a GUID (as Partner Center's request ids are), as it is; any other
    /// id a client chose is free text, and is pseudonymised with `p`.
    pub fn redacted(&self, p: &super::pseudonym::Pseudonymizer) -> std::borrow::Cow<'_, str> {
        match self {
            Id::New(_) => self.as_str().into(),
            Id::Kept(b) if is_guid(b) => self.as_str().into(),
            Id::Kept(_) => p.pseudonym(self.as_str()).into(),
        }
    }

    /// The id as a header value.
    pub fn to_header(&self) -> http::HeaderValue {
        http::HeaderValue::from_bytes(self.as_bytes())
            .unwrap_or_else(|_| http::HeaderValue::from_static("0"))
    }
}

impl Default for Id {
    fn default() -> Id {
        Id::new()
    }
}

/// `8-4-4-4-12` hex digits.
fn is_guid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

thread_local! {
    /// This thread's prefix (as hex digits, written once) and next
    /// counter value.
    static NEXT: Cell<Option<([u8; 16], u64)>> = const { Cell::new(None) };
}

fn seed() -> (u64, u64) {
    let mut seed = [0u8; 16];
    // The system RNG only fails when the OS has no entropy source at all;
    // ids are for correlation, not secrecy, so the clock and the thread
    // will do then.
    if SystemRandom::new().fill(&mut seed).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed = nanos.to_le_bytes();
        let thread = format!("{:?}", std::thread::current().id());
        for (i, b) in thread.bytes().enumerate() {
            seed[i % 8] ^= b;
        }
    }
    let (a, b) = seed.split_at(8);
    (
        u64::from_le_bytes(a.try_into().unwrap_or_default()),
        u64::from_le_bytes(b.try_into().unwrap_or_default()),
    )
}

/// `v` as 16 lowercase hex digits, most significant first: each nibble
/// spread into a byte of its own by three shifts, then made a digit or a
/// letter in every byte at once (two ids per answered request).
fn hex16(v: u64) -> [u8; 16] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let spread = |x: u64| {
        let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
        let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
        (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f
    };
    let ascii = |n: u64| {
        // The high bit of a byte is set where its nibble is 10 or more.
        let letters = ((n + ONES * 0x76) & (ONES * 0x80)) >> 7;
        (n + ONES * u64::from(b'0') + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
    };
    let mut out = [0; 16];
    out[..8].copy_from_slice(&ascii(spread(v >> 32)));
    out[8..].copy_from_slice(&ascii(spread(v & 0xffff_ffff)));
    out
}

/// 1 to 128 characters from a conservative set, so ids are safe in logs.
pub fn is_valid(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len())
        && v.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex16_writes_what_format_writes() {
        let mut v = 0x0123_4567_89ab_cdefu64;
        for _ in 0..10_000 {
            assert_eq!(hex16(v), format!("{v:016x}").as_bytes(), "{v:x}");
            v = v.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
        }
        for v in [0, u64::MAX, 9, 10, 15, 16, 0xa0a0_a0a0_a0a0_a0a0] {
            assert_eq!(hex16(v), format!("{v:016x}").as_bytes(), "{v:x}");
        }
    }

    #[test]
    fn keeps_valid_and_replaces_invalid() {
        let keep = Id::for_request(Some(b"abc-123"));
        assert_eq!(keep.as_str(), "abc-123");
        let made = Id::for_request(Some(b"has space"));
        assert_eq!(made.as_str().len(), 32);
        assert!(made.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(Id::new(), Id::new());
        assert!(!is_valid(&[b'a'; 129]));
        assert!(is_valid(&[b'a'; 128]));
    }

    #[test]
    fn threads_make_different_ids() {
        let here: Vec<Id> = (0..100).map(|_| Id::new()).collect();
        let there = std::thread::spawn(|| (0..100).map(|_| Id::new()).collect::<Vec<_>>())
            .join()
            .unwrap();
        for id in &there {
            assert!(!here.contains(id));
        }
    }
}
