//! Tamper detection: editing any field, deleting a middle or the last row, and swapping two
//! rows' contents in the database are each caught by GET /api/audit/verify and by
//! `picd audit verify`, which name the first bad entry.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use rusqlite::Connection;
use serde_json::Value;

/// Entries made on top of the wizard's four, so that there is a middle to tamper with.
const EXTRA_ENTRIES: usize = 4;
/// The entry tampered with where any entry in the middle would do.
const VICTIM: i64 = 5;
/// Every column an attacker could edit (all but seq, which is the row's position).
const EDITABLE: [&str; 10] = [
    "time",
    "actor",
    "action",
    "target_type",
    "target_id",
    "result",
    "client_addr",
    "detail",
    "prev_hash",
    "hash",
];

/// A picd with a completed wizard and a few more entries; returns it, the admin client and
/// the number of entries.
async fn logged_picd() -> (Picd, TestClient, i64) {
    let (picd, admin) = picd_with_admin().await;
    let (_, config) = admin.get_json("/api/config").await;
    for _ in 0..EXTRA_ENTRIES {
        let resp = admin.send_json(Method::PUT, "/api/config", &config).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let count = audit_count(&picd.db());
    assert!(count > VICTIM + 1, "too few entries: {count}");
    (picd, admin, count)
}

async fn api_verify(admin: &TestClient) -> Value {
    let (status, report) = admin.get_json("/api/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

/// `picd audit verify` on the state directory: its exit code and its JSON report.
fn cli_verify(picd: &Picd) -> (Option<i32>, Value) {
    let state = picd.state_dir();
    let out = picd_cli(
        &["audit", "verify", "--state-dir", state.to_str().unwrap()],
        None,
    );
    let report = serde_json::from_str(&stdout_of(&out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout_of(&out), stderr_of(&out)));
    (out.status.code(), report)
}

async fn assert_chain_holds(picd: &Picd, admin: &TestClient, count: i64) {
    let report = api_verify(admin).await;
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["checked"], count, "{report}");
    assert_eq!(report["first_bad_id"], Value::Null, "{report}");
    let (code, report) = cli_verify(picd);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["checked"], count, "{report}");
}

/// Both verify paths report a broken chain whose first bad entry is `first_bad`.
async fn assert_tamper_found(picd: &Picd, admin: &TestClient, first_bad: i64, what: &str) {
    let report = api_verify(admin).await;
    assert_eq!(report["valid"], false, "{what}: API {report}");
    assert_eq!(report["first_bad_id"], first_bad, "{what}: API {report}");
    assert!(
        report["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{report}"
    );
    let (code, report) = cli_verify(picd);
    assert_eq!(code, Some(1), "{what}: CLI {report}");
    assert_eq!(report["valid"], false, "{what}: CLI {report}");
    assert_eq!(report["first_bad_id"], first_bad, "{what}: CLI {report}");
}

fn row(db: &Connection, seq: i64) -> Vec<String> {
    db.query_row(
        &format!(
            "SELECT {} FROM audit_log WHERE seq = ?1",
            EDITABLE.join(", ")
        ),
        [seq],
        |r| (0..EDITABLE.len()).map(|i| r.get::<_, String>(i)).collect(),
    )
    .expect("an audit row")
}

fn write_row(db: &Connection, seq: i64, values: &[String]) {
    let sets: Vec<String> = EDITABLE
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 2))
        .collect();
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&seq];
    params.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
    let changed = db
        .execute(
            &format!("UPDATE audit_log SET {} WHERE seq = ?1", sets.join(", ")),
            params.as_slice(),
        )
        .expect("rewriting a row");
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn editing_any_field_is_detected() {
    let (picd, admin, count) = logged_picd().await;
    assert_chain_holds(&picd, &admin, count).await;
    let db = picd.db();
    let original = row(&db, VICTIM);
    for (i, column) in EDITABLE.iter().enumerate() {
        let mut edited = original.clone();
        edited[i] = match *column {
            "detail" => r#"{"changed":["nothing to see"]}"#.to_string(),
            "prev_hash" | "hash" => "f".repeat(64),
            "time" => "2020-01-01T00:00:00.000000Z".to_string(),
            _ => format!("{}x", original[i]),
        };
        write_row(&db, VICTIM, &edited);
        assert_tamper_found(&picd, &admin, VICTIM, &format!("edited {column}")).await;
        write_row(&db, VICTIM, &original);
    }
    // Put back as it was, the chain holds again: the checks above saw the edits, nothing else.
    assert_chain_holds(&picd, &admin, count).await;
}

#[tokio::test]
async fn deleting_a_middle_row_is_detected() {
    let (picd, admin, count) = logged_picd().await;
    assert_chain_holds(&picd, &admin, count).await;
    let deleted = picd
        .db()
        .execute("DELETE FROM audit_log WHERE seq = ?1", [VICTIM])
        .unwrap();
    assert_eq!(deleted, 1);
    assert_tamper_found(&picd, &admin, VICTIM, "deleted a middle row").await;
}

#[tokio::test]
async fn deleting_the_last_row_is_detected_even_offline() {
    let (mut picd, admin, count) = logged_picd().await;
    assert_chain_holds(&picd, &admin, count).await;
    let deleted = picd
        .db()
        .execute("DELETE FROM audit_log WHERE seq = ?1", [count])
        .unwrap();
    assert_eq!(deleted, 1);
    assert_tamper_found(&picd, &admin, count, "deleted the last row").await;

    // The offline check needs no running picd.
    picd.stop();
    let (code, report) = cli_verify(&picd);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["first_bad_id"], count, "{report}");
}

#[tokio::test]
async fn swapping_two_rows_is_detected() {
    let (picd, admin, count) = logged_picd().await;
    assert_chain_holds(&picd, &admin, count).await;
    let db = picd.db();
    let (first, second) = (row(&db, VICTIM), row(&db, VICTIM + 1));
    write_row(&db, VICTIM, &second);
    write_row(&db, VICTIM + 1, &first);
    assert_tamper_found(&picd, &admin, VICTIM, "swapped two rows").await;
}

#[tokio::test]
async fn verify_is_admin_only_and_reports_an_empty_log_as_valid() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    let out = picd_cli(&["migrate", "--state-dir", state.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = picd_cli(
        &["audit", "verify", "--state-dir", state.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(
        (report["valid"].clone(), report["checked"].clone()),
        (true.into(), 0.into())
    );

    let (picd, _admin, peer) = picd_with_admin_and_peer().await;
    let resp = picd.client().get("/api/audit/verify").await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = peer.get("/api/audit/verify").await;
    expect_error(resp, StatusCode::FORBIDDEN, "admin_only").await;
}
