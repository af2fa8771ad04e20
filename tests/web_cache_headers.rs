//! What a browser may keep: pages and every `/api/*` answer (successes, refusals, errors)
//! are `Cache-Control: no-store`, scripts and styles only revalidated; logging out clears
//! the browser's cache (`Clear-Site-Data`); the CSP forbids plugins (`object-src 'none'`)
//! on pages and API answers alike.

mod common;

use common::*;
use reqwest::{Method, Response, StatusCode};
use serde_json::json;

const NO_STORE: &str = "no-store";

fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn assert_guarded(resp: &Response, what: &str, cache: &str) {
    assert_eq!(header(resp, "cache-control"), cache, "{what}");
    let csp = header(resp, "content-security-policy");
    assert!(csp.contains("object-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert_eq!(header(resp, "x-content-type-options"), "nosniff", "{what}");
}

#[tokio::test]
async fn pages_and_api_answers_are_never_stored() {
    let (picd, admin) = picd_with_admin().await;
    let anonymous = picd.client();
    for page in ["/", "/login", "/setup", "/portal", "/portal/invite"] {
        let resp = admin.get(page).await;
        assert_eq!(resp.status(), StatusCode::OK, "{page}");
        assert!(
            header(&resp, "content-type").starts_with("text/html"),
            "{page}"
        );
        assert_guarded(&resp, page, NO_STORE);
    }
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let resp = admin.get(asset).await;
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        assert_guarded(&resp, asset, "no-cache");
    }
    let peer = json!({ "name": "phone" });
    assert_eq!(
        admin
            .send_json(Method::POST, "/api/peers", &peer)
            .await
            .status(),
        StatusCode::CREATED
    );
    for (client, path, status) in [
        (&admin, "/api/auth/me", StatusCode::OK),
        (&admin, "/api/peers", StatusCode::OK),
        (&admin, "/api/peers/phone/config", StatusCode::OK),
        (&admin, "/api/peers/phone/qr", StatusCode::OK),
        (&admin, "/api/vault/ca.crt", StatusCode::OK),
        (&admin, "/api/peers/nobody", StatusCode::NOT_FOUND),
        (&admin, "/api/no-such-route", StatusCode::NOT_FOUND),
        (&admin, "/api/audit?limit=0", StatusCode::BAD_REQUEST),
        (&anonymous, "/api/peers", StatusCode::UNAUTHORIZED),
    ] {
        let resp = client.get(path).await;
        assert_eq!(resp.status(), status, "{path}");
        assert_guarded(&resp, path, NO_STORE);
        assert!(header(&resp, "clear-site-data").is_empty(), "{path}");
    }

    // Logging out tells the browser to drop what it cached, and is no-store itself.
    let resp = admin
        .send_json(Method::POST, "/api/auth/logout", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_guarded(&resp, "logout", NO_STORE);
    assert_eq!(header(&resp, "clear-site-data"), "\"cache\"");
    assert_no_internal_errors(&picd);
}
