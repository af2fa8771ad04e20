//! /api/dns helpers: ACME DNS-01 challenge records (present, cleanup, cleanup-stale with
//! dry_run) as the world sees them, reload, and the DDNS refresh of the cell's public
//! addresses, explicit or from the caller's address. Each write audited, each change served.

mod common;

use std::net::IpAddr;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Key authorisation digests are 43 base64url characters.
const DIGEST_1: &str = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
const DIGEST_2: &str = "dGhpcyBpcyBhIHRlc3QgZGlnZXN0IGZvciBwaWNkX18";
const CHALLENGE: &str = "_acme-challenge.home.example";

#[tokio::test]
async fn acme_challenges_are_published_to_the_world_and_cleaned_up() {
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    let server = cell.dns_at(IpAddr::V4(world.host_addr));
    let from_world = |tool: Tool| world.ask(tool, server, None, CHALLENGE, "TXT", &[]);
    let serial0 = cell.serial();

    for digest in [DIGEST_1, DIGEST_2] {
        let (status, body) = cell
            .send(
                Method::POST,
                "/api/dns/acme/present",
                &json!({ "domain": "home.example", "value": digest }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["name"], "_acme-challenge.home.example.", "{body}");
        assert_eq!(body["ttl"], 60, "{body}");
    }
    let seen = ask_until(
        PROPAGATION,
        "both challenges from the world",
        || from_world(Tool::Dig),
        |r| r.answer.len() == 2,
    )
    .await;
    assert!(seen.has_flag("aa"), "{}", seen.text);
    assert_eq!(
        seen.data("TXT"),
        [format!("\"{DIGEST_1}\""), format!("\"{DIGEST_2}\"")]
    );
    assert_eq!(from_world(Tool::Kdig).answer.len(), 2);
    let serial1 = cell.serial_above(CELL_DOMAIN, serial0).await;

    // A bad digest is refused (and audited).
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/acme/present",
            &json!({ "domain": "home.example", "value": "not base64url!" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["fields"]["value"].is_string(), "{body}");
    // A domain in no zone of the cell.
    let (status, _) = cell
        .send(
            Method::POST,
            "/api/dns/acme/present",
            &json!({ "domain": "example.org", "value": DIGEST_1 }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Cleanup of one value removes that one only.
    let (status, body) = cell
        .send(
            Method::POST,
            "/api/dns/acme/cleanup",
            &json!({ "domain": "home.example", "value": DIGEST_1 }),
        )
        .await;
    assert_eq!(
        (status, body["removed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let left = ask_until(
        PROPAGATION,
        "one challenge left",
        || from_world(Tool::Dig),
        |r| r.answer.len() == 1,
    )
    .await;
    assert_eq!(left.data("TXT"), [format!("\"{DIGEST_2}\"")]);
    let serial2 = cell.serial_above(CELL_DOMAIN, serial1).await;

    // Stale cleanup: a dry run lists without removing; the real run removes.
    let stale = json!({ "max_age_minutes": 0, "dry_run": true });
    let (status, body) = cell
        .send(Method::POST, "/api/dns/acme/cleanup-stale", &stale)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["stale"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["stale"][0]["name"], "_acme-challenge.home.example.");
    assert_eq!(cell.records(CELL_DOMAIN).await.len(), 1, "dry run kept it");
    assert_eq!(from_world(Tool::Dig).answer.len(), 1);
    let stale = json!({ "max_age_minutes": 0 });
    let (status, body) = cell
        .send(Method::POST, "/api/dns/acme/cleanup-stale", &stale)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stale"].as_array().map(Vec::len), Some(1), "{body}");
    let gone = ask_until(
        PROPAGATION,
        "no challenge left",
        || from_world(Tool::Dig),
        |r| r.status == "NXDOMAIN",
    )
    .await;
    gone.negative_soa();
    cell.serial_above(CELL_DOMAIN, serial2).await;
    assert!(cell.records(CELL_DOMAIN).await.is_empty());

    assert_eq!(cell.audit("dns.acme.present").await.len(), 4);
    assert_eq!(cell.audit("dns.acme.cleanup").await.len(), 1);
    assert_eq!(cell.audit("dns.acme.cleanup_stale").await.len(), 2);
    assert_no_internal_errors(&cell.picd);
}

#[tokio::test]
async fn reload_rebuilds_from_the_store() {
    let cell = DnsCell::start().await;
    let (status, body) = cell.send(Method::POST, "/api/dns/reload", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reloaded"], true, "{body}");
    assert_eq!(body["status"]["state"], "ok", "{body}");
    assert_eq!(cell.audit("dns.reload").await.len(), 1);
    // A record written straight into the store (no refresh) is served after a reload.
    let serial = cell.serial();
    {
        let conn = cell.picd.db();
        conn.execute(
            "UPDATE dns_zones SET serial = serial + 5 WHERE name = 'home.example.'",
            [],
        )
        .expect("bumping the serial behind picd's back");
    }
    assert_eq!(cell.serial(), serial, "not served before the reload");
    let (status, _) = cell.send(Method::POST, "/api/dns/reload", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cell.serial(), serial + 5);
}

async fn apex_records(cell: &DnsCell) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = cell
        .records(CELL_DOMAIN)
        .await
        .iter()
        .filter(|r| r["name"] == "home.example.")
        .map(|r| {
            (
                r["type"].as_str().unwrap_or_default().to_string(),
                r["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn ddns_refresh_sets_the_public_apex() {
    let world = Netns::create();
    let cell = DnsCell::start_on(&[IpAddr::V4(world.host_addr)]).await;
    let server = cell.dns_at(IpAddr::V4(world.host_addr));
    let apex = |rtype: &str| world.ask(Tool::Dig, server, None, "home.example", rtype, &[]);
    assert_eq!(
        apex("A").data("A"),
        [PUBLIC_ENDPOINT],
        "the endpoint before any refresh"
    );

    let refresh = |body: Value| {
        let cell = &cell;
        async move {
            cell.send(Method::POST, "/api/dns/ddns/refresh", &body)
                .await
        }
    };
    let (status, body) = refresh(json!({ "ipv4": "198.51.100.44", "ipv6": "2001:db8::44" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"].as_array().map(Vec::len), Some(2), "{body}");
    let seen = ask_until(
        PROPAGATION,
        "the refreshed apex",
        || apex("A"),
        |r| r.data("A") == ["198.51.100.44"],
    )
    .await;
    assert!(seen.has_flag("aa"));
    assert_eq!(apex("AAAA").data("AAAA"), ["2001:db8::44"]);
    // Peers still find the cell at its WireGuard address.
    assert_eq!(
        dig(cell.dns(), "home.example", "A", &[]).data("A"),
        ["10.77.0.1"]
    );

    // The same addresses again: nothing changes, no serial step.
    let serial = cell.serial();
    let (status, body) = refresh(json!({ "ipv4": "198.51.100.44" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], json!([]), "{body}");
    // From the caller's address (this test talks to picd over loopback).
    let (status, body) = refresh(json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"][0]["address"], "127.0.0.1", "{body}");
    cell.serial_above(CELL_DOMAIN, serial).await;
    ask_until(
        PROPAGATION,
        "the apex at the caller's address",
        || apex("A"),
        |r| r.data("A") == ["127.0.0.1"],
    )
    .await;
    assert_eq!(
        apex_records(&cell).await,
        [
            ("A".to_string(), "127.0.0.1".to_string()),
            ("AAAA".to_string(), "2001:db8::44".to_string())
        ]
    );
    // The wrong family in a field is refused.
    let (status, body) = refresh(json!({ "ipv4": "2001:db8::1" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = refresh(json!({ "ipv4": "not an address" })).await;
    assert!(status.is_client_error());
    assert_eq!(cell.audit("dns.ddns.refresh").await.len(), 5);
    assert_no_internal_errors(&cell.picd);
}
