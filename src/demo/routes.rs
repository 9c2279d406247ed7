//! Routes of the demo backend.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

type Resp = Response<Full<Bytes>>;

/// Answers one request.
pub async fn handle(req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    // Read (and drop) the body, bounded, so keep-alive stays usable.
    let body_len = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => 0,
    };
    let path = parts.uri.path().to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let m = &parts.method;
    let mut resp = match (m, segs.as_slice()) {
        (&Method::GET, []) => html("Partner portal (demo)", "<p>Welcome to the demo partner portal.</p>\
             <ul><li><a href=\"/dashboard/account/usermanagement\">Account settings → User management</a></li></ul>"),
        (&Method::GET, ["dashboard", "account", "usermanagement"]) => html(
            "User management",
            "<p>Partner users of your organisation.</p><table><tr><td>Adele Vance</td><td>Admin agent</td></tr></table>",
        ),
        (&Method::GET, ["dashboard", "customers", c, "users"]) => html(
            "Users and licenses",
            &format!("<p>Users and licenses of customer <code>{c}</code>.</p>"),
        ),
        (_, ["v1", "customers", c, rest @ ..]) => api(m, c, rest, body_len),
        _ => error(StatusCode::NOT_FOUND, 404, "The requested resource was not found."),
    };
    let h = resp.headers_mut();
    h.insert("x-demo-backend", HeaderValue::from_static("reached"));
    for name in ["ms-requestid", "ms-correlationid"] {
        if let Some(v) = parts.headers.get(name) {
            h.insert(name, v.clone());
        }
    }
    resp
}

fn api(m: &Method, customer: &str, rest: &[&str], body_len: usize) -> Resp {
    match (m, rest) {
        (&Method::GET, []) => ok(json!({
            "id": customer,
            "companyProfile": {"tenantId": customer, "companyName": "Contoso (demo)"},
            "attributes": {"objectType": "Customer"}
        })),
        (&Method::GET, ["users"]) => ok(collection(vec![
            user("7f4b1c2e-0000-4000-8000-000000000001", "Adele Vance"),
            user("7f4b1c2e-0000-4000-8000-000000000002", "Alex Wilber"),
        ])),
        (&Method::POST, ["users"]) => {
            created(user("7f4b1c2e-0000-4000-8000-000000000003", "New User"))
        }
        (&Method::GET, ["users", u]) => ok(user(u, "Adele Vance")),
        (&Method::PATCH, ["users", u]) => ok(
            json!({"id": u, "state": "active", "bodyBytes": body_len, "attributes": {"objectType": "CustomerUser"}}),
        ),
        (&Method::DELETE, ["users", _]) => empty(StatusCode::NO_CONTENT),
        (&Method::GET, ["users", _, "licenses"]) => ok(collection(vec![json!({
            "productSku": {"id": "c7df2760-2c81-4ef7-b578-5b5392b571df", "name": "Office 365 E5", "skuPartNumber": "ENTERPRISEPREMIUM"},
            "attributes": {"objectType": "License"}
        })])),
        (&Method::POST, ["users", _, "licenseupdates"]) => created(json!({
            "licensesToAssign": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}],
            "licenseWarnings": [],
            "attributes": {"objectType": "LicenseUpdate"}
        })),
        (&Method::GET, ["subscribedskus"]) => ok(collection(vec![json!({
            "availableUnits": 10, "activeUnits": 25, "consumedUnits": 15,
            "productSku": {"id": "c7df2760-2c81-4ef7-b578-5b5392b571df", "name": "Office 365 E5"},
            "attributes": {"objectType": "SubscribedSku"}
        })])),
        (&Method::GET, ["directoryroles"]) => ok(collection(vec![json!({
            "id": "62e90394-69f5-4237-9190-012177145e10", "name": "Company Administrator",
            "attributes": {"objectType": "DirectoryRole"}
        })])),
        (&Method::GET, ["directoryroles", _, "usermembers"]) => ok(collection(vec![json!({
            "id": "7f4b1c2e-0000-4000-8000-000000000001", "displayName": "Adele Vance",
            "attributes": {"objectType": "UserMember"}
        })])),
        (&Method::POST, ["directoryroles", r, "usermembers"]) => created(json!({
            "id": "7f4b1c2e-0000-4000-8000-000000000002", "roleId": r,
            "attributes": {"objectType": "UserMember"}
        })),
        (&Method::DELETE, ["directoryroles", _, "usermembers", _]) => empty(StatusCode::NO_CONTENT),
        _ => error(
            StatusCode::NOT_FOUND,
            404,
            "The requested resource was not found.",
        ),
    }
}

fn user(id: &str, name: &str) -> Value {
    let upn = name.to_ascii_lowercase().replace(' ', ".") + "@contoso.example";
    json!({
        "id": id, "displayName": name, "userPrincipalName": upn,
        "userDomainType": "none", "state": "active",
        "attributes": {"objectType": "CustomerUser"}
    })
}

fn collection(items: Vec<Value>) -> Value {
    json!({"totalCount": items.len(), "items": items, "attributes": {"objectType": "Collection"}})
}

fn with(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn ok(v: Value) -> Resp {
    with(StatusCode::OK, "application/json", v.to_string())
}

fn created(v: Value) -> Resp {
    with(StatusCode::CREATED, "application/json", v.to_string())
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn error(status: StatusCode, code: u16, description: &str) -> Resp {
    with(
        status,
        "application/json",
        json!({"code": code, "description": description, "data": [], "source": "PartnerFD"})
            .to_string(),
    )
}

fn html(title: &str, body: &str) -> Resp {
    with(
        StatusCode::OK,
        "text/html; charset=utf-8",
        format!("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>\n"),
    )
}
