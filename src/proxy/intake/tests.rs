use super::*;

fn req(pairs: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().uri("/v1/x");
    for (k, v) in pairs {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn limits() -> Limits {
    Limits {
        max_request_body_bytes: Some(10),
        ..Limits::default()
    }
}

fn err(pairs: &[(&str, &str)]) -> ProxyError {
    check(&req(pairs), &limits()).unwrap_err()
}

#[test]
fn ambiguous_framing_is_rejected() {
    let h = ("host", "a");
    assert_eq!(
        err(&[h, ("content-length", "3"), ("transfer-encoding", "chunked")]).status(),
        400
    );
    assert_eq!(
        err(&[h, ("content-length", "3"), ("content-length", "3")]).status(),
        400
    );
    assert_eq!(
        err(&[h, ("transfer-encoding", "gzip, chunked")]).status(),
        400
    );
    assert_eq!(
        err(&[
            h,
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked")
        ])
        .status(),
        400
    );
    assert_eq!(err(&[h, ("content-length", "+3")]).status(), 400);
    assert!(check(&req(&[h, ("transfer-encoding", "Chunked")]), &limits()).is_ok());
}

#[test]
fn body_limit_by_content_length() {
    assert_eq!(
        err(&[("host", "a"), ("content-length", "11")]).status(),
        413
    );
    assert!(check(&req(&[("host", "a"), ("content-length", "10")]), &limits()).is_ok());
}

#[test]
fn host_rules() {
    assert_eq!(err(&[]).status(), 400, "HTTP/1.1 without Host");
    assert_eq!(err(&[("host", "a"), ("host", "b")]).status(), 400);
    assert_eq!(err(&[("host", "a b")]).status(), 400);
    let absolute = Request::builder()
        .uri("http://other.example/v1/x")
        .header("host", "portal.example")
        .body(())
        .unwrap();
    assert_eq!(check(&absolute, &limits()).unwrap_err().status(), 400);
    let same = Request::builder()
        .uri("http://Portal.Example/v1/x")
        .header("host", "portal.example")
        .body(())
        .unwrap();
    assert!(check(&same, &limits()).is_ok());
}

#[test]
fn upgrade_needs_connection_token() {
    let c = check(
        &req(&[
            ("host", "a"),
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]),
        &limits(),
    )
    .unwrap();
    assert!(c.upgrade);
    let c = check(&req(&[("host", "a"), ("upgrade", "websocket")]), &limits()).unwrap();
    assert!(!c.upgrade);
}
