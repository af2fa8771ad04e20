//! Loss is never silent: picd killed with -9 after acknowledged writes, then bytes flipped in
//! the middle of its WAL (what a failing SD card does). SQLite drops every frame after the bad
//! one and the audit chain still verifies on its own; the anchor outside the database makes
//! picd name the loss at start: `/api/status` and the log say which entries are missing. The
//! daily snapshot is a consistent, private copy in backups/.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Acknowledged peer creations before the kill, as in the measurement.
const PEERS: usize = 60;
/// Bytes flipped in the middle of the WAL.
const FLIPPED: usize = 64;
/// How long the anchor may lag behind an acknowledged write on a loaded machine.
const ANCHOR_TIMEOUT: Duration = Duration::from_secs(10);

fn anchor_seq(state: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(state.join("audit-anchor.json")).ok()?;
    serde_json::from_str::<Value>(&text).ok()?["seq"].as_i64()
}

fn head_seq(picd: &Picd) -> i64 {
    picd.db()
        .query_row("SELECT seq FROM audit_head WHERE id = 1", [], |r| r.get(0))
        .unwrap()
}

/// A copy of the state directory as the disk holds it after the kill (without the WAL
/// index, which lives in shared memory and would not survive a power cut).
fn copy_state(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_file(to.join("picd.db-shm"));
}

fn flip_middle_of(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    assert!(bytes.len() > 2 * FLIPPED, "WAL of {} bytes", bytes.len());
    for byte in &mut bytes[middle..middle + FLIPPED] {
        *byte ^= 0xff;
    }
    std::fs::write(path, bytes).unwrap();
}

async fn storage_status(admin: &TestClient) -> (Value, Value) {
    let (status, body) = admin.get_json("/api/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let storage = body["subsystems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "storage")
        .cloned()
        .unwrap_or_else(|| panic!("no storage subsystem: {body}"));
    (body, storage)
}

async fn start_on(state: PathBuf) -> (Picd, TestClient) {
    let picd = Picd::start_with(PicdOptions {
        state_dir: Some(state),
        ..PicdOptions::default()
    })
    .await;
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    (picd, admin)
}

