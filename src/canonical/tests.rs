use super::*;

fn ok(raw: &str) -> String {
    canonical_path(raw)
        .unwrap_or_else(|e| panic!("{raw:?} rejected: {e}"))
        .as_str()
        .to_string()
}

fn rejected(raw: &str) -> PathRejection {
    canonical_path(raw).expect_err(raw)
}

#[test]
fn dot_segments_are_resolved_including_encoded_ones() {
    assert_eq!(
        ok("/v1/customers/../customers/x/users"),
        "/v1/customers/x/users"
    );
    assert_eq!(ok("/v1/./customers/x"), "/v1/customers/x");
    assert_eq!(ok("/v1/customers/%2e%2e/customers/x"), "/v1/customers/x");
    assert_eq!(ok("/v1/customers/%2E./x"), "/v1/x");
    assert_eq!(ok("/v1/customers/.%2E/x"), "/v1/x");
    assert_eq!(ok("/v1/%2e/x"), "/v1/x");
    assert_eq!(ok("/../../etc"), "/etc");
    assert_eq!(ok("/a/b/.."), "/a/");
    assert_eq!(ok("/a/b/."), "/a/b/");
    assert_eq!(ok("/.."), "/");
}

#[test]
fn a_leading_empty_segment_is_a_network_path() {
    for raw in [
        "//v1",
        "//",
        "//portal.example/v1",
        "/..//v1",
        "/a/..//v1",
        "/.//v1",
    ] {
        assert_eq!(rejected(raw), PathRejection::NetworkPath, "{raw}");
    }
}

#[test]
fn slashes_are_merged_and_trailing_slash_kept() {
    assert_eq!(ok("/v1///customers//x/"), "/v1/customers/x/");
    assert_eq!(ok("/"), "/");
    assert_eq!(ok("/v1/.."), "/");
    assert_eq!(ok("/v1/users/"), "/v1/users/");
}

#[test]
fn unreserved_escapes_are_decoded_and_others_uppercased() {
    assert_eq!(ok("/v1/%75%73%65%72%73"), "/v1/users");
    assert_eq!(ok("/v1/%7e%2D%5f"), "/v1/~-_");
    assert_eq!(ok("/v1/a%3ab"), "/v1/a%3Ab");
    assert_eq!(ok("/v1/caf%c3%a9"), "/v1/caf%C3%A9");
    assert_eq!(ok("/v1/a:b@c!$&'()*+,="), "/v1/a:b@c!$&'()*+,=");
}

#[test]
fn raw_characters_outside_pchar_are_encoded() {
    assert_eq!(ok("/v1/a b"), "/v1/a%20b");
    assert_eq!(ok("/v1/{x}|^`\"<>"), "/v1/%7Bx%7D%7C%5E%60%22%3C%3E");
    assert_eq!(ok("/v1/café"), "/v1/caf%C3%A9");
}

#[test]
fn ambiguous_encodings_are_rejected() {
    assert_eq!(
        rejected("/v1/customers%2Fx"),
        PathRejection::EncodedSeparator("%2F")
    );
    assert_eq!(
        rejected("/v1/customers%2fx"),
        PathRejection::EncodedSeparator("%2F")
    );
    assert_eq!(
        rejected("/v1/a%5Cb"),
        PathRejection::EncodedSeparator("%5C")
    );
    assert_eq!(
        rejected("/v1/a%3Fb"),
        PathRejection::EncodedSeparator("%3F")
    );
    assert_eq!(
        rejected("/v1/a%23b"),
        PathRejection::EncodedSeparator("%23")
    );
    assert_eq!(
        rejected("/v1/a%3bb"),
        PathRejection::EncodedSeparator("%3B")
    );
    assert_eq!(rejected("/v1/%252e%252e/x"), PathRejection::DoubleEncoding);
    assert_eq!(rejected("/v1/a%00b"), PathRejection::ControlCharacter);
    assert_eq!(rejected("/v1/a%0ab"), PathRejection::ControlCharacter);
    assert_eq!(rejected("/v1/a%7Fb"), PathRejection::ControlCharacter);
    assert_eq!(rejected("/v1/a\u{1}b"), PathRejection::ControlCharacter);
    assert_eq!(rejected("/v1\\users"), PathRejection::Backslash);
    assert_eq!(rejected("/v1/users;x=1"), PathRejection::Semicolon);
    assert_eq!(rejected("/v1/a?b"), PathRejection::Delimiter);
    assert_eq!(rejected("/v1/a#b"), PathRejection::Delimiter);
    assert_eq!(rejected("/v1/%zz"), PathRejection::MalformedEscape);
    assert_eq!(rejected("/v1/%4"), PathRejection::MalformedEscape);
    assert_eq!(rejected("/v1/%"), PathRejection::MalformedEscape);
    assert_eq!(rejected("v1/users"), PathRejection::NotAbsolute);
    assert_eq!(rejected(""), PathRejection::NotAbsolute);
}

