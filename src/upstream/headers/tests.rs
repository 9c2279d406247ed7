use super::*;

// The HeaderMap operations of hyper's path, as the one rewrite does them.

/// The request rewrite applied to `h` in place; `Host` and the request id
/// are what the tests below do not look at.
fn rewrite(h: &mut HeaderMap, hop: &Hop<'_>, version: http::Version) {
    let mut out = HeaderMap::new();
    let rw = RequestRewrite {
        host: "portal",
        hop: *hop,
        via: via_token(version),
        request_id: b"rid",
        upgrade: None,
    };
    rewrite_request(Fields::Map(h), &rw, &mut out);
    *h = out;
}

/// Hop-by-hop removal as the response rewrite does it (without the fields
/// it adds); whether `Connection` listed `upgrade`.
fn strip_hop_by_hop(h: &mut HeaderMap) -> bool {
    let upgrade = Fields::Map(h).connection_lists("upgrade");
    let mut out = HeaderMap::new();
    rewrite_response(Fields::Map(h), &Marks::of(Fields::Map(h)), b"rid", &mut out);
    out.remove(header::VIA);
    out.remove(&X_REQUEST_ID);
    *h = out;
    upgrade
}

fn apply_forwarding(h: &mut HeaderMap, hop: &Hop<'_>) {
    rewrite(h, hop, http::Version::HTTP_11);
}

fn append_via(h: &mut HeaderMap, version: http::Version) {
    rewrite(h, &hop(false), version);
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn hop(trusted: bool) -> Hop<'static> {
    Hop {
        peer: "192.0.2.9".parse().unwrap(),
        trusted,
        proto: "https",
        host: Some("portal.example:8443"),
    }
}

#[test]
fn strips_standard_and_connection_named_headers() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret, Upgrade"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("proxy-authorization", "Basic abc"),
        ("upgrade", "websocket"),
        ("accept", "*/*"),
    ]);
    assert!(strip_hop_by_hop(&mut h));
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["accept"]);
}

#[test]
fn untrusted_peer_headers_are_replaced() {
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "evil"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    apply_forwarding(&mut h, &hop(false));
    assert_eq!(h["x-forwarded-for"], "192.0.2.9");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "portal.example:8443");
    assert_eq!(
        h["forwarded"],
        "for=192.0.2.9;host=\"portal.example:8443\";proto=https"
    );
}

#[test]
fn trusted_peer_headers_are_appended() {
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-for", "5.6.7.8"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "front.example"),
        ("forwarded", "for=1.2.3.4"),
    ]);
    apply_forwarding(&mut h, &hop(true));
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 192.0.2.9");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "front.example");
    assert_eq!(
        h["forwarded"],
        "for=1.2.3.4, for=192.0.2.9;host=\"portal.example:8443\";proto=https"
    );
}

#[test]
fn ipv6_peers_are_quoted_and_mapped_v4_unwrapped() {
    let mut h = HeaderMap::new();
    let mut hop6 = hop(false);
    hop6.peer = "2001:db8::1".parse().unwrap();
    hop6.host = None;
    apply_forwarding(&mut h, &hop6);
    assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=https");
    assert!(!h.contains_key("x-forwarded-host"));

    let mut h = HeaderMap::new();
    let mut mapped = hop(false);
    mapped.peer = "::ffff:192.0.2.1".parse().unwrap();
    apply_forwarding(&mut h, &mapped);
    assert_eq!(h["x-forwarded-for"], "192.0.2.1");
}

#[test]
fn via_is_appended() {
    let mut h = map(&[("via", "1.1 edge")]);
    append_via(&mut h, http::Version::HTTP_2);
    assert_eq!(h["via"], "1.1 edge, 2 portalgate");
    let mut h = HeaderMap::new();
    append_via(&mut h, http::Version::HTTP_11);
    assert_eq!(h["via"], "1.1 portalgate");
}

#[test]
fn content_length_is_kept_whatever_connection_names() {
    let fields = map(&[
        ("connection", "content-length, x-secret"),
        ("content-length", "3"),
        ("x-secret", "1"),
    ]);
    let mut out = Vec::new();
    let marks = Marks::of(Fields::Map(&fields));
    rewrite_response(Fields::Map(&fields), &marks, b"r", &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("content-length: 3\r\n"), "{text}");
    assert!(!text.contains("x-secret"), "{text}");
    let mut h = fields.clone();
    apply_forwarding(&mut h, &hop(false));
    assert_eq!(h["content-length"], "3");
}

#[test]
fn overrides_and_underscored_names_never_reach_the_backend() {
    let mut h = map(&[
        ("X-HTTP-Method-Override", "DELETE"),
        ("x-http-method", "PATCH"),
        ("X-Method-Override", "PUT"),
        ("X-Original-URL", "/v1/customers/x/users"),
        ("x-rewrite-url", "/v1/customers/x/users"),
        ("X_Tenant_Id", "0a1b2c3d-0000-4000-8000-00000000de01"),
        ("x_http_method_override", "DELETE"),
        ("x-tenant-id", "kept"),
        ("x-method", "kept"),
        ("accept", "*/*"),
    ]);
    apply_forwarding(&mut h, &hop(false));
    for gone in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-original-url",
        "x-rewrite-url",
        "x_tenant_id",
        "x_http_method_override",
    ] {
        assert!(!h.contains_key(gone), "{gone} forwarded");
    }
    assert_eq!(h["x-tenant-id"], "kept");
    assert_eq!(h["x-method"], "kept");
    assert_eq!(h["accept"], "*/*");
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    for v4 in [
        Ipv4Addr::new(0, 0, 0, 0),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(9, 10, 99, 100),
        Ipv4Addr::new(255, 201, 110, 19),
    ] {
        assert_eq!(ip_text(IpAddr::V4(v4)), v4.to_string());
    }
    for octet in 0..=255u8 {
        let v4 = Ipv4Addr::new(octet, 1, octet, 0);
        assert_eq!(ip_text(IpAddr::V4(v4)), v4.to_string());
    }
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(ip_text(v6), "::1");
}

#[test]
fn hops_read_once_agree_with_the_fields() {
    // A few tokens are held; past eight, each lookup reads the fields.
    let few = "keep-alive, X-Trace ,,upgrade";
    let many = (0..12)
        .map(|i| format!("x-t{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // One `Connection` field (read from the walk) and two (read again).
    let cases = ["", " ", few, &many, "content-length, X-T11"]
        .into_iter()
        .flat_map(|listed| [(listed, None), (listed, Some("x-second"))]);
    for (listed, second) in cases {
        let mut fields = vec![("connection", listed), ("x-trace", "1")];
        fields.extend(second.map(|s| ("connection", s)));
        let h = map(&fields);
        let fields = Fields::Map(&h);
        let hops = Hops::of(fields, &Marks::of(fields));
        for name in [
            "x-trace",
            "X-Second",
            "x-t0",
            "x-t11",
            "keep-alive",
            "te",
            "content-length",
            "x-other",
        ] {
            let want = is_hop_by_hop(name.as_bytes())
                || (fields.connection_lists(name) && !name.eq_ignore_ascii_case("content-length"));
            assert_eq!(hops.contains(name), want, "{listed:?} {name}");
        }
    }
}
