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
        let mut v = &self.0;
        for key in path {
            match v.get(key.as_str()) {
                Some(next) => v = next,
                None => return false,
            }
        }
        true
    }
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

/// The body read whole, as JSON if it is.
pub fn parse(bytes: Bytes) -> Inspected {
    match serde_json::from_slice(&bytes) {
        Ok(v) => Inspected::Json(bytes, Json(v)),
        Err(_) => Inspected::Unreadable,
    }
}

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
    serde_json::from_str(body).ok().map(Json)
}
