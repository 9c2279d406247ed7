//! The `tid` claim of a bearer JWT: the partner's own tenant.
//!
//! The token is decoded, not verified. That is safe because the claim is
//! used only to choose which rules apply, never to grant anything: the
//! backend verifies every token's signature, so a token whose `tid` was
//! altered to dodge a rule is rejected by the backend anyway, and an
//! unaltered token carries the true `tid`. The token itself is never logged.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::id::{TenantId, TenantIdError};

/// Why a bearer token's `tid` could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TidError {
    /// Not three dot-separated base64url parts with a JSON object payload.
    #[error("the bearer token is not a JWT")]
    NotAJwt,
    /// The `tid` claim is present but not a GUID, or present twice (JSON
    /// parsers disagree on which of two to take).
    #[error("the bearer token's tid is malformed")]
    MalformedTid,
}

/// The payload's top-level `tid` values, each as written; other claims are
/// skipped unread. Keys are compared after JSON unescaping, so `"t\u0069d"`
/// is `tid` too.
struct Tids(Vec<serde_json::Value>);

impl<'de> serde::Deserialize<'de> for Tids {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tids, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Tids;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Tids, M::Error> {
                let mut tids = Vec::new();
                while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "tid" {
                        tids.push(m.next_value()?);
                    } else {
                        m.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(Tids(tids))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The `tid` of `Authorization: Bearer <jwt>`; `Ok(None)` when the value is
/// not a bearer token or has no `tid` claim.
pub fn bearer_tid(authorization: &str) -> Result<Option<TenantId>, TidError> {
    let Some((scheme, token)) = authorization.trim().split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let mut parts = token.trim().split('.');
    let (Some(_header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TidError::NotAJwt);
    };
    // Padding is optional in JWTs; accept it if present.
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TidError::NotAJwt)?;
    let Tids(tids) = serde_json::from_slice(&bytes).map_err(|_| TidError::NotAJwt)?;
    match tids.as_slice() {
        [] => Ok(None),
        [serde_json::Value::String(s)] => match TenantId::parse(s) {
            Ok(id) => Ok(Some(id)),
            Err(TenantIdError::NotAGuid | TenantIdError::Malformed) => Err(TidError::MalformedTid),
        },
        // Not a string, or more than one.
        _ => Err(TidError::MalformedTid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "Bearer {}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_the_tid_claim() {
        let t = jwt(r#"{"tid":"0A1B2C3D-0000-4000-8000-00000000DE01","oid":"x"}"#);
        assert_eq!(
            bearer_tid(&t).unwrap().unwrap().to_string(),
            "0a1b2c3d-0000-4000-8000-00000000de01"
        );
        assert_eq!(bearer_tid(&jwt(r#"{"oid":"x"}"#)), Ok(None));
        assert_eq!(bearer_tid("Basic dXNlcjpwYXNz"), Ok(None));
        assert_eq!(bearer_tid("Bearer"), Ok(None));
    }

    #[test]
    fn rejects_what_is_not_a_jwt_or_has_a_bad_tid() {
        assert_eq!(bearer_tid("Bearer abc"), Err(TidError::NotAJwt));
        assert_eq!(bearer_tid("Bearer a.b.c.d"), Err(TidError::NotAJwt));
        assert_eq!(bearer_tid("Bearer a.!!!.c"), Err(TidError::NotAJwt));
        assert_eq!(bearer_tid(&jwt("[1,2]")), Err(TidError::NotAJwt));
        assert_eq!(
            bearer_tid(&jwt(r#"{"tid":"nope"}"#)),
            Err(TidError::MalformedTid)
        );
        assert_eq!(
            bearer_tid(&jwt(r#"{"tid":42}"#)),
            Err(TidError::MalformedTid)
        );
    }

    #[test]
    fn a_repeated_tid_is_ambiguous_however_it_is_spelled() {
        const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";
        const GL: &str = "0a1b2c3d-0000-4000-8000-000000000001";
        for payload in [
            format!(r#"{{"tid":"{GL}","tid":"{DE}"}}"#),
            format!(r#"{{"tid":"{DE}","oid":"x","tid":"{DE}"}}"#),
            format!(r#"{{"tid":"{GL}","t\u0069d":"{DE}"}}"#),
        ] {
            assert_eq!(
                bearer_tid(&jwt(&payload)),
                Err(TidError::MalformedTid),
                "{payload}"
            );
        }
        // A nested "tid" is another claim's business.
        let nested = format!(r#"{{"tid":"{DE}","ctx":{{"tid":"{GL}"}}}}"#);
        assert_eq!(bearer_tid(&jwt(&nested)).unwrap().unwrap().to_string(), DE);
    }
}
