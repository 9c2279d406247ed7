//! The backend receives exactly the canonical path; paths without an
//! unambiguous form are answered 400 and never forwarded.

use crate::support::client::{raw, status_of};
use crate::support::*;

#[tokio::test]
async fn the_backend_receives_the_canonical_path_and_the_query_unchanged() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    let cases = [
        (
            "/v1/./customers//x/%75sers?$filter=a%2Fb",
            "/v1/customers/x/users?$filter=a%2Fb",
        ),
        (
            "/v1/customers/%2e%2e/customers/x/users",
            "/v1/customers/x/users",
        ),
        ("/v1/customers/x/a%3ab", "/v1/customers/x/a%3Ab"),
        ("/v1//customers/x/users/", "/v1/customers/x/users/"),
        ("/v1/customers/x/users", "/v1/customers/x/users"),
    ];
    for (sent, _) in cases {
        let reply = raw(
            proxy.addr,
            format!("GET {sent} HTTP/1.1\r\nHost: portal\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status_of(&reply), 200, "{sent}: {reply}");
    }
    let seen: Vec<String> = backend.seen().into_iter().map(|s| s.uri).collect();
    let expected: Vec<&str> = cases.iter().map(|c| c.1).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn ambiguous_paths_are_400_and_never_forwarded() {
    let backend = Backend::start().await;
    let proxy = ProxyBuilder::new(&backend.url()).start().await;
    for path in [
        "/v1/customers%2Fx/users",
        "/v1/customers/x%2fusers",
        "/v1/customers/x/users%5C..",
        "/v1/customers/x/users%3Fa",
        "/v1/customers/x/users%23a",
        "/v1/customers/x/users%3B",
        "/v1/customers/x/users;jsessionid=1",
        "/v1/customers/%252e%252e/x",
        "/v1/customers/x%00/users",
        "/v1/customers/%C0%AE%C0%AE/x",
        "/v1/customers/%ZZ",
        "//portal.example/v1/customers/x/users",
        "/a/..//v1/customers/x/users",
    ] {
        let reply = raw(
            proxy.addr,
            format!("GET {path} HTTP/1.1\r\nHost: portal\r\nAccept: application/json\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(status_of(&reply), 400, "{path}: {reply}");
        assert!(
            reply.contains("\"code\":\"ambiguous_path\""),
            "{path}: {reply}"
        );
    }
    assert!(backend.seen().is_empty(), "{:?}", backend.seen());
}
