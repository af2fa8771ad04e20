//! picd's own settings and the command line: the settings file given with --config, `PICD_*`
//! overrides, settings that must stop picd from starting, `picd migrate`, and --state-dir
//! winning over --dev's folder.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// The body limit the settings file sets, far below the 64 KiB default.
const FILE_BODY_LIMIT: usize = 2048;
/// The file allows many failed logins; the environment, which wins, allows two.
const FILE_FAILURES_PER_USER: usize = 10;
const ENV_FAILURES_PER_USER: usize = 2;
/// --dev keeps state here, relative to the working directory (src/config.rs).
const DEV_STATE_DIR: &str = "picd-state";

/// A PUT /api/config body of exactly `size` bytes: the current config, padded with spaces.
fn padded(config: &Value, size: usize) -> String {
    let text = config.to_string();
    assert!(text.len() <= size);
    format!("{text}{}", " ".repeat(size - text.len()))
}

#[tokio::test]
async fn the_settings_file_and_environment_overrides_take_effect() {
    let options = PicdOptions {
        config_toml: Some(format!(
            "body_limit_bytes = {FILE_BODY_LIMIT}\n\
             login_failures_per_user = {FILE_FAILURES_PER_USER}\n\
             # --listen on the command line wins over this\n\
             listen = \"127.0.0.1:1\"\n"
        )),
        env: vec![(
            "PICD_LOGIN_FAILURES_PER_USER".into(),
            ENV_FAILURES_PER_USER.to_string(),
        )],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;
    let (_, config) = admin.get_json("/api/config").await;
    let token = admin.csrf_token().await;
    let put = |body: String| {
        admin
            .http
            .put(admin.url("/api/config"))
            .header("x-csrf-token", &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = put(padded(&config, FILE_BODY_LIMIT)).await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a body at the limit is refused"
    );
    let resp = put(padded(&config, FILE_BODY_LIMIT + 1)).await.unwrap();
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let client = picd.client();
    for _ in 0..ENV_FAILURES_PER_USER {
        let resp = client.login(ADMIN_USER, "wrong password again").await;
        expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let resp = client.login(ADMIN_USER, ADMIN_PASSWORD).await;
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn bad_settings_stop_picd_naming_the_problem() {
    let from_file = [
        ("no_such_key = 1\n", "no_such_key"),
        ("body_limit_bytes = \"lots\"\n", "body_limit_bytes"),
        ("body_limit_bytes = 10\n", "body_limit_bytes"),
    ];
    for (file, named) in from_file {
        let stderr = stderr_of(&serve_expecting_failure(file, &[]));
        assert!(stderr.contains(named), "{named} not named: {stderr}");
    }
    let from_env = [
        ("PICD_BODY_LIMIT_BYTES", "lots", "PICD_BODY_LIMIT_BYTES"),
        ("PICD_COOKIE_SECURE", "sometimes", "cookie_secure"),
    ];
    for (var, value, named) in from_env {
        let stderr = stderr_of(&serve_expecting_failure("", &[(var, value)]));
        assert!(stderr.contains(named), "{named} not named: {stderr}");
    }
}

#[tokio::test]
async fn migrate_creates_the_schema_once() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let state_arg = state.to_str().unwrap();
    let out = picd_cli(&["migrate", "--state-dir", state_arg], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("applied migration 0001"),
        "{}",
        stdout_of(&out)
    );
    {
        let db = open_db(&state.join("picd.db"));
        let migrations: Vec<(i64, String)> = db
            .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Every migration once, in order, starting with the foundation.
        let versions: Vec<i64> = migrations.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i64> = (1..=migrations.len() as i64).collect();
        assert_eq!(versions, expected, "{migrations:?}");
        assert_eq!(migrations[0].1, "foundation");
        for table in [
            "users",
            "sessions",
            "setup_state",
            "cell_config",
            "audit_log",
            "audit_head",
        ] {
            let exists: bool = db
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(exists, "{table} missing");
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the state directory is readable by others: {mode:o}"
    );

    let out = picd_cli(&["migrate", "--state-dir", state_arg], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("up to date"),
        "{}",
        stdout_of(&out)
    );

    // picd serves the migrated state.
    let picd = Picd::start_with(PicdOptions {
        state_dir: Some(state.clone()),
        ..PicdOptions::default()
    })
    .await;
    let (_, status) = picd.client().get_json("/api/setup/status").await;
    assert_eq!(status["current_step"], "admin");
}

#[tokio::test]
async fn state_dir_wins_over_dev() {
    let work = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let chosen = elsewhere.path().join("chosen");
    let chosen_arg = chosen.to_str().unwrap();

    let out = picd_cli_in(
        Some(work.path()),
        &["--dev", "migrate", "--state-dir", chosen_arg],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(chosen.join("picd.db").exists());
    assert!(
        !work.path().join(DEV_STATE_DIR).exists(),
        "--dev's folder was used"
    );
    let out = picd_cli_in(
        Some(work.path()),
        &["audit", "verify", "--dev", "--state-dir", chosen_arg],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));

    // Without --state-dir, --dev keeps state in the working directory.
    let out = picd_cli_in(Some(work.path()), &["--dev", "migrate"], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(work.path().join(DEV_STATE_DIR).join("picd.db").exists());

    // And the same for the daemon.
    let serving = tempfile::tempdir().unwrap();
    let picd = Picd::start_with(PicdOptions {
        args: vec!["--dev".into()],
        current_dir: Some(serving.path().to_path_buf()),
        ..PicdOptions::default()
    })
    .await;
    picd.client().run_setup().await;
    assert!(picd.db_path().exists());
    assert!(
        !serving.path().join(DEV_STATE_DIR).exists(),
        "--dev's folder was used"
    );
}
