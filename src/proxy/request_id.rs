//! Request ids: keep a well-formed incoming `X-Request-Id`, else make one.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;
use ring::rand::{SecureRandom, SystemRandom};

/// Generates ids unique across processes: a random per-process prefix and a
/// counter, 32 hex digits.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        let mut seed = [0u8; 16];
        // The system RNG only fails when the OS has no entropy source at all;
        // the ids are for correlation, not secrecy, so the clock will do then.
        if SystemRandom::new().fill(&mut seed).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            seed = nanos.to_le_bytes();
        }
        let (a, b) = seed.split_at(8);
        RequestIds {
            prefix: u64::from_le_bytes(a.try_into().unwrap_or_default()),
            counter: AtomicU64::new(u64::from_le_bytes(b.try_into().unwrap_or_default())),
        }
    }
}

impl RequestIds {
    /// The id for a request: `incoming` when it is well-formed, else a new one.
    pub fn for_request(&self, incoming: Option<&HeaderValue>) -> HeaderValue {
        if let Some(v) = incoming.filter(|v| is_valid(v.as_bytes())) {
            return v.clone();
        }
        let mut id = Vec::with_capacity(32);
        self.write_new(&mut id);
        HeaderValue::from_maybe_shared(bytes::Bytes::from(id))
            .unwrap_or_else(|_| HeaderValue::from_static("0"))
    }

    /// Replaces `out` with the id for a request: `incoming` when it is
    /// well-formed, else a new one (the same rule as [`Self::for_request`],
    /// into a reused buffer).
    pub fn fill(&self, incoming: Option<&[u8]>, out: &mut Vec<u8>) {
        out.clear();
        match incoming.filter(|v| is_valid(v)) {
            Some(v) => out.extend_from_slice(v),
            None => self.write_new(out),
        }
    }

    fn write_new(&self, id: &mut Vec<u8>) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        for word in [self.prefix, n] {
            for shift in (0..16).rev() {
                id.push(HEX[((word >> (shift * 4)) & 0xf) as usize]);
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 1 to 128 characters from a conservative set, so ids are safe in logs.
pub fn is_valid(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_valid_and_replaces_invalid() {
        let ids = RequestIds::default();
        let keep = HeaderValue::from_static("abc-123");
        assert_eq!(ids.for_request(Some(&keep)), keep);
        let bad = HeaderValue::from_static("has space");
        let made = ids.for_request(Some(&bad));
        assert_eq!(made.len(), 32);
        assert_ne!(ids.for_request(None), ids.for_request(None));
        assert!(!is_valid(&[b'a'; 129]));
    }
}
