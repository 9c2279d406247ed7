//! The hasher of the console's counts: a folded multiply with a key drawn
//! once per process.
//!
//! The counts are looked up on every decision (by rule and action, and by
//! tenant); the standard library's SipHash costs about two hundred
//! instructions a lookup there. Tenant ids come from requests, so the
//! hash must still be keyed: without the key, a client cannot choose ids
//! that collide (the same construction as `foldhash`'s, "minimal DoS
//! resistance"), and the tenant table is capped besides
//! ([`super::TENANTS_PER_MINUTE`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use crate::ascii::word;

/// The process's key: two random words, drawn once.
fn key() -> (u64, u64) {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    *KEY.get_or_init(|| {
        let s = RandomState::new();
        // Odd multipliers: a folded multiply by an even one loses a bit.
        (s.hash_one(1u8) | 1, s.hash_one(2u8) | 1)
    })
}

/// The high and low halves of the full product, folded together.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    // Truncations intended: the two halves of the product.
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`KeyedHasher`]s with the process's key.
#[derive(Debug, Clone, Copy)]
pub struct Keyed {
    key: (u64, u64),
}

impl Default for Keyed {
    fn default() -> Self {
        Keyed { key: key() }
    }
}

impl BuildHasher for Keyed {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            acc: self.key.0,
            key: self.key,
        }
    }
}

/// One hash in progress.
#[derive(Debug, Clone, Copy)]
pub struct KeyedHasher {
    acc: u64,
    key: (u64, u64),
}

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            self.write_u64(word(c));
        }
        // The length tells `ab` + `c` from `a` + `bc`.
        self.write_u64(word(chunks.remainder()) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_u64(&mut self, x: u64) {
        self.acc = fold(self.acc ^ x, self.key.1);
    }

    fn write_u128(&mut self, x: u128) {
        // Both halves in one multiply, each keyed.
        let (lo, hi) = (x as u64, (x >> 64) as u64);
        self.acc = fold(self.acc ^ lo, hi ^ self.key.1);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    fn finish(&self) -> u64 {
        fold(self.acc, self.key.0 ^ self.key.1).rotate_left(23)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantId;
    use std::collections::HashSet;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_spread() {
        let k = Keyed::default();
        let t = |s: &str| TenantId::parse(s).expect("a tenant id");
        let a = t("9b2f8c41-2d7e-4f3a-8c11-5e6d7a8b9c0d");
        assert_eq!(
            k.hash_one(a),
            k.hash_one(t("9B2F8C41-2D7E-4F3A-8C11-5E6D7A8B9C0D"))
        );
        // Ids that differ in one bit, in every bit position: no two of
        // them share a bucket of a table of 4,096.
        let base = 0x9b2f_8c41_2d7e_4f3a_8c11_5e6d_7a8b_9c0du128;
        let mut buckets = HashSet::new();
        for bit in 0..128 {
            let id = TenantId::from_u128(base ^ (1 << bit));
            buckets.insert(k.hash_one(id) >> 52);
        }
        assert!(buckets.len() > 120, "{} buckets of 128 ids", buckets.len());
        // Keys of the other table: a rule's address and an action.
        assert_ne!(
            k.hash_one((1usize, "explain")),
            k.hash_one((1usize, "redirect"))
        );
        assert_ne!(
            k.hash_one((1usize, "explain")),
            k.hash_one((2usize, "explain"))
        );
        assert_eq!(k.hash_one((7usize, "deny")), k.hash_one((7usize, "deny")));
    }

    #[test]
    fn the_key_is_drawn_once() {
        assert_eq!(Keyed::default().key, Keyed::default().key);
    }
}
