//! Fuzzes the path canonicaliser: it never panics, its output is accepted
//! again unchanged, and no dot segment or encoded separator survives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portalgate::canonical::canonical_path;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = canonical_path(raw) else {
        return;
    };
    let again = canonical_path(path.as_str()).expect("a canonical path is accepted");
    assert_eq!(path, again, "not idempotent for {raw:?}");
    let s = path.as_str();
    assert!(s.starts_with('/') && !s.contains("//"), "{s:?}");
    assert!(!s.split('/').any(|seg| seg == "." || seg == ".."), "{s:?}");
    let upper = s.to_ascii_uppercase();
    for bad in ["%2F", "%5C", "%3F", "%23", "%3B", "%25", "%2E", "\\", ";", "?", "#"] {
        assert!(!upper.contains(bad), "{bad} in {s:?}");
    }
});
