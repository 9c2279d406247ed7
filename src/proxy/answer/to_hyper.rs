//! An answer as a hyper response (HTTP/2, and hyper's HTTP/1).
//!
//! A preset's fields are the same on every answer of its kind, so each
//! thread keeps them as hyper's map, with the two id fields as placeholders
//! at its end ([`PRESETS`]): an answer clones the map and sets the ids,
//! instead of checking, copying and hashing every field again. The copy is
//! the thread's own, so the clone's reference counts are on lines no
//! other core writes.

use std::cell::RefCell;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Response;

use super::{Answer, Body, Preset, Value, DECISION_ID, ONCE, REQUEST_ID};
use crate::proxy::body::ProxyBody;

/// Presets each thread keeps as hyper's map: the configuration's answers
/// in use (a rule's answer in one format and language); beyond this many,
/// the oldest is made again when next used.
const KEPT: usize = 16;

thread_local! {
    /// This thread's maps, by [`Preset::serial`], oldest first.
    static PRESETS: RefCell<Vec<(u64, HeaderMap)>> = const { RefCell::new(Vec::new()) };
}

impl Answer<'_> {
    /// The answer as a response for hyper; `Connection: close` when the
    /// connection must close.
    pub fn into_response(mut self) -> Response<ProxyBody> {
        let body = match &mut self.body {
            Body::Bytes(b) => std::mem::take(b),
            Body::Holes { .. } => self.body_bytes().into_owned(),
        };
        let mut resp = Response::new(ProxyBody::local(body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        let ids = self
            .ids
            .as_ref()
            .map(|(r, d)| (id_value(r.as_bytes()), id_value(d.as_bytes())));
        match (self.preset, ids) {
            (Some(preset), Some((Ok(request), Ok(decision)))) => {
                *h = preset.hyper_fields();
                // The placeholders are the map's last two values, in the
                // order `make_hyper_fields` appended them.
                let placeholders = h.iter_mut().skip(preset.fields.len());
                for ((_, value), id) in placeholders.zip([request, decision]) {
                    *value = id;
                }
            }
            // Without ids, or with one that is not a field value (left
            // out, as `append` leaves it out): field by field.
            (preset, _) => {
                let preset = preset.map_or(&[][..], |p| &p.fields[..]);
                h.reserve(preset.len() + 2 + self.fields.len() + 1);
                for (name, value) in preset {
                    append(h, name, Bytes::copy_from_slice(value));
                }
                for (name, value) in self.id_fields() {
                    append(h, name, Bytes::copy_from_slice(value));
                }
            }
        }
        for (name, value) in self.fields {
            let value = match value {
                Value::Owned(v) => Bytes::from(v),
                other => Bytes::copy_from_slice(other.as_ref()),
            };
            append(h, name, value);
        }
        if self.close {
            h.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl Preset {
    /// The preset's fields as hyper's map, then the request and decision
    /// id fields with empty values: this thread's copy, cloned, or made
    /// and kept when the thread has none.
    fn hyper_fields(&self) -> HeaderMap {
        let kept = PRESETS.try_with(|kept| {
            // Not borrowed already: nothing below calls back into here.
            let mut kept = kept.try_borrow_mut().ok()?;
            if let Some((_, map)) = kept.iter().find(|(serial, _)| *serial == self.serial) {
                return Some(map.clone());
            }
            let map = self.make_hyper_fields();
            if kept.len() >= KEPT {
                kept.remove(0);
            }
            kept.push((self.serial, map.clone()));
            Some(map)
        });
        // A thread being torn down makes its own.
        kept.ok()
            .flatten()
            .unwrap_or_else(|| self.make_hyper_fields())
    }

    fn make_hyper_fields(&self) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(self.fields.len() + 2);
        for (name, value) in &self.fields {
            append(&mut h, name, Bytes::copy_from_slice(value));
        }
        append(&mut h, REQUEST_ID, Bytes::new());
        append(&mut h, DECISION_ID, Bytes::new());
        h
    }
}

/// `value` as a field value; a sensitive one (new on every response) is
/// never put in HTTP/2's header table, where it would evict a useful entry.
fn field_value(
    value: Bytes,
    sensitive: bool,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut v = HeaderValue::from_maybe_shared(value)?;
    v.set_sensitive(sensitive);
    Ok(v)
}

/// An id as a field value.
fn id_value(id: &[u8]) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    field_value(Bytes::copy_from_slice(id), true)
}

/// Appends a field of an answer to hyper's map (a value that is not a valid
/// field value is left out, as the compiled answers never hold one).
fn append(h: &mut HeaderMap, name: &'static str, value: Bytes) {
    if let Ok(v) = field_value(value, ONCE.contains(&name)) {
        h.append(HeaderName::from_static(name), v);
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::proxy::request_id::Id;

    fn preset() -> Preset {
        Preset::new(vec![
            ("content-type", b"application/json"[..].into()),
            ("vary", b"Accept"[..].into()),
            ("x-portalgate-rule", b"r1"[..].into()),
            ("vary", b"Accept-Language"[..].into()),
        ])
    }

    /// Every field as (name, value, sensitive), in the map's order.
    fn fields(h: &HeaderMap) -> Vec<(String, String, bool)> {
        h.iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value, v.is_sensitive())
            })
            .collect()
    }

    /// What the kept map gives is what appending each field gives, on
    /// the first answer (made) and the next (cloned), with each answer's
    /// own ids; a preset made again (a reload) is its own.
    #[test]
    fn a_kept_preset_gives_the_fields_appended_one_by_one() {
        let p = preset();
        for _ in 0..3 {
            let ids = (Id::new(), Id::new());
            let (request, decision) = (ids.0.as_str().to_owned(), ids.1.as_str().to_owned());
            let mut a = Answer::preset(StatusCode::FOUND, &p, Vec::new(), ids.clone());
            a.field("location", &b"https://portal.azure.de/"[..]);
            let resp = a.clone().into_response();
            // The same answer through the path that appends each field.
            let mut plain = HeaderMap::new();
            for (name, value) in &p.fields {
                append(&mut plain, name, Bytes::copy_from_slice(value));
            }
            append(&mut plain, REQUEST_ID, Bytes::from(request.clone()));
            append(&mut plain, DECISION_ID, Bytes::from(decision.clone()));
            append(
                &mut plain,
                "location",
                Bytes::from_static(b"https://portal.azure.de/"),
            );
            assert_eq!(fields(resp.headers()), fields(&plain));
            assert_eq!(resp.headers()[REQUEST_ID], request.as_str());
            assert_eq!(resp.headers()[DECISION_ID], decision.as_str());
            assert!(resp.headers()[DECISION_ID].is_sensitive());
            assert_eq!(resp.headers().get_all("vary").iter().count(), 2);
        }
        // Equal fields, another preset: its own entry, its own values.
        let other = Preset::new(vec![("content-type", b"text/html"[..].into())]);
        let resp = Answer::preset(StatusCode::OK, &other, Vec::new(), (Id::new(), Id::new()))
            .into_response();
        assert_eq!(resp.headers()["content-type"], "text/html");
        assert_eq!(resp.headers().len(), 3);
    }

    /// More presets than a thread keeps: each still answers with its own
    /// fields (the oldest is made again).
    #[test]
    fn presets_beyond_those_kept_are_made_again() {
        let presets: Vec<Preset> = (0..KEPT + 4)
            .map(|i| {
                Preset::new(vec![(
                    "x-portalgate-rule",
                    format!("r{i}").into_bytes().into(),
                )])
            })
            .collect();
        for _ in 0..2 {
            for (i, p) in presets.iter().enumerate() {
                let resp = Answer::preset(StatusCode::OK, p, Vec::new(), (Id::new(), Id::new()))
                    .into_response();
                assert_eq!(
                    resp.headers()["x-portalgate-rule"],
                    format!("r{i}").as_str()
                );
            }
        }
        PRESETS.with(|kept| assert_eq!(kept.borrow().len(), KEPT));
    }

    /// A request id the client sent (and the proxy kept) is the one sent
    /// back, through the kept map as through any other.
    #[test]
    fn a_kept_client_request_id_is_sent_back() {
        let p = preset();
        let ids = (Id::for_request(Some(b"client-id-7")), Id::new());
        let resp = Answer::preset(StatusCode::FORBIDDEN, &p, Vec::new(), ids).into_response();
        assert_eq!(resp.headers()[REQUEST_ID], "client-id-7");
        assert_eq!(resp.headers()[DECISION_ID].len(), 32);
    }

    /// A preset answer whose ids were taken off sends none.
    #[test]
    fn a_preset_answer_without_ids_sends_none() {
        let p = preset();
        let mut a = Answer::preset(StatusCode::OK, &p, Vec::new(), (Id::new(), Id::new()));
        a.ids = None;
        a.close = true;
        let resp = a.into_response();
        assert!(resp.headers().get(REQUEST_ID).is_none());
        assert_eq!(resp.headers()["connection"], "close");
        assert_eq!(resp.headers().len(), 5);
    }
}
