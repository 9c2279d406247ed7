//! Fuzzes the judgement against the reference model of a lenient backend
//! (`tests/it/lenient_model.rs`): whatever method and request target the
//! input spells, if the model routes it to a protected Germany endpoint for
//! the demo's Germany tenant, the judgement must not plan a forward.
//!
//! Input: a method, a space, and a request target (origin-form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portalgate::head::HeadView;
use portalgate::proxy::judge::Plan;
use portalgate::proxy::ConnInfo;

#[path = "../../tests/it/lenient_model.rs"]
#[allow(dead_code)]
mod model;

/// The demo's Germany tenant.
const DE: &str = "0a1b2c3d-0000-4000-8000-00000000de01";

#[path = "demo_judge.rs"]
mod demo_judge;
use demo_judge::judge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((method, target)) = text.split_once(' ') else {
        return;
    };
    // What an HTTP/1.1 request line can carry: a token method, a target of
    // visible ASCII starting with '/'.
    let Ok(m) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return;
    }
    let host = [httparse::Header {
        name: "Host",
        value: b"portal",
    }];
    let view = HeadView::of_raw(&m, target, &host);
    let conn = ConnInfo {
        peer: "127.0.0.1:0".parse().expect("address"),
        tls: false,
    };
    let forwards = matches!(judge().decide(&view, &conn).plan, Plan::Forward(_));
    let path = target.split('?').next().unwrap_or("/");
    if model::protected(method, path) == model::guid(DE) {
        assert!(!forwards, "{method} {target} reached a protected endpoint");
    }
});
