//! Bounded inspection of a JSON request body for body-aware rules.
//!
//! Only requests that reach such a rule are read, at most
//! `inspection.max_body_bytes`, and only JSON. The bytes are then forwarded
//! unchanged. The body is never logged: it may hold a password.
//!
//! [`readable`] and [`parse`] are the rules; [`read_incoming`] applies them
//! to a body hyper reads, and the pass-through codec applies them to the
//! bytes it reads itself.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::error::ProxyError;
use crate::head::{text, Fields};
use crate::policy::JsonFields;

/// A parsed JSON body, for [`JsonFields`].
pub struct Json(pub serde_json::Value);

impl JsonFields for Json {
    fn has(&self, path: &[String]) -> bool {
        leads_through(&self.0, path)
    }
}

/// Whether the object path `path` leads through `v`, each name matched as
/// an ASP.NET backend binds JSON properties: without regard to case
/// (System.Text.Json's web defaults and Json.NET both match property names
/// case-insensitively, so `PasswordProfile` sets `passwordProfile`). Where
/// several keys match one name (`passwordProfile` and `PASSWORDPROFILE` in
/// one object), the path may go through any of them: whichever the backend
/// keeps, the rule sees it.
fn leads_through(v: &serde_json::Value, path: &[String]) -> bool {
    let Some((name, rest)) = path.split_first() else {
        return true;
    };
    let Some(object) = v.as_object() else {
        return false;
    };
    // The exact spelling first: one lookup, the common case.
    if object
        .get(name)
        .is_some_and(|next| leads_through(next, rest))
    {
        return true;
    }
    object
        .iter()
        .any(|(key, next)| key != name && same_name(key, name) && leads_through(next, rest))
}

/// Whether two property names are the same name to a case-insensitive
/// reader. Both full case mappings are tried, so that a name some reader
/// folds to another is taken for it (`ſ` for `s`, the Kelvin sign for
/// `k`): matching one spelling too many intercepts, one too few forwards.
fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
        || a.chars()
            .flat_map(char::to_uppercase)
            .eq(b.chars().flat_map(char::to_uppercase))
}

/// What inspection found.
pub enum Inspected {
    /// The body and its JSON.
    Json(Bytes, Json),
    /// Too large, not JSON, or invalid JSON: the rule cannot judge it.
    Unreadable,
}

/// Whether a body with these fields may be read for inspection: its type
/// is JSON (or unnamed) and its declared length, if any, is at most `max`.
pub fn readable(fields: Fields<'_>, max: usize) -> bool {
    let json = fields
        .first(&header::CONTENT_TYPE)
        .and_then(text)
        .is_none_or(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        });
    let declared = fields
        .first(&header::CONTENT_LENGTH)
        .and_then(text)
        .and_then(|v| v.parse::<u64>().ok());
    json && declared.is_none_or(|n| n <= max as u64)
}

/// The body read whole, as JSON if it is. A leading UTF-8 byte order mark
/// is skipped, as ASP.NET's JSON reader skips it (the bytes forwarded keep
/// it): a body the backend reads is judged, not refused.
pub fn parse(bytes: Bytes) -> Inspected {
    let text = bytes.strip_prefix(BOM.as_bytes()).unwrap_or(&bytes);
    match serde_json::from_slice(text) {
        Ok(v) => Inspected::Json(bytes, Json(v)),
        Err(_) => Inspected::Unreadable,
    }
}

/// The UTF-8 byte order mark.
const BOM: &str = "\u{FEFF}";

/// Reads a body hyper receives, if it is JSON and no larger than `max`.
pub async fn read_incoming(
    fields: Fields<'_>,
    body: Incoming,
    max: usize,
) -> Result<Inspected, ProxyError> {
    if !readable(fields, max) {
        return Ok(Inspected::Unreadable);
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(parse(collected.to_bytes())),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Ok(Inspected::Unreadable)
            } else {
                Err(ProxyError::ClientBody)
            }
        }
    }
}

/// Parses a body as JSON the way body-aware rules see it (for `explain`).
pub fn json(body: &str) -> Option<Json> {
    serde_json::from_str(body.strip_prefix(BOM).unwrap_or(body))
        .ok()
        .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(body: &str, path: &str) -> bool {
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        json(body).is_some_and(|j| j.has(&path))
    }

    #[test]
    fn property_names_match_as_a_case_insensitive_binder_reads_them() {
        for body in [
            r#"{"passwordProfile":{}}"#,
            r#"{"PasswordProfile":{}}"#,
            r#"{"PASSWORDPROFILE":null}"#,
            r#"{"passwordprofile":1}"#,
            r#"{"password\u0050rofile":{}}"#,
            // Folded by some reader: the long s, the Kelvin sign.
            "{\"pa\u{17F}swordProfile\":{}}",
            r#"{"a":1,"PassWordProFile":{"password":"x"}}"#,
        ] {
            assert!(has(body, "passwordProfile"), "{body}");
        }
        assert!(has("{\"\u{212A}ey\":1}", "key"));
        for body in [
            r#"{"password":{}}"#,
            r#"{"passwordProfiles":{}}"#,
            r#"{"x":{"passwordProfile":{}}}"#,
            r#"[{"passwordProfile":{}}]"#,
            r#""passwordProfile""#,
        ] {
            assert!(!has(body, "passwordProfile"), "{body}");
        }
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_and_kept_in_the_bytes() {
        let body = Bytes::from_static(b"\xEF\xBB\xBF{\"passwordProfile\":{}}");
        match parse(body.clone()) {
            Inspected::Json(kept, j) => {
                assert_eq!(kept, body);
                assert!(j.has(&["passwordProfile".to_owned()]));
            }
            Inspected::Unreadable => panic!("a body with a byte order mark was not read"),
        }
        assert!(has("\u{FEFF}{\"passwordProfile\":{}}", "passwordProfile"));
        // Only one, and only at the start.
        assert!(matches!(
            parse(Bytes::from_static(b"\xEF\xBB\xBF\xEF\xBB\xBF{}")),
            Inspected::Unreadable
        ));
        assert!(matches!(
            parse(Bytes::from_static(b"{}\xEF\xBB\xBF")),
            Inspected::Unreadable
        ));
    }

    #[test]
    fn a_nested_path_goes_through_any_key_that_matches_each_name() {
        assert!(has(r#"{"Outer":{"INNER":true}}"#, "outer.inner"));
        // Two spellings of one name: the path holds through either.
        assert!(has(
            r#"{"outer":{"x":1},"OUTER":{"inner":1}}"#,
            "outer.inner"
        ));
        assert!(has(
            r#"{"OUTER":{"inner":1},"outer":{"x":1}}"#,
            "outer.inner"
        ));
        assert!(!has(r#"{"outer":{"x":1},"OUTER":{"y":1}}"#, "outer.inner"));
        assert!(!has(r#"{"outer":5}"#, "outer.inner"));
    }
}
