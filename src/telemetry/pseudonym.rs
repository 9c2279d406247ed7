//! Keyed pseudonyms for user identifiers in decision records.
//!
//! A user identifier (a path segment captured as a user, or any segment that
//! holds an e-mail address / UPN) is replaced by `~` and the first 8 bytes of
//! HMAC-SHA-256(key, identifier) in hex: the same user correlates across
//! records, but the identifier cannot be read back without the key, and a
//! different key gives unrelated pseudonyms. Comparison is on the lowercase
//! identifier (UPNs and GUIDs are case-insensitive).

use ring::hmac;

/// Makes pseudonyms with one key.
pub struct Pseudonymizer {
    key: hmac::Key,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key>)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer keyed with `key` (any length; 32 random bytes or more
    /// recommended).
    pub fn new(key: &[u8]) -> Self {
        Pseudonymizer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// `~` and 16 hex digits.
    pub fn pseudonym(&self, identifier: &str) -> String {
        let tag = hmac::sign(&self.key, identifier.to_ascii_lowercase().as_bytes());
        let mut out = String::with_capacity(17);
        out.push('~');
        for b in &tag.as_ref()[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// A path with every segment equal to one of `users` (captured user
    /// identifiers) and every segment holding an `@` (raw or `%40`)
    /// pseudonymised.
    pub fn path(&self, path: &str, users: &[&str]) -> String {
        let mut out = String::with_capacity(path.len() + 8);
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            let is_user = users.iter().any(|u| u.eq_ignore_ascii_case(seg));
            if !seg.is_empty() && (is_user || looks_like_email(seg)) {
                out.push_str(&self.pseudonym(seg));
            } else {
                out.push_str(seg);
            }
        }
        out
    }
}

fn looks_like_email(seg: &str) -> bool {
    seg.contains('@') || seg.to_ascii_lowercase().contains("%40")
}

/// A query string with every value removed: `a=1&b=x` → `a=&b=`; a key
/// that holds an `@` is pseudonymised too.
pub fn strip_query_values(query: &str, p: &Pseudonymizer) -> String {
    query
        .split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            let key = if looks_like_email(key) {
                p.pseudonym(key)
            } else {
                key.to_string()
            };
            if pair.contains('=') {
                format!("{key}=")
            } else {
                key
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_user_same_pseudonym_other_key_other_pseudonym() {
        let a = Pseudonymizer::new(b"key-a");
        let b = Pseudonymizer::new(b"key-b");
        let p1 = a.pseudonym("adele.vance@contoso.example");
        assert_eq!(p1, a.pseudonym("Adele.Vance@Contoso.Example"));
        assert_ne!(p1, b.pseudonym("adele.vance@contoso.example"));
        assert_eq!(p1.len(), 17);
        assert!(p1.starts_with('~') && p1[1..].bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn paths_lose_user_segments_and_emails() {
        let p = Pseudonymizer::new(b"k");
        let out = p.path("/v1/customers/c1/users/u-42/licenses", &["u-42"]);
        assert!(!out.contains("u-42"), "{out}");
        assert!(
            out.starts_with("/v1/customers/c1/users/~") && out.ends_with("/licenses"),
            "{out}"
        );
        let out = p.path("/v1/users/adele%40contoso.example", &[]);
        assert!(!out.to_ascii_lowercase().contains("adele"), "{out}");
        let out = p.path("/v1/users/adele@contoso.example/x", &[]);
        assert!(!out.contains("adele"), "{out}");
        assert_eq!(p.path("/", &[]), "/");
    }

    #[test]
    fn query_values_are_removed() {
        let p = Pseudonymizer::new(b"k");
        assert_eq!(
            strip_query_values("$filter=name eq 'x'&top=5&flag", &p),
            "$filter=&top=&flag"
        );
        let q = strip_query_values("a%40b.example=1", &p);
        assert!(!q.contains("a%40b") && q.ends_with('='), "{q}");
    }
}
