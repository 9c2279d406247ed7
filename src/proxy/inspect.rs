//! Bounded inspection of a JSON request body for body-aware rules.
//!
//! Only requests that reach such a rule are read, at most
//! `inspection.max_body_bytes`, and only JSON. The bytes are then forwarded
//! unchanged. The body is never logged: it may hold a password.

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::error::ProxyError;
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

/// Reads the body if it is JSON and no larger than `max`.
pub async fn inspect(
    headers: &HeaderMap,
    body: Incoming,
    max: usize,
) -> Result<Inspected, ProxyError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        });
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !json || declared.is_some_and(|n| n > max as u64) {
        return Ok(Inspected::Unreadable);
    }
    let bytes = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Ok(Inspected::Unreadable)
            } else {
                Err(ProxyError::ClientBody)
            };
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => Ok(Inspected::Json(bytes, Json(v))),
        Err(_) => Ok(Inspected::Unreadable),
    }
}