#[tokio::test]
async fn a_damaged_wal_after_kill_9_is_named_at_start() {
    let (mut picd, admin) = picd_with_admin().await;
    let (_, storage) = storage_status(&admin).await;
    assert_eq!(storage["state"], "ok", "{storage}");
    // A reader inside one transaction keeps the checkpointer from copying the peers' frames
    // into the database file: they live only in the WAL, as between two checkpoints.
    let pin = picd.db();
    pin.execute_batch("BEGIN").unwrap();
    let _: i64 = pin
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    let before = head_seq(&picd);
    for i in 0..PEERS {
        let resp = admin
            .send_json(
                Method::POST,
                "/api/peers",
                &json!({ "name": format!("p{i}") }),
            )
            .await;
        assert!(resp.status().is_success(), "peer {i}: {}", resp.status());
    }
    let acknowledged = head_seq(&picd);
    assert!(acknowledged >= before + PEERS as i64);
    let deadline = Instant::now() + ANCHOR_TIMEOUT;
    while anchor_seq(&picd.state_dir()) != Some(acknowledged) {
        assert!(
            Instant::now() < deadline,
            "the anchor did not reach {acknowledged}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    picd.kill_hard();
    let damaged = picd.root().join("damaged");
    copy_state(&picd.state_dir(), &damaged);
    drop(pin);
    flip_middle_of(&damaged.join("picd.db-wal"));

    // What the damaged database holds before picd (and the sign-in) writes to it.
    let remaining: i64 = rusqlite::Connection::open_with_flags(
        damaged.join("picd.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
    .query_row("SELECT seq FROM audit_head WHERE id = 1", [], |r| r.get(0))
    .unwrap();
    assert!(remaining < acknowledged, "nothing was lost: {remaining}");
    let (mut restarted, admin) = start_on(damaged.clone()).await;
    let (body, storage) = storage_status(&admin).await;
    let named = format!(
        "audit entries {} to {acknowledged} ({} acknowledged change(s)) are missing",
        remaining + 1,
        acknowledged - remaining
    );
    assert_eq!(storage["state"], "degraded", "{storage}");
    let reason = storage["reason"].as_str().unwrap();
    assert!(reason.contains(&named), "{reason}");
    assert!(reason.contains("backups/") && reason.contains("picd audit reanchor"));
    assert_eq!(body["overall"], "degraded");
    let log = restarted.log();
    assert!(
        log.contains("storage is degraded") && log.contains(&named),
        "{log}"
    );
    let peers: i64 = restarted
        .db()
        .query_row("SELECT COUNT(*) FROM peers", [], |r| r.get(0))
        .unwrap();
    assert!(peers < PEERS as i64, "{peers} peers");
    eprintln!(
        "after kill -9 and {FLIPPED} flipped WAL bytes: {peers} of {PEERS} peers kept, \
         audit entries {} to {acknowledged} named as missing",
        remaining + 1
    );

    // Changes are refused until the owner acknowledges the loss; reads keep working.
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "after" }))
        .await;
    expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "storage_degraded").await;
    let (status, _) = admin.get_json("/api/peers").await;
    assert_eq!(status, StatusCode::OK);
    let resp = admin
        .send_json(Method::POST, "/api/status/storage/acknowledge", &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    // New writes do not hide the loss: the anchor is kept, and a restart names it again.
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "after" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    restarted.restart().await;
    let admin = restarted.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let (_, storage) = storage_status(&admin).await;
    assert_eq!(storage["state"], "degraded", "{storage}");

    // The owner accepts the loss: the anchor moves to the head, and picd is whole again.
    restarted.stop();
    let out = picd_cli(
        &[
            "audit",
            "reanchor",
            "--state-dir",
            damaged.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let (restarted, admin) = start_on(damaged).await;
    let (_, storage) = storage_status(&admin).await;
    assert_eq!(storage["state"], "ok", "{storage}");
    // A start that finds the storage whole drops the acknowledgement: the next loss is
    // refused anew.
    assert!(!restarted.state_dir().join("storage-acknowledged").exists());
    drop(restarted);
}

#[tokio::test]
async fn a_snapshot_is_a_private_consistent_copy_in_backups() {
    let (mut picd, _admin) = picd_with_admin().await;
    // Taken at start when none is recent; the first start had an empty audit log.
    picd.restart().await;
    let dir = picd.state_dir().join("backups");
    let deadline = Instant::now() + ANCHOR_TIMEOUT;
    let snapshot = loop {
        let found: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        if let Some(path) = found.into_iter().find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("snapshot-") && name.ends_with(".db")
        }) {
            break path;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mode = std::fs::metadata(&snapshot).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let copy = open_db(&snapshot);
    let check: String = copy
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    assert!(audit_count(&copy) > 0);
    let setup_done: i64 = copy
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(setup_done >= 1);
}

/// Rounds of write-then-stop: the anchor must hold the last acknowledged entry every time.
const STOP_ROUNDS: usize = 5;

#[tokio::test]
async fn the_anchor_holds_the_last_write_even_when_picd_stops_right_after_it() {
    let (mut picd, _admin) = picd_with_admin().await;
    for round in 0..STOP_ROUNDS {
        let admin = picd.client();
        admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
        let resp = admin
            .send_json(
                Method::POST,
                "/api/peers",
                &json!({ "name": format!("stop{round}") }),
            )
            .await;
        assert!(resp.status().is_success(), "{}", resp.status());
        // SIGTERM at once: the last entry is anchored before picd exits (at shutdown if the
        // keeper had not reached it yet), not only after a next write that never comes.
        let (_, status) = picd.terminate().expect("picd stopped on SIGTERM");
        assert!(status.success(), "{status}");
        let head = head_seq(&picd);
        assert_eq!(
            anchor_seq(&picd.state_dir()),
            Some(head),
            "round {round}: the anchor trails the database's head {head}"
        );
        picd.restart().await;
    }
    // And while picd runs, the anchor reaches each write without a next one.
    let admin = picd.client();
    admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
    let resp = admin
        .send_json(Method::POST, "/api/peers", &json!({ "name": "running" }))
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let head = head_seq(&picd);
    let deadline = Instant::now() + ANCHOR_TIMEOUT;
    while anchor_seq(&picd.state_dir()) != Some(head) {
        assert!(Instant::now() < deadline, "the anchor did not reach {head}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes in flight when SIGTERM comes, per round: answered in the shutdown grace.
const IN_FLIGHT: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_answered_during_shutdown_are_anchored() {
    let (mut picd, _admin) = picd_with_admin().await;
    for round in 0..STOP_ROUNDS {
        let admin = std::sync::Arc::new(picd.client());
        admin.login_ok(ADMIN_USER, ADMIN_PASSWORD).await;
        let token = admin.csrf_token().await;
        let url = admin.url("/api/peers");
        let mut writes = Vec::new();
        for i in 0..IN_FLIGHT {
            let (admin, token, url) = (admin.clone(), token.clone(), url.clone());
            writes.push(tokio::spawn(async move {
                admin
                    .http
                    .post(url)
                    .header("x-csrf-token", token)
                    .json(&json!({ "name": format!("flight{round}x{i}") }))
                    .send()
                    .await
                    .map(|r| r.status())
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (_, status) = tokio::task::block_in_place(|| picd.terminate()).expect("stopped");
        assert!(status.success(), "{status}");
        let mut answered = 0;
        for write in writes {
            if write.await.unwrap().is_ok_and(|s| s.is_success()) {
                answered += 1;
            }
        }
        let head = head_seq(&picd);
        assert_eq!(
            anchor_seq(&picd.state_dir()),
            Some(head),
            "round {round}: {answered} writes answered, the anchor trails the head {head}"
        );
        picd.restart().await;
    }
}
