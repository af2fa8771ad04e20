//! Clients of the mail service for its tests: curl's SMTP submission (STARTTLS, a peer's
//! login) and IMAP reads, with `mail.home.example` resolved to loopback.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::docker::{build_images, Dockerd};
use super::{picd_with_admin_using, Picd, PicdOptions, TestClient};

pub const HOST: &str = "mail.home.example";

/// curl with `mail.<domain>` resolved to loopback: (exit code, stdout, stderr).
pub fn curl(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "15", "--resolve"])
        .arg(format!("{HOST}:{port}:127.0.0.1"))
        .args(args)
        .output()
        .expect("running curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A submission of `message` from `from` to `rcpt` over STARTTLS with `login`; curl's trace
/// without the line that carries the login (it follows the server's `334`).
pub fn submit(
    port: u16,
    ca: &str,
    login: &str,
    from: &str,
    rcpt: &str,
    message: &Path,
) -> (i32, String) {
    let url = format!("smtp://{HOST}:{port}");
    let message = message.to_string_lossy();
    let args = [
        "-v",
        "--ssl-reqd",
        "--cacert",
        ca,
        "--url",
        &url,
        "--user",
        login,
        "--mail-from",
        from,
        "--mail-rcpt",
        rcpt,
        "-T",
        &message,
    ];
    let (code, _, log) = curl(port, &args);
    let mut kept = Vec::new();
    let mut hide_next = false;
    for line in log.lines() {
        if hide_next && line.starts_with("> ") {
            kept.push("> (credentials hidden)");
            hide_next = false;
            continue;
        }
        hide_next |= line.starts_with("< 334");
        kept.push(line);
    }
    (code, kept.join("\n"))
}

/// The subject of the first message in a mailbox's INBOX, over IMAP on the loopback port.
pub fn first_subject(port: u16, login: &str) -> String {
    let url = format!("imap://127.0.0.1:{port}/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)");
    curl(port, &["--url", &url, "--user", login]).1
}

/// Every message of a mailbox's INBOX, whole, over IMAP on the loopback port (UIDs 1 to
/// `up_to`; a missing one reads as empty).
pub fn inbox_text(port: u16, login: &str, up_to: u32) -> String {
    let mut all = String::new();
    for uid in 1..=up_to {
        let url = format!("imap://127.0.0.1:{port}/INBOX;UID={uid}");
        all.push_str(&curl(port, &["--url", &url, "--user", login]).1);
    }
    all
}

/// Polls `check` (a blocking client) until it holds or `within` passes.
pub async fn settles(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    check()
}

/// A cell driving `dockerd`, its images built (once per run: the cache is shared), peers
/// alice and bob added, and mail installed to its `done` step.
pub async fn cell_with_mail(dockerd: &Dockerd) -> (Picd, TestClient) {
    let options = PicdOptions {
        env: vec![(
            "PICD_DOCKER_SOCKET".into(),
            dockerd.socket().display().to_string(),
        )],
        ..PicdOptions::default()
    };
    let (picd, admin) = picd_with_admin_using(options).await;
    let built = build_images(&picd.state_dir(), dockerd);
    assert!(built.contains("mail: image sha256:"), "{built}");
    for name in ["alice", "bob"] {
        let resp = admin
            .send_json(Method::POST, "/api/peers", &json!({ "name": name }))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "adding peer {name}");
    }
    let resp = admin
        .send_json(Method::POST, "/api/store/install", &json!({ "id": "mail" }))
        .await;
    let events = resp.text().await.unwrap();
    assert!(events.contains(r#""step":"done""#), "{events}");
    (picd, admin)
}
