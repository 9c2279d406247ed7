//! Attempts to slip a Germany user-management request past the rules. Each
//! must be intercepted (403/303) or rejected (400), and none may reach the
//! backend.

use crate::policy::{germany, DE};
use crate::support::client::{raw, status_of};

/// Sends a raw request; returns the status.
async fn status(addr: std::net::SocketAddr, request: String) -> u16 {
    status_of(&raw(addr, request.as_bytes()).await)
}

#[tokio::test]
async fn path_tricks_are_intercepted_or_rejected() {
    let (backend, proxy) = germany().await;
    let upper = DE.to_uppercase();
    let intercepted = [
        format!("/v1/customers/{DE}/./users"),
        format!("/v1/customers/other/../{DE}/users"),
        format!("/v1/customers/{DE}/x/%2e%2e/users"),
        format!("/v1/customers/{DE}/x/%2E%2e/users"),
        format!("/v1/customers/{DE}/x/.%2e/users"),
        format!("/v1//customers//{DE}///users"),
        format!("/v1/customers/{DE}/users/"),
        format!("/v1/customers/{DE}/%75%73%65%72%73"),
        format!("/V1/CUSTOMERS/{upper}/USERS"),
        format!("/v1/Customers/{DE}/Users"),
        format!("/v1/customers/%7B{DE}%7D/users"),
        "/v1/customers/%30a1b2c3d-0000-4000-8000-00000000de01/users".to_string(),
        format!("/v1/customers/{DE}/users?$select=id"),
        format!("/../v1/customers/{DE}/users"),
        // Folded as IIS/ASP.NET read them: fullwidth, long s, trailing
        // dots and spaces, zero-width characters, dotless i.
        format!("/v1/%EF%BD%83ustomers/{DE}/users"),
        format!("/v1/customers/{DE}/u%C5%BFers"),
        format!("/v1/customers./{DE}/users."),
        format!("/v1/customers/{DE}/users%20"),
        format!("/v1/cust%E2%80%8Bomers/{DE}/users"),
        format!("/v1/customers/{DE}/users%EF%BB%BF"),
        format!("/v1/customers/{DE}/%EF%BD%95%EF%BD%93%EF%BD%85%EF%BD%92%EF%BD%93"),
        format!("/v1/customers/{DE}./users"),
    ];
    for path in &intercepted {
        let s = status(
            proxy.addr,
            format!("POST {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"),
        )
        .await;
        assert_eq!(s, 403, "{path} was not intercepted");
    }
    let rejected = [
        format!("//v1/customers/{DE}/users"),
        format!("/..//v1/customers/{DE}/users"),
        format!("/v1/customers/{DE}/.../users"),
        format!("/v1/customers/{DE}/%E2%80%8B/users"),
        format!("/v1/customers/{DE}/users;jsessionid=1"),
        format!("/v1/customers/{DE};x/users"),
        format!("/v1/customers/{DE}%2Fusers"),
        format!("/v1/customers/{DE}/users%2F"),
        format!("/v1/customers/{DE}%5Cusers"),
        format!("/v1/customers/{DE}/%252e%252e/users"),
        format!("/v1/customers/{DE}/users%00"),
        format!("/v1/customers/{DE}/users%3F"),
        format!("/v1/customers/{DE}/users%23"),
        format!("/v1/customers/{DE}/%C0%AE%C0%AE/users"),
        format!("/v1/customers/{DE}/users%"),
        "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de0g/users".to_string(),
        "/v1/customers/0a1b2c3d-0000-4000-8000-00000000de01x/users".to_string(),
    ];
    for path in &rejected {
        let s = status(
            proxy.addr,
            format!("POST {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"),
        )
        .await;
        assert_eq!(s, 400, "{path} was not rejected");
    }
    assert!(
        backend.seen().is_empty(),
        "reached the backend: {:?}",
        backend.seen()
    );
}

#[tokio::test]
async fn host_and_request_target_tricks_are_intercepted_or_rejected() {
    let (backend, proxy) = germany().await;
    let post = |target: &str, hosts: &[&str]| {
        let mut r = format!("POST {target} HTTP/1.1\r\n");
        for h in hosts {
            r += &format!("Host: {h}\r\n");
        }
        r + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    };
    let users = format!("/v1/customers/{DE}/users");
    // Absolute form that agrees with Host: judged like origin form.
    assert_eq!(
        status(
            proxy.addr,
            post(&format!("http://portal{users}"), &["portal"])
        )
        .await,
        403
    );
    // Absolute form naming another authority than Host, duplicate Host, no Host.
    assert_eq!(
        status(
            proxy.addr,
            post(&format!("http://other{users}"), &["portal"])
        )
        .await,
        400
    );
    assert_eq!(
        status(proxy.addr, post(&users, &["portal", "other"])).await,
        400
    );
    assert_eq!(status(proxy.addr, post(&users, &[])).await, 400);
    // The Germany front end is Germany whatever its spelling.
    for host in [
        "partnercenter.microsoftonline.de",
        "PARTNERCENTER.MICROSOFTONLINE.DE",
        "partnercenter.microsoftonline.de.",
        "partnercenter.microsoftonline.de:443",
    ] {
        let r = raw(
            proxy.addr,
            format!("GET /dashboard/account/usermanagement HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(status_of(&r), 303, "{host}: {r}");
    }
    assert!(
        backend.seen().is_empty(),
        "reached the backend: {:?}",
        backend.seen()
    );
}

#[tokio::test]
async fn method_and_body_tricks_do_not_bypass_the_password_rule() {
    let (backend, proxy) = germany().await;
    let path = format!("/v1/customers/{DE}/users/u1");
    let body = "{\"passwordProfile\":{\"password\":\"S3cret!\"}}";
    let field = |name: &str| format!("{{\"{name}\":{{\"password\":\"S3cret!\"}}}}");
    for (ct, payload) in [
        // Every JSON spelling of the content type, and surrounding whitespace.
        ("application/json", body.to_string()),
        ("application/json; charset=utf-8", body.to_string()),
        ("application/merge-patch+json", body.to_string()),
        ("application/json", format!("  \n{body}\n  ")),
        // A byte order mark, which ASP.NET's JSON reader skips.
        ("application/json", format!("\u{FEFF}{body}")),
        // Every spelling of the field that a case-insensitive binder
        // (ASP.NET) reads as `passwordProfile` is the password rule's, not
        // only the one the pack names.
        ("application/json", field("PasswordProfile")),
        ("application/json", field("PASSWORDPROFILE")),
        ("application/json", field("passwordprofile")),
        ("application/json", field("password\\u0050rofile")),
        ("application/json", field("pa\u{17F}swordProfile")),
    ] {
        let r = raw(
            proxy.addr,
            format!(
                "PATCH {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{payload}",
                payload.len()
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(status_of(&r), 403, "{ct} {payload}: {r}");
        assert!(r.contains("reset-password"), "{ct} {payload}: {r}");
    }
    // Chunked framing is read the same way.
    let chunked = format!(
        "PATCH {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let r = raw(proxy.addr, chunked.as_bytes()).await;
    assert_eq!(status_of(&r), 403, "{r}");
    assert!(
        backend.seen().is_empty(),
        "reached the backend: {:?}",
        backend.seen()
    );
}
