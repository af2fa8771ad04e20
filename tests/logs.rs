//! /api/logs: recent lines with their service, search, and run-time verbosity (audited, bad
//! filters refused with the old one kept, admin only).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn messages(body: &Value) -> Vec<(String, String, String)> {
    body["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["service"].as_str().unwrap_or_default().to_string(),
                l["level"].as_str().unwrap_or_default().to_string(),
                l["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn recent_lines_and_search() {
    let (_picd, admin) = picd_with_admin().await;
    let (status, body) = admin.get_json("/api/logs?lines=500").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines = messages(&body);
    assert!(
        lines
            .iter()
            .any(|(service, level, message)| service == "serve"
                && level == "info"
                && message.contains("picd is listening")),
        "{lines:?}"
    );
    let (_, body) = admin.get_json("/api/logs?lines=500&service=serve").await;
    assert!(
        messages(&body)
            .iter()
            .all(|(service, _, _)| service == "serve"),
        "{body}"
    );
    let (_, body) = admin.get_json("/api/logs/search?q=IS%20LISTENING").await;
    let found = messages(&body);
    assert_eq!(found.len(), 1, "{found:?}");
    let (_, body) = admin
        .get_json("/api/logs/search?q=no-such-line-anywhere")
        .await;
    assert!(messages(&body).is_empty(), "{body}");
    let (status, body) = admin.get_json("/api/logs?lines=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = admin.get_json("/api/logs/search").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn verbosity_changes_at_run_time_and_is_audited() {
    let (_picd, admin) = picd_with_admin().await;
    let (_, before) = admin.get_json("/api/logs/verbosity").await;
    assert_eq!(before["filter"], "info", "{before}");
    let resp = admin
        .send_json(
            Method::PUT,
            "/api/logs/verbosity",
            &json!({"level": "info", "services": {"auth": "debug"}}),
        )
        .await;
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["filter"], "info,picd::auth=debug");
    let (_, audit) = admin
        .get_json("/api/audit?action=logs.verbosity.update&limit=1")
        .await;
    assert_eq!(audit["entries"][0]["result"], "success", "{audit}");
    assert_eq!(
        audit["entries"][0]["detail"]["to"], "info,picd::auth=debug",
        "{audit}"
    );

    let resp = admin
        .send_json(
            Method::PUT,
            "/api/logs/verbosity",
            &json!({"filter": "[[["}),
        )
        .await;
    let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(body["fields"]["filter"].is_string(), "{body}");
    let resp = admin
        .send_json(
            Method::PUT,
            "/api/logs/verbosity",
            &json!({"level": "loud"}),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    let resp = admin
        .send_json(Method::PUT, "/api/logs/verbosity", &json!({"level": 3}))
        .await;
    assert!(resp.status().is_client_error());
    let (_, after) = admin.get_json("/api/logs/verbosity").await;
    assert_eq!(
        after["filter"], "info,picd::auth=debug",
        "a refused filter replaced the old one"
    );
}

#[tokio::test]
async fn logs_are_for_admins_only() {
    let (picd, _admin, peer) = picd_with_admin_and_peer().await;
    let (status, _) = peer.get_json("/api/logs").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = picd.client().get_json("/api/logs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
