//! Who may run the wizard: only the session that claimed it with the setup code picd keeps in
//! its state directory. In the form of the attack: with the owner half-way through, a client
//! with another cookie jar cannot read the draft, post a step or complete; wrong codes are
//! refused and a burst of them throttled; the owner finishes and only their password works;
//! the code is spent afterwards.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// What an attacker would make the admin's password.
const MALLORY_PASSWORD: &str = "mallory owns this cell now";
/// A well-formed code that is not the cell's (28 base32 characters).
const WRONG_CODE: &str = "0000-0000-0000-0000-0000-0000-0000";
/// Wrong codes accepted per address and window before 429 (src/setup/throttle.rs).
const CLAIM_FAILURES_PER_WINDOW: usize = 5;
const BURST: usize = 20;

async fn step(client: &TestClient, step: &str, data: Value) -> reqwest::Response {
    client
        .setup_post("/api/setup/step", &json!({ "step": step, "data": data }))
        .await
}

fn setup_token_cli(picd: &Picd) -> std::process::Output {
    let dir = picd.state_dir();
    picd_cli(
        &["setup", "token", "--state-dir", dir.to_str().unwrap()],
        None,
    )
}

/// (action, result, error code) of the wizard's entries, oldest first.
fn setup_entries(picd: &Picd) -> Vec<(String, String, String)> {
    picd.db()
        .prepare(
            "SELECT action, result, COALESCE(json_extract(detail, '$.error'), '') FROM audit_log
             WHERE action LIKE 'setup.%' ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn an_anonymous_client_cannot_take_over_a_half_done_wizard() {
    let picd = Picd::start().await;
    let owner = picd.client();
    owner.claim_setup().await;
    for (name, data) in [("admin", admin_step()), ("cell", cell_step())] {
        assert_eq!(
            step(&owner, name, data).await.status(),
            StatusCode::OK,
            "{name}"
        );
    }

    let mallory = picd.client();
    // The status is open, and says nothing of what was entered.
    let resp = mallory.get("/api/setup/status").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for secret in ["username", CELL_DOMAIN, PUBLIC_ENDPOINT, "csrf_token"] {
        assert!(!text.contains(secret), "status shows {secret}: {text}");
    }
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["claimed"], false, "{status}");

    // No draft, no step, no completion, with or without a made-up CSRF header.
    let resp = mallory.get("/api/setup/step?step=review").await;
    let body = expect_error(resp, StatusCode::UNAUTHORIZED, "setup_token_required").await;
    assert!(!body.to_string().contains(CELL_DOMAIN), "{body}");
    let takeover = json!({ "step": "admin",
        "data": { "username": ADMIN_USER, "password": MALLORY_PASSWORD } });
    let resp = mallory.setup_post("/api/setup/step", &takeover).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "setup_token_required").await;
    let resp = mallory
        .http
        .post(mallory.url("/api/setup/complete"))
        .header("x-csrf-token", "guessed")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "setup_token_required").await;
    let (status, body) = mallory.claim_setup_with(WRONG_CODE).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_setup_token")),
        "{body}"
    );

    // The owner's own session needs the claim's CSRF token to write.
    let resp = owner
        .http
        .post(owner.url("/api/setup/step"))
        .json(&takeover)
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::FORBIDDEN, "csrf_invalid").await;

    // The owner finishes; only the owner's password opens the admin account.
    for (name, data) in [("dns", dns_step()), ("tls", tls_step())] {
        assert_eq!(
            step(&owner, name, data).await.status(),
            StatusCode::OK,
            "{name}"
        );
    }
    let (status, done) = json_of(owner.setup_post("/api/setup/complete", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let (status, me) = owner.get_json("/api/auth/me").await;
    assert_eq!(
        (status, me["user"]["username"].as_str()),
        (StatusCode::OK, Some(ADMIN_USER))
    );
    let resp = mallory.get("/api/auth/me").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = mallory.login(ADMIN_USER, MALLORY_PASSWORD).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    picd.client().login_ok(ADMIN_USER, ADMIN_PASSWORD).await;

    // The code is spent: the file is gone, the CLI says so, a claim is a conflict.
    assert!(!picd.state_dir().join(SETUP_TOKEN_FILE).exists());
    let out = setup_token_cli(&picd);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    assert!(stdout_of(&out).is_empty(), "{}", stdout_of(&out));
    assert!(
        stderr_of(&out).contains("already complete"),
        "{}",
        stderr_of(&out)
    );
    let (status, body) = mallory.claim_setup_with(WRONG_CODE).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("setup_complete"))
    );
    let (token_hash, claim_hash): (Option<String>, Option<String>) = picd
        .db()
        .query_row("SELECT token_hash, claim_hash FROM setup_state", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((token_hash, claim_hash), (None, None));

    // Each refused attempt left its entry.
    let refused: Vec<_> = setup_entries(&picd)
        .into_iter()
        .filter(|(_, result, _)| result != "success")
        .collect();
    let denied = |action: &str, code: &str| (action.into(), "denied".into(), code.into());
    assert_eq!(
        refused,
        vec![
            denied("setup.step", "setup_token_required"),
            denied("setup.complete", "setup_token_required"),
            denied("setup.claim", "invalid_setup_token"),
            denied("setup.step", "csrf_invalid"),
            (
                "setup.claim".into(),
                "failure".into(),
                "setup_complete".into()
            ),
        ]
    );
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn a_second_claim_moves_the_wizard_and_the_first_session_loses_it() {
    let picd = Picd::start().await;
    let first = picd.client();
    first.claim_setup().await;
    let cookie_after_first_claim = first.session_cookie().expect("a session cookie");
    // Claiming again starts a new session id: one known to someone else before is worthless.
    first.claim_setup().await;
    assert_ne!(first.session_cookie(), Some(cookie_after_first_claim));
    assert_eq!(
        step(&first, "admin", admin_step()).await.status(),
        StatusCode::OK
    );

    let second = picd.client();
    let claim = second.claim_setup().await;
    assert_eq!(claim["replaced_earlier_claim"], true, "{claim}");
    assert_eq!(claim["current_step"], "cell", "{claim}");
    let (_, status) = second.get_json("/api/setup/status").await;
    assert_eq!(status["claimed"], true, "{status}");
    assert_eq!(status["csrf_token"], claim["csrf_token"], "{status}");
    let (_, status) = first.get_json("/api/setup/status").await;
    assert_eq!(status["claimed"], false, "{status}");
    let resp = first.get("/api/setup/step").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "setup_token_required").await;
    let resp = step(&first, "cell", cell_step()).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "setup_token_required").await;

    // The new holder carries on from where the wizard was.
    let (status, review) = second.get_json("/api/setup/step?step=admin").await;
    assert_eq!(status, StatusCode::OK, "{review}");
    assert_eq!(review["data"]["username"], ADMIN_USER);
    for (name, data) in [
        ("cell", cell_step()),
        ("dns", dns_step()),
        ("tls", tls_step()),
    ] {
        assert_eq!(
            step(&second, name, data).await.status(),
            StatusCode::OK,
            "{name}"
        );
    }
    let resp = first.setup_post("/api/setup/complete", &json!({})).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "setup_token_required").await;
    let (status, done) = json_of(second.setup_post("/api/setup/complete", &json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(second.get("/api/auth/me").await.status(), StatusCode::OK);
    assert_eq!(
        first.get("/api/auth/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_burst_of_wrong_codes_is_throttled_and_recorded_once_per_window() {
    let picd = Picd::start().await;
    let guesser = picd.client();
    // All at once: the throttle counts an attempt before looking at it, so a burst in flight
    // gets no more checks than a sequence would.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let request = guesser
            .http
            .post(guesser.url("/api/setup/claim"))
            .json(&json!({ "token": WRONG_CODE }));
        burst.spawn(async move { request.send().await.expect("claim") });
    }
    let mut answers = Vec::new();
    while let Some(resp) = burst.join_next().await {
        let resp = resp.unwrap();
        let retry_after = resp.headers().get("retry-after").cloned();
        let (status, body) = json_of(resp).await;
        assert_error_shape(&body, "a wrong claim");
        if status == StatusCode::TOO_MANY_REQUESTS {
            let secs: u64 = retry_after
                .expect("Retry-After")
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&secs), "Retry-After: {secs}");
            assert_eq!(body["code"], "rate_limited", "{body}");
        } else {
            assert_eq!(
                (status, body["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("invalid_setup_token"))
            );
        }
        answers.push(status);
    }
    let checked = answers
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!(checked, CLAIM_FAILURES_PER_WINDOW, "{answers:?}");

    // While throttled, even the right code is not looked at.
    let (status, body) = guesser.claim_setup_with(&guesser.setup_token()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // One entry per checked code, and one for all the refusals of the window.
    let entries = setup_entries(&picd);
    let count = |code: &str| entries.iter().filter(|(_, _, c)| c == code).count();
    assert_eq!(
        count("invalid_setup_token"),
        CLAIM_FAILURES_PER_WINDOW,
        "{entries:?}"
    );
    assert_eq!(count("rate_limited"), 1, "{entries:?}");
    assert_eq!(entries.len(), CLAIM_FAILURES_PER_WINDOW + 1, "{entries:?}");
    assert_no_internal_errors(&picd);
}

#[tokio::test]
async fn the_setup_code_is_private_stable_across_restarts_and_printed_by_the_cli() {
    let mut picd = Picd::start().await;
    let file = picd.state_dir().join(SETUP_TOKEN_FILE);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let code = picd.client().setup_token();
    assert_eq!(code.len(), 34, "seven groups of four: {code}");
    let out = setup_token_cli(&picd);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).trim(), code);
    // Logged once at start, where an owner looks first.
    assert_eq!(picd.log().matches(&code).count(), 1, "{}", picd.log());
    // The database holds only its hash.
    let stored: String = picd
        .db()
        .query_row("SELECT token_hash FROM setup_state", [], |r| r.get(0))
        .unwrap();
    assert!(
        stored.len() == 64 && !stored.contains(&code.replace('-', "")),
        "{stored}"
    );

    // A restart keeps the code (the log line and the file still agree), and a claim with it
    // typed the way a person might is accepted.
    picd.restart().await;
    assert_eq!(picd.client().setup_token(), code);
    assert_eq!(picd.log().matches(&code).count(), 2);
    let owner = picd.client();
    let (status, body) = owner
        .claim_setup_with(&format!("  {}  ", code.to_uppercase().replace('-', " ")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["csrf_token"].as_str().is_some_and(|t| t.len() >= 32),
        "{body}"
    );

    // Without a code, the CLI says where one comes from.
    let empty = tempfile::tempdir().unwrap();
    let out = picd_cli(
        &[
            "setup",
            "token",
            "--state-dir",
            empty.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("picd serve"),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test]
async fn setup_from_an_answers_file_needs_no_code_and_spends_it() {
    let mut picd = Picd::start().await;
    let state = picd.state_dir();
    assert!(state.join(SETUP_TOKEN_FILE).exists());
    picd.stop();
    let answers = picd.root().join("answers.toml");
    std::fs::write(&answers, answers_toml()).unwrap();
    let out = picd_cli(
        &[
            "setup",
            "--answers",
            answers.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!state.join(SETUP_TOKEN_FILE).exists());
    let out = setup_token_cli(&picd);
    assert_eq!(out.status.code(), Some(1), "{}", stdout_of(&out));
    picd.restart().await;
    assert!(
        !state.join(SETUP_TOKEN_FILE).exists(),
        "no new code once setup is complete"
    );
    picd.client().login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
}
