//! Status and config: the public /health, /api/status with every subsystem, GET/PUT
//! /api/config (a round trip changes nothing, a change is stored and audited, read-only fields
//! are ignored) and the recorded health history.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SUBSYSTEMS: [&str; 7] = [
    "wireguard",
    "dns",
    "caddy",
    "nftables",
    "docker",
    "connectivity",
    "storage",
];
const STATES: [&str; 3] = ["ok", "unavailable", "degraded"];
/// A Docker socket that cannot exist, so that the docker subsystem is surely unavailable.
const MISSING_DOCKER_SOCKET: &str = "/nonexistent/picd-test/docker.sock";
/// History entries to wait for with a one-second interval.
const HISTORY_ENTRIES: usize = 3;
/// How long the history gets to fill on a loaded machine.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(30);

fn unused_port() -> u16 {
    free_port()
}

#[tokio::test]
async fn health_is_public_and_says_whether_setup_is_done() {
    let picd = Picd::start().await;
    let anonymous = picd.client();
    let resp = anonymous.get("/health").await;
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "/health started a session"
    );
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok", "setup_complete": false }));

    picd.client().run_setup().await;
    let (status, body) = anonymous.get_json("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok", "setup_complete": true }));
}

#[tokio::test]
async fn status_lists_every_subsystem_with_a_state_and_a_reason() {
    let caddy = format!("127.0.0.1:{}", unused_port());
    let options = PicdOptions {
        env: vec![
            ("PICD_CADDY_ADMIN".into(), caddy.clone()),
            ("PICD_DOCKER_SOCKET".into(), MISSING_DOCKER_SOCKET.into()),
        ],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let subsystems = body["subsystems"].as_array().expect("subsystems");
    let names: Vec<&str> = subsystems
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SUBSYSTEMS);
    for s in subsystems {
        let state = s["state"].as_str().unwrap_or("");
        assert!(STATES.contains(&state), "{s}");
        assert!(
            s["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "no reason: {s}"
        );
    }
    let all_ok = subsystems.iter().all(|s| s["state"] == "ok");
    assert_eq!(body["overall"], if all_ok { "ok" } else { "degraded" });
    assert_eq!(
        body["cell"],
        json!({ "name": CELL_NAME, "domain": CELL_DOMAIN })
    );
    assert!(body["version"].is_string());

    // What cannot be reached is reported as such, with where picd looked.
    let by_name = |n: &str| subsystems.iter().find(|s| s["name"] == n).unwrap().clone();
    let caddy_status = by_name("caddy");
    assert_eq!(caddy_status["state"], "unavailable");
    assert!(
        caddy_status["reason"].as_str().unwrap().contains(&caddy),
        "{caddy_status}"
    );
    let docker = by_name("docker");
    assert_eq!(docker["state"], "unavailable");
    assert!(
        docker["reason"]
            .as_str()
            .unwrap()
            .contains(MISSING_DOCKER_SOCKET),
        "{docker}"
    );
    assert_eq!(body["overall"], "degraded");

    let resp = picd.client().get("/api/status").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

fn stored_config_row(picd: &Picd) -> Vec<String> {
    picd.db()
        .query_row(
            "SELECT name, domain, public_endpoint, wireguard_port, subnet_v4, subnet_v6,
                    dns_upstreams, split_horizon, updated_at, tls_mode, acme_email, acme_ca
             FROM cell_config",
            [],
            |r| {
                (0..12)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect()
            },
        )
        .unwrap()
}

#[tokio::test]
async fn putting_back_what_get_returns_changes_nothing() {
    let (picd, admin) = picd_with_admin().await;
    let (status, config) = admin.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK);
    for key in ["cell", "dns", "tls", "setup_completed_at", "updated_at"] {
        assert!(config.get(key).is_some(), "{key} missing: {config}");
    }
    let row = stored_config_row(&picd);

    let (status, answer) =
        json_of(admin.send_json(Method::PUT, "/api/config", &config).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, config);
    let (_, again) = admin.get_json("/api/config").await;
    assert_eq!(again, config);
    assert_eq!(stored_config_row(&picd), row, "the stored row changed");
    let entry = last_audit(&picd.db());
    assert_eq!(
        (entry.action.as_str(), entry.result.as_str()),
        ("config.update", "success")
    );
    assert_eq!(entry.detail["changed"], json!([]));
}

#[tokio::test]
async fn a_real_change_is_stored_and_audited_with_the_changed_fields() {
    let (picd, admin) = picd_with_admin().await;
    let (_, before) = admin.get_json("/api/config").await;
    let mut changed = before.clone();
    changed["cell"]["name"] = json!("cabin");
    changed["cell"]["domain"] = json!("Cabin.Example.");
    changed["dns"]["split_horizon"] = json!(false);
    changed["dns"]["upstreams"] = json!(["127.0.0.2:9"]);

    let (status, answer) =
        json_of(admin.send_json(Method::PUT, "/api/config", &changed).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, after) = admin.get_json("/api/config").await;
    assert_eq!(answer, after);
    assert_eq!(after["cell"]["name"], "cabin");
    assert_eq!(
        after["cell"]["domain"], "cabin.example",
        "the domain is normalised"
    );
    assert_eq!(
        after["dns"],
        json!({ "upstreams": ["127.0.0.2:9"], "split_horizon": false })
    );
    assert_eq!(after["cell"]["subnet_v4"], before["cell"]["subnet_v4"]);
    assert_eq!(after["setup_completed_at"], before["setup_completed_at"]);
    assert_ne!(after["updated_at"], before["updated_at"]);

    let (name, domain, split): (String, String, bool) = picd
        .db()
        .query_row(
            "SELECT name, domain, split_horizon FROM cell_config",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (name.as_str(), domain.as_str(), split),
        ("cabin", "cabin.example", false)
    );
    let entry = last_audit(&picd.db());
    assert_eq!(
        (entry.actor.as_str(), entry.action.as_str()),
        (ADMIN_USER, "config.update")
    );
    let mut fields: Vec<String> = serde_json::from_value(entry.detail["changed"].clone()).unwrap();
    fields.sort();
    assert_eq!(
        fields,
        [
            "cell.domain",
            "cell.name",
            "dns.split_horizon",
            "dns.upstreams"
        ]
    );
    let (_, status) = admin.get_json("/api/status").await;
    assert_eq!(
        status["cell"],
        json!({ "name": "cabin", "domain": "cabin.example" })
    );
}

#[tokio::test]
async fn read_only_fields_are_ignored() {
    let (picd, admin) = picd_with_admin().await;
    let (_, config) = admin.get_json("/api/config").await;
    let row = stored_config_row(&picd);
    let mut forged = config.clone();
    forged["setup_completed_at"] = json!("1999-12-31T23:59:59Z");
    forged["updated_at"] = json!("2000-01-01T00:00:00Z");
    let (status, answer) =
        json_of(admin.send_json(Method::PUT, "/api/config", &forged).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, config);
    assert_eq!(stored_config_row(&picd), row);

    // They may also be left out.
    let bare = json!({ "cell": config["cell"], "dns": config["dns"], "tls": config["tls"] });
    let (status, answer) = json_of(admin.send_json(Method::PUT, "/api/config", &bare).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, config);
}

async fn history(admin: &TestClient, query: &str) -> Vec<Value> {
    let (status, body) = admin.get_json(&format!("/api/health/history{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn health_history_records_the_subsystems_periodically() {
    let options = PicdOptions {
        env: vec![("PICD_HEALTH_INTERVAL_SECONDS".into(), "1".into())],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;
    let deadline = Instant::now() + HISTORY_TIMEOUT;
    let entries = loop {
        let entries = history(&admin, "").await;
        if entries.len() >= HISTORY_ENTRIES {
            break entries;
        }
        assert!(
            Instant::now() < deadline,
            "only {} history entries",
            entries.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    let mut newest_first = times.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);
    for entry in &entries {
        let time = entry["time"].as_str().unwrap();
        time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{time}: {e}"));
        assert!(
            ["ok", "degraded"].contains(&entry["overall"].as_str().unwrap()),
            "{entry}"
        );
        let names: Vec<&str> = entry["subsystems"]
            .as_array()
            .expect("subsystems")
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, SUBSYSTEMS);
    }
    assert_eq!(history(&admin, "?limit=2").await.len(), 2);
    let resp = admin.get("/api/health/history?limit=1001").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
    let resp = picd.client().get("/api/health/history").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn the_tls_mode_is_set_through_the_config_and_checked_against_the_domain() {
    let (picd, admin) = picd_with_admin().await;
    let (_, before) = admin.get_json("/api/config").await;
    assert_eq!(
        before["tls"],
        json!({ "mode": "internal", "acme_email": "", "acme_ca": "" })
    );
    let row = stored_config_row(&picd);

    // Let's Encrypt for home.example is refused, and so is a section of the wrong shape.
    let mut lets_encrypt = before.clone();
    lets_encrypt["tls"] = json!({ "mode": "acme", "acme_email": "", "acme_ca": "" });
    let body = expect_error(
        admin
            .send_json(Method::PUT, "/api/config", &lets_encrypt)
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(field_names(&body), ["tls.mode"]);
    let mut wrong = before.clone();
    wrong["tls"] = json!("acme");
    let body = expect_error(
        admin.send_json(Method::PUT, "/api/config", &wrong).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(field_names(&body), ["tls"]);
    assert_eq!(
        stored_config_row(&picd),
        row,
        "a refused PUT stored nothing"
    );

    // With a public domain it is accepted, stored and audited.
    let mut public = before.clone();
    public["cell"]["domain"] = json!("cell.example.org");
    public["tls"] = json!({ "mode": "acme", "acme_email": "ops@example.org", "acme_ca": "" });
    let (status, answer) =
        json_of(admin.send_json(Method::PUT, "/api/config", &public).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["tls"], public["tls"]);
    let mut fields: Vec<String> =
        serde_json::from_value(last_audit(&picd.db()).detail["changed"].clone()).unwrap();
    fields.sort();
    assert_eq!(fields, ["cell.domain", "tls.acme_email", "tls.mode"]);

    // Caddy now obtains the certificates itself: nothing for picd to renew, and the status
    // says which CA and that Caddy (not running here) serves none yet.
    let resp = admin
        .send_json(Method::POST, "/api/caddy/cert-renew", &json!({}))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "acme_managed").await;
    let (status, cert) = admin.get_json("/api/caddy/cert-status").await;
    assert_eq!(status, StatusCode::OK, "{cert}");
    assert_eq!(
        (&cert["mode"], &cert["domain"], &cert["issued"]),
        (&json!("acme"), &json!("cell.example.org"), &json!(false))
    );
    assert_eq!(
        cert["acme_ca"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
}
