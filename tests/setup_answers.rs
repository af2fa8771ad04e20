//! `picd setup --answers FILE`: the unattended wizard, with exactly the wizard's keys and
//! validation. A bad answers file must fail naming the field and leave setup incomplete.

mod common;

use std::path::Path;

use common::*;
use reqwest::StatusCode;

/// One bad value per key of the answers file (section, key, TOML value).
const BAD_VALUES: &[(&str, &str, &str)] = &[
    ("admin", "username", r#""Bad User""#),
    ("admin", "username", "42"),
    ("admin", "password", r#""short""#),
    ("cell", "name", r#""Not A Label""#),
    ("cell", "domain", r#""x""#),
    ("cell", "public_endpoint", r#""127.0.0.1""#),
    ("cell", "wireguard_port", "70000"),
    ("cell", "wireguard_port", r#""51820""#),
    ("cell", "subnet_v4", r#""8.8.8.0/24""#),
    ("cell", "subnet_v4", r#""10.77.0.1/24""#),
    ("cell", "subnet_v6", r#""2001:db8::/64""#),
    ("dns", "upstreams", r#"["nope"]"#),
    ("dns", "upstreams", "[]"),
    ("dns", "split_horizon", r#""yes""#),
];

/// The fixture answers with the line of `key` replaced (None: removed).
fn answers_with(key: &str, value: Option<&str>) -> String {
    let prefix = format!("{key} = ");
    let text = answers_toml();
    assert!(text.contains(&prefix), "no key {key} in the fixture");
    text.lines()
        .filter_map(|line| {
            if line.starts_with(&prefix) {
                value.map(|v| format!("{prefix}{v}"))
            } else {
                Some(line.to_string())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_setup_cli(state_dir: &Path, answers: &str) -> std::process::Output {
    let file = state_dir.with_extension("answers.toml");
    std::fs::write(&file, answers).unwrap();
    picd_cli(
        &[
            "setup",
            "--answers",
            file.to_str().unwrap(),
            "--state-dir",
            state_dir.to_str().unwrap(),
        ],
        None,
    )
}

/// Setup is still pending and no user exists.
fn assert_setup_incomplete(state_dir: &Path, what: &str) {
    let db = open_db(&state_dir.join("picd.db"));
    let (completed, users): (Option<String>, i64) = db
        .query_row(
            "SELECT completed_at, (SELECT COUNT(*) FROM users) FROM setup_state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(completed, None, "{what}: setup completed");
    assert_eq!(users, 0, "{what}: a user was created");
}

#[tokio::test]
async fn a_good_answers_file_completes_setup() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let out = run_setup_cli(&state, &answers_toml());
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(stdout_of(&out).contains(ADMIN_USER), "{}", stdout_of(&out));

    // The daemon on that state sees the completed cell and the admin can log in.
    let db = open_db(&state.join("picd.db"));
    let (actor, action, result): (String, String, String) = db
        .query_row(
            "SELECT actor, action, result FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (actor.as_str(), action.as_str(), result.as_str()),
        ("cli", "setup.complete", "success")
    );
    drop(db);
    let picd = serve_on(&state).await;
    let client = picd.client();
    let (_, health) = client.get_json("/health").await;
    assert_eq!(health["setup_complete"], true);
    client.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (status, config) = client.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["cell"], cell_step());
    assert_eq!(config["dns"], dns_step());
    assert_eq!(config["tls"], tls_step(), "no [tls]: the cell's own CA");

    // A second run finds setup done and changes nothing.
    drop(picd);
    let users_before = users_snapshot(&open_db(&state.join("picd.db")));
    let out = run_setup_cli(&state, &answers_with("username", Some(r#""other""#)));
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("already"), "{}", stderr_of(&out));
    assert_eq!(
        users_snapshot(&open_db(&state.join("picd.db"))),
        users_before
    );
}

/// A picd serving an existing state directory.
async fn serve_on(state: &Path) -> Picd {
    Picd::start_with(PicdOptions {
        state_dir: Some(state.to_path_buf()),
        ..PicdOptions::default()
    })
    .await
}

#[tokio::test]
async fn each_bad_value_fails_naming_its_field() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    for (section, key, value) in BAD_VALUES {
        let out = run_setup_cli(&state, &answers_with(key, Some(value)));
        let what = format!("{key} = {value}");
        assert!(!out.status.success(), "{what} was accepted");
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains(&format!("[{section}]")) && stderr.contains(key),
            "{what}: the error does not name [{section}] {key}: {stderr}"
        );
        assert!(!stderr.contains(ADMIN_PASSWORD), "{what}: {stderr}");
        assert_setup_incomplete(&state, &what);
    }
}

#[tokio::test]
async fn unknown_and_missing_keys_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let cases = [
        (
            answers_toml().replace("[cell]\n", "[cell]\nextra = 1\n"),
            "extra",
        ),
        (
            answers_toml().replace("[dns]\n", "[dns]\nsplit = true\n"),
            "split",
        ),
        (
            format!("{}\n[firewall]\nopen = true\n", answers_toml()),
            "firewall",
        ),
        (format!("stray = 1\n{}", answers_toml()), "stray"),
        (answers_with("domain", None), "domain"),
        (answers_toml().replace("[dns]\n", "[dnsx]\n"), "dnsx"),
        // Let's Encrypt never issues for home.example.
        (
            format!("{}\n[tls]\nmode = \"acme\"\n", answers_toml()),
            "[tls] mode",
        ),
        (
            format!(
                "{}\n[tls]\nmode = \"internal\"\nca = \"x\"\n",
                answers_toml()
            ),
            "ca",
        ),
        ("this is not toml".to_string(), "TOML"),
    ];
    for (answers, named) in cases {
        let out = run_setup_cli(&state, &answers);
        assert!(!out.status.success(), "accepted:\n{answers}");
        let stderr = stderr_of(&out);
        assert!(stderr.contains(named), "{named} not named: {stderr}");
        assert_setup_incomplete(&state, named);
    }
    // The same state then takes a good file: nothing was half-written.
    let out = run_setup_cli(&state, &answers_toml());
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[tokio::test]
async fn a_tls_section_chooses_acme_with_its_own_ca() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let tls = "[tls]\nmode = \"acme\"\nacme_email = \"ops@home.example\"\n\
               acme_ca = \"https://ca.home.example/acme/directory\"\n";
    let out = run_setup_cli(&state, &format!("{}\n{tls}", answers_toml()));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let (mode, ca): (String, String) = open_db(&state.join("picd.db"))
        .query_row("SELECT tls_mode, acme_ca FROM cell_config", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (mode.as_str(), ca.as_str()),
        ("acme", "https://ca.home.example/acme/directory")
    );
}
