//! Token guessing against the real binary: bursts of bad API keys (Bearer and X-API-Key) and
//! of bad invitation tokens from one address are answered 429 with Retry-After once past the
//! bound, and leave one audit entry per address and window, not one per request; another
//! address is unaffected, and so are good tokens from it.

mod common;

use common::netns::create_peer;
use common::*;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Bad tokens per address and minute before 429 (src/auth/token_throttle.rs).
const BAD_TOKENS_PER_ADDRESS: usize = 10;
const BURST: usize = 40;
const GUESSED_KEY: &str = "picd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const PEER_PASSWORD: &str = "bob has a long passphrase";

fn audit_entries_from(picd: &Picd, addr: &str) -> Vec<AuditRow> {
    let db = picd.db();
    let mut stmt = db
        .prepare(
            "SELECT seq, actor, action, target_type, target_id, result, client_addr, detail
             FROM audit_log WHERE client_addr = ?1 ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([addr], |r| {
        let detail: String = r.get(7)?;
        Ok(AuditRow {
            seq: r.get(0)?,
            actor: r.get(1)?,
            action: r.get(2)?,
            target_type: r.get(3)?,
            target_id: r.get(4)?,
            result: r.get(5)?,
            client_addr: r.get(6)?,
            detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Sends the requests one after another (the bound is per window, not per moment) and
/// returns the statuses; every answer must be the API's JSON error.
async fn statuses_of(requests: Vec<reqwest::RequestBuilder>) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for request in requests {
        let resp = request.send().await.expect("request");
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
        let (_, body) = json_of(resp).await;
        assert_error_shape(&body, "a guessed token");
        statuses.push(status);
    }
    statuses
}

fn split(statuses: &[StatusCode], refused_first: StatusCode) -> (usize, usize) {
    let first = statuses.iter().filter(|s| **s == refused_first).count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(first + throttled, statuses.len(), "{statuses:?}");
    (first, throttled)
}

#[tokio::test]
async fn bad_api_keys_are_throttled_per_address_and_audited_once() {
    let (picd, admin) = picd_with_admin().await;
    let (status, key) = json_of(
        admin
            .send_json(
                Method::POST,
                "/api/keys",
                &json!({ "name": "script", "scopes": ["read-only"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let good = key["token"].as_str().unwrap().to_string();

    let guesser = picd.client_from("127.0.0.2");
    let requests = (0..BURST)
        .map(|i| match i % 4 {
            0 => guesser
                .http
                .get(guesser.url("/api/status"))
                .bearer_auth(GUESSED_KEY),
            1 => guesser
                .http
                .get(guesser.url("/api/peers"))
                .header("x-api-key", "x"),
            2 => guesser
                .http
                .post(guesser.url("/api/peers"))
                .bearer_auth(format!("{GUESSED_KEY}{i}"))
                .json(&json!({ "name": "mallory" })),
            _ => guesser
                .http
                .get(guesser.url("/api/status"))
                .bearer_auth("z".repeat(10_000)),
        })
        .collect();
    let statuses = statuses_of(requests).await;
    let (unauthorized, throttled) = split(&statuses, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized, BAD_TOKENS_PER_ADDRESS, "{statuses:?}");
    assert_eq!(throttled, BURST - BAD_TOKENS_PER_ADDRESS);
    let entries = audit_entries_from(&picd, "127.0.0.2");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].result, "denied");
    assert_eq!(
        entries[0].detail["credential"], "api_key",
        "{:?}",
        entries[0]
    );
    // Even a good key waits out the window from there...
    let resp = guesser
        .http
        .get(guesser.url("/api/status"))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ...but not from elsewhere, where a bad one is still a plain 401, audited for that address.
    let other = picd.client_from("127.0.0.3");
    let get = |token: &str| other.http.get(other.url("/api/status")).bearer_auth(token);
    assert_eq!(get(&good).send().await.unwrap().status(), StatusCode::OK);
    let resp = get(GUESSED_KEY).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(audit_entries_from(&picd, "127.0.0.3").len(), 1);
    let (status, _) = json_of(admin.get("/api/peers/mallory").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn bad_invitation_tokens_are_throttled_per_address_and_audited_once() {
    let (picd, admin) = picd_with_admin().await;
    create_peer(&admin, json!({ "name": "bob" })).await;
    let (status, invitation) = json_of(
        admin
            .send_json(Method::POST, "/api/peers/bob/invite", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    let token = invitation["token"].as_str().unwrap().to_string();

    let guesser = picd.client_from("127.0.0.2");
    let accept = |client: &TestClient, token: String| {
        client
            .http
            .post(client.url("/api/invite/accept"))
            .json(&json!({ "token": token, "password": PEER_PASSWORD }))
    };
    // Simultaneous, as a guesser would send them: the bound still holds.
    let guesses = (0..BURST).map(|i| accept(&guesser, format!("guess-{i}")).send());
    let statuses: Vec<StatusCode> = join_all(guesses)
        .await
        .into_iter()
        .map(|r| r.expect("accept").status())
        .collect();
    let (forbidden, throttled) = split(&statuses, StatusCode::FORBIDDEN);
    assert_eq!(forbidden, BAD_TOKENS_PER_ADDRESS, "{statuses:?}");
    assert_eq!(throttled, BURST - BAD_TOKENS_PER_ADDRESS);
    let entries = audit_entries_from(&picd, "127.0.0.2");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].target_type.as_str(), entries[0].result.as_str()),
        ("invitation", "denied")
    );
    // The real token, from the throttled address, waits; from another it works.
    let resp = accept(&guesser, token.clone()).send().await.unwrap();
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let bob = picd.client_from("127.0.0.3");
    let resp = accept(&bob, token).send().await.unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "bob");
    // Bad bodies are JSON errors, not counted guesses.
    for bad in [
        json!({}),
        json!({ "token": 5, "password": "x" }),
        json!("token"),
    ] {
        let resp = picd
            .client_from("127.0.0.4")
            .http
            .post(picd.base_url() + "/api/invite/accept")
            .json(&bad)
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(resp).await;
        assert!(status.is_client_error(), "{status} {body}");
        assert_error_shape(&body, "a bad invitation body");
    }
    assert_no_internal_errors(&picd);
}
