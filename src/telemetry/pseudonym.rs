//! Keyed pseudonyms for what records and logs must not carry readably.
//!
//! A value that could be personal data or a secret (a path segment captured
//! as a user, any segment or query name that is not plain text, a bare query
//! component, a client's own request id) is replaced by `~` and the first
//! 8 bytes of HMAC-SHA-256(key, value) in hex: the same value correlates
//! across records, but cannot be read back without the key, and a different
//! key gives unrelated pseudonyms. Comparison is on the lowercase value
//! (UPNs and GUIDs are case-insensitive).
//!
//! "Plain" is deliberately narrow: ASCII letters, digits and
//! `-._~!$'()*+,:`. An e-mail address (`@`, `%40`, a fullwidth `＠`, a
//! double-encoded `%2540`), a path parameter (`;jsessionid=…`), an encoded
//! slash, anything percent-encoded or non-ASCII is not plain, so it is
//! never written as received, however it is spelled.

use std::sync::OnceLock;

use ring::hmac;

/// The key used when none is configured: drawn once per process, so that
/// pseudonyms stay the same across reloads (set `pseudonym_key` or
/// `$PORTALGATE_PSEUDONYM_KEY` to keep them across restarts and replicas).
pub fn process_key() -> &'static [u8] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k).is_err() {
            // No entropy source at all: a key no other process shares still
            // comes from the clock and the process id.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            k[..16].copy_from_slice(&t.to_le_bytes());
            k[16..20].copy_from_slice(&std::process::id().to_le_bytes());
        }
        k
    })
}

/// The pseudonymizer of logs (keyed with [`process_key`]).
pub fn for_logs() -> &'static Pseudonymizer {
    static P: OnceLock<Pseudonymizer> = OnceLock::new();
    P.get_or_init(|| Pseudonymizer::new(process_key()))
}

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

    /// A path with every segment that is one of `users` (captured user
    /// identifiers) or not [`plain`] pseudonymised.
    pub fn path(&self, path: &str, users: &[&str]) -> String {
        let mut out = String::with_capacity(path.len() + 8);
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            let is_user = users.iter().any(|u| u.eq_ignore_ascii_case(seg));
            if !seg.is_empty() && (is_user || !plain(seg)) {
                out.push_str(&self.pseudonym(seg));
            } else {
                out.push_str(seg);
            }
        }
        out
    }

    /// A query string reduced to its names: `a=1&b=x` → `a=&b=`. A name
    /// that is not [`plain`], and a component without `=` (which is all
    /// value), are pseudonymised.
    pub fn query_names(&self, query: &str) -> String {
        let mut out = String::with_capacity(query.len().min(256));
        for (i, part) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match part.split_once('=') {
                Some((name, _)) if plain(name) || name.is_empty() => out.push_str(name),
                Some((name, _)) => out.push_str(&self.pseudonym(name)),
                None if part.is_empty() => {}
                None => out.push_str(&self.pseudonym(part)),
            }
            if part.contains('=') {
                out.push('=');
            }
        }
        out
    }
}

/// Whether `s` may be written as received: ASCII letters, digits and
/// `-._~!$'()*+,:` only (and `$` for OData names such as `$filter`).
pub fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$'()*+,:".contains(&b))
}

/// The first product token of a `User-Agent` (`curl/8.5.0`,
/// `Mozilla/5.0`), if it is a plain `name/version` of at most 64 bytes:
/// the comments and the rest are free text and never recorded.
pub fn product_token(user_agent: &str) -> Option<&str> {
    let first = user_agent.split([' ', '\t']).next()?;
    let (name, version) = first.split_once('/').unwrap_or((first, ""));
    let token = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    (!name.is_empty() && first.len() <= 64 && token(name) && token(version)).then_some(first)
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
    fn query_values_are_removed_and_bare_components_pseudonymised() {
        let p = Pseudonymizer::new(b"k");
        let q = p.query_names("$filter=name eq 'x'&top=5&s3cr3t-token");
        assert!(q.starts_with("$filter=&top=&~"), "{q}");
        assert!(!q.contains("s3cr3t"), "{q}");
        let q = p.query_names("a%40b.example=1");
        assert!(!q.contains("a%40b") && q.ends_with('='), "{q}");
        assert_eq!(p.query_names("a=1&&b="), "a=&&b=");
    }

    #[test]
    fn no_spelling_of_an_email_or_parameter_survives_in_a_path() {
        let p = Pseudonymizer::new(b"k");
        for seg in [
            "adele@contoso.example",
            "adele%40contoso.example",
            "adele%2540contoso.example",
            "adele\u{ff20}contoso.example",
            "adele%EF%BC%A0contoso.example",
            "x;jsessionid=SECRET",
            "a%2Fsecret",
        ] {
            let out = p.path(&format!("/v1/customers/{seg}/x"), &[]);
            assert!(
                !out.contains("adele") && !out.contains("SECRET") && !out.contains("secret"),
                "{out}"
            );
            assert!(
                out.starts_with("/v1/customers/~") && out.ends_with("/x"),
                "{out}"
            );
        }
        assert_eq!(p.path("/v1/customers/c-1/x", &[]), "/v1/customers/c-1/x");
    }

    #[test]
    fn only_a_plain_product_token_of_a_user_agent_is_kept() {
        assert_eq!(product_token("curl/8.5.0"), Some("curl/8.5.0"));
        assert_eq!(
            product_token("Mozilla/5.0 (X11; Linux x86_64) Chrome/120"),
            Some("Mozilla/5.0")
        );
        assert_eq!(
            product_token("bot (mailto:adele@contoso.example)"),
            Some("bot")
        );
        assert_eq!(product_token("adele@contoso.example"), None);
        assert_eq!(product_token("(mailto:adele@contoso.example)"), None);
        assert_eq!(product_token(""), None);
    }

    #[test]
    fn the_process_key_is_drawn_once() {
        assert_eq!(process_key(), process_key());
        assert_eq!(
            for_logs().pseudonym("x"),
            Pseudonymizer::new(process_key()).pseudonym("x")
        );
    }
}

#[cfg(test)]
mod reload_tests {
    /// Without a configured key, every load of the configuration (every
    /// reload) pseudonymises with the same key: the process's.
    #[test]
    fn a_reload_without_a_key_keeps_the_pseudonyms() {
        let text =
            "[[listeners]]\naddress = \"127.0.0.1:0\"\n[upstream]\nurl = \"http://127.0.0.1:9\"\n";
        let base = std::path::Path::new(".");
        let load = || {
            crate::config::parse(text, "test.toml", base)
                .unwrap_or_else(|e| panic!("{e:?}"))
                .decision_log
        };
        let (first, second) = (load(), load());
        assert_eq!(first.key_source, crate::config::KeySource::Random);
        assert_eq!(first.key, second.key);
        assert_eq!(first.key, super::process_key());
    }
}