#[test]
fn invalid_and_overlong_utf8_is_rejected() {
    assert_eq!(
        rejected("/v1/%C0%AF"),
        PathRejection::InvalidUtf8,
        "overlong '/'"
    );
    assert_eq!(
        rejected("/v1/%C0%AE%C0%AE/x"),
        PathRejection::InvalidUtf8,
        "overlong '..'"
    );
    assert_eq!(rejected("/v1/%E0%80%AF"), PathRejection::InvalidUtf8);
    assert_eq!(rejected("/v1/%FF"), PathRejection::InvalidUtf8);
    assert_eq!(
        rejected("/v1/%C3"),
        PathRejection::InvalidUtf8,
        "truncated sequence"
    );
    assert_eq!(
        rejected("/v1/%ED%A0%80"),
        PathRejection::InvalidUtf8,
        "surrogate"
    );
}

#[test]
fn canonical_input_is_borrowed_and_others_are_not() {
    assert!(canonical_path("/v1/customers/x/users")
        .unwrap()
        .is_unchanged());
    assert!(canonical_path("/v1/users/").unwrap().is_unchanged());
    assert!(canonical_path("/").unwrap().is_unchanged());
    for changed in [
        "/v1//x",
        "/v1/./x",
        "/v1/%41",
        "/v1/a%3ab",
        "/v1/a b",
        "/v1/..",
    ] {
        assert!(
            !canonical_path(changed).unwrap().is_unchanged(),
            "{changed}"
        );
    }
}

#[test]
fn segments_skip_the_trailing_slash() {
    let p = canonical_path("/v1/customers/x/").unwrap();
    assert_eq!(p.segments().collect::<Vec<_>>(), ["v1", "customers", "x"]);
}

#[test]
fn hosts() {
    assert_eq!(canonical_host("Portal.Example.DE."), "portal.example.de");
    assert_eq!(
        canonical_host("portal.example.de:8443"),
        "portal.example.de"
    );
    assert_eq!(canonical_host("[2001:DB8::1]:443"), "[2001:db8::1]");
    assert_eq!(canonical_host("[::1]"), "[::1]");
    assert_eq!(canonical_host("127.0.0.1:80"), "127.0.0.1");
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;

    /// The host reading as first written (split at the last colon, trim
    /// dots, lower): the one-pass reading must agree with it.
    fn host_as_split(raw: &str) -> String {
        let host = if let Some(rest) = raw.strip_prefix('[') {
            match rest.find(']') {
                Some(end) => &raw[..end + 2],
                None => raw,
            }
        } else {
            raw.rsplit_once(':').map_or(raw, |(h, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    raw
                }
            })
        };
        host.trim_end_matches('.').to_ascii_lowercase()
    }

    proptest! {
        #[test]
        fn hosts_read_as_split(raw in "[\\[\\]:.aZ0-9é]{0,12}") {
            prop_assert_eq!(canonical_host(&raw).into_owned(), host_as_split(&raw), "{:?}", raw);
        }
    }

    /// Paths built from the pieces that make canonicalisation hard.
    fn tricky_path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_string()),
            Just("//".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("%2E".to_string()),
            Just("%2f".to_string()),
            Just("%25".to_string()),
            Just("%41".to_string()),
            Just("%c3%a9".to_string()),
            Just("%C0%AE".to_string()),
            Just(";".to_string()),
            Just("\\".to_string()),
            Just("%".to_string()),
            Just("é".to_string()),
            Just(" ".to_string()),
            "[a-zA-Z0-9:@!$&'()*+,=~_-]{1,6}",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| format!("/{}", v.concat()))
    }

    #[test]
    fn a_double_slash_is_found_at_every_position() {
        for len in 0..=20 {
            for at in 0..len {
                for second in [at + 1, at + 2] {
                    let mut b = vec![b'a'; len];
                    b[at] = b'/';
                    if let Some(x) = b.get_mut(second) {
                        *x = b'/';
                    }
                    let want = b.windows(2).any(|w| w == b"//");
                    assert_eq!(double_slash(&b), want, "{:?}", String::from_utf8_lossy(&b));
                }
            }
        }
        // Bytes next to the slash in value (`.` 0x2e, `0` 0x30, 0xaf).
        assert!(!double_slash(b"/./0/\xaf/./0/.0/"));
        assert!(!double_slash(&[
            b'/',
            0xaf,
            b'/',
            0x2e,
            b'/',
            0x30,
            b'/',
            0xaf,
            b'/',
            0x2f ^ 0x80
        ]));
    }

    fn quick_agrees(raw: &str) -> Result<(), TestCaseError> {
        // The pass-through codec's shortcut, for a path it may hand over:
        // the same answer as the full reading.
        if raw.bytes().all(|b| PLAIN_PATH[usize::from(b)]) {
            prop_assert_eq!(
                canonical_plain_path(raw).map(|p| p.as_str().to_owned()),
                canonical_path(raw).map(|p| p.as_str().to_owned()),
                "{}",
                raw
            );
        }
        let quick = already_canonical(raw.as_bytes());
        let long = canonicalise(raw).is_ok_and(|p| p.as_str() == raw);
        prop_assert!(!quick || long, "quick but not canonical: {}", raw);
        if !raw.contains('%') {
            prop_assert_eq!(quick, long, "{}", raw);
        }
        Ok(())
    }

    #[test]
    fn the_quick_check_on_escapes_dots_and_slashes() {
        for raw in [
            "/%20",
            "/",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/...",
            "/a/.b",
            "/a/b.",
            "/a/../b",
            "/a/./",
            "/.well-known/x",
            "/v1/customers/x/users",
            // Without a dot: the branch-free pass.
            "/v1/customers//users",
            "/v1/customers/x/users/",
            "/v1/customers/x/users//",
            "///",
            "/a%2fb",
            "/a b",
            "/a;b",
            "/a\\b",
            "/caf\u{e9}",
        ] {
            quick_agrees(raw).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn idempotent(raw in tricky_path()) {
            if let Ok(once) = canonical_path(&raw) {
                let twice = canonical_path(once.as_str()).expect("a canonical path is accepted");
                prop_assert!(twice.is_unchanged(), "canonical output was changed again");
                prop_assert_eq!(once.as_str(), twice.as_str());
            }
        }

        #[test]
        fn no_dot_segment_or_encoded_separator_survives(raw in tricky_path()) {
            if let Ok(p) = canonical_path(&raw) {
                let s = p.as_str();
                prop_assert!(s.starts_with('/'));
                prop_assert!(!s.contains("//"));
                for seg in s.split('/') {
                    prop_assert!(seg != "." && seg != "..", "dot segment in {}", s);
                }
                let upper = s.to_ascii_uppercase();
                for bad in ["%2F", "%5C", "%3F", "%23", "%3B", "%25", "%2E", "\\", ";"] {
                    prop_assert!(!upper.contains(bad), "{} in {}", bad, s);
                }
            }
        }

        /// The quick check says "canonical already" only when the long way
        /// would give the path back unchanged, and, for a path without
        /// escapes (which it leaves to the long way), exactly then.
        #[test]
        fn the_quick_check_agrees_with_the_long_way(raw in tricky_path()) {
            quick_agrees(&raw)?;
        }

        #[test]
        fn the_quick_check_agrees_on_any_string(raw in "/[a-z./%;@~-]{0,12}") {
            quick_agrees(&raw)?;
        }

        #[test]
        fn any_string_never_panics_and_output_is_ascii(raw in "\\PC{0,40}") {
            if let Ok(p) = canonical_path(&raw) {
                prop_assert!(p.as_str().is_ascii());
                let again = canonical_path(p.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), p.as_str());
            }
        }
    }
}
