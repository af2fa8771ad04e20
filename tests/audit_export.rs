//! GET /api/audit/export?format=csv read back by a real CSV parser: the same entries as the
//! API lists, RFC 4180 quoting, and cells neutralised against spreadsheet formulas.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// A username that needs every kind of CSV care: a formula start, a comma, quotes and a line
/// break. The API would refuse to create it; the store is written directly so that logging in
/// as it puts it in the `actor` column.
const AWKWARD_USER: &str = "=cmd(),\"quoted\"\nnext line";
const AWKWARD_PASSWORD: &str = "awkward user's password";
/// Targets that start like formulas, reached through an unknown method on /assets/{path}.
const FORMULA_TARGETS: [&str; 4] = ["+SUM(1)", "-2+3", "@SUM(1)", "=1+1"];
/// The username of a failed login, which ends up inside the JSON `detail` column.
const FORMULA_LOGIN: &str = "=cmd()";
/// Enough entries that the export is streamed in more than one chunk.
const BULK_ENTRIES: usize = 300;
/// The export's chunk size (src/audit/routes.rs).
const EXPORT_CHUNK: usize = 64 * 1024;

const COLUMNS: [&str; 11] = [
    "id",
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

/// What a cell must look like in the export: a leading = + - @ (or tab, CR) gets a quote mark.
fn neutralised(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

async fn export(admin: &TestClient, query: &str) -> String {
    let resp = admin.get(&format!("/api/audit/export?{query}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/csv"), "{kind}");
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment") && disposition.contains(".csv"),
        "{disposition}"
    );
    resp.text().await.unwrap()
}

fn parse(csv_text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_text.as_bytes());
    let header = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.expect("a well-formed CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (header, rows)
}

/// The cells an API entry must have in the export, neutralised; detail is compared as JSON.
fn expected_cells(entry: &Value) -> Vec<String> {
    COLUMNS
        .iter()
        .map(|c| match &entry[*c] {
            Value::String(s) => neutralised(s),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        })
        .collect()
}

async fn make_awkward_entries(picd: &Picd, admin: &TestClient) {
    insert_user(&picd.db(), AWKWARD_USER, "peer", AWKWARD_PASSWORD);
    let awkward = picd.client();
    let body = awkward.login_ok(AWKWARD_USER, AWKWARD_PASSWORD).await;
    assert_eq!(body["user"]["username"], AWKWARD_USER);
    let resp = awkward.logout().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = awkward.login(FORMULA_LOGIN, "wrong password here").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    for target in FORMULA_TARGETS {
        let resp = admin
            .http
            .post(admin.url(&format!("/assets/{target}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn the_csv_export_reads_back_as_the_same_entries() {
    let (picd, admin) = picd_with_admin().await;
    make_awkward_entries(&picd, &admin).await;

    let text = export(&admin, "format=csv").await;
    assert!(
        text.starts_with(&format!("{}\r\n", COLUMNS.join(","))),
        "{text}"
    );
    // RFC 4180: the awkward cell is quoted, its quotes doubled, its line break kept.
    assert!(
        text.contains("\"'=cmd(),\"\"quoted\"\"\nnext line\""),
        "awkward actor not quoted as expected:\n{text}"
    );
    let (header, rows) = parse(&text);
    assert_eq!(header, COLUMNS);

    let (status, listed) = admin.get_json("/api/audit?limit=1000").await;
    assert_eq!(status, StatusCode::OK);
    let mut entries = listed["entries"].as_array().unwrap().clone();
    entries.reverse(); // the export runs oldest first
    assert_eq!(rows.len(), entries.len());
    assert_eq!(rows.len() as i64, audit_count(&picd.db()));
    for (row, entry) in rows.iter().zip(&entries) {
        let expected = expected_cells(entry);
        for (i, column) in COLUMNS.iter().enumerate() {
            if *column == "detail" {
                let detail: Value = serde_json::from_str(&row[i]).expect("detail is JSON");
                assert_eq!(detail, entry["detail"], "entry {}", entry["id"]);
            } else {
                assert_eq!(row[i], expected[i], "{column} of entry {}", entry["id"]);
            }
        }
    }

    // No cell leaves the export as a formula.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "formula cell {cell:?}"
            );
        }
    }
    let actors: Vec<&str> = rows.iter().map(|r| r[2].as_str()).collect();
    assert!(
        actors.contains(&format!("'{AWKWARD_USER}").as_str()),
        "{actors:?}"
    );
    let targets: Vec<&str> = rows.iter().map(|r| r[5].as_str()).collect();
    for target in FORMULA_TARGETS {
        assert!(
            targets.contains(&format!("'{target}").as_str()),
            "{target}: {targets:?}"
        );
    }
    // A formula inside the JSON detail is harmless (the cell starts with '{') and stays as is.
    let failed = rows
        .iter()
        .find(|r| r[3] == "auth.login" && r[6] == "denied")
        .expect("the failed login");
    let detail: Value = serde_json::from_str(&failed[8]).unwrap();
    assert_eq!(detail["username"], FORMULA_LOGIN);
}

#[tokio::test]
async fn the_export_takes_the_list_filters_and_streams_large_logs() {
    let (picd, admin) = picd_with_admin().await;
    let token = admin.csrf_token().await;
    for i in 0..BULK_ENTRIES {
        let resp = admin
            .http
            .post(admin.url(&format!("/api/bulk-{i}")))
            .header("x-csrf-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }

    let text = export(&admin, "format=csv").await;
    assert!(text.len() > EXPORT_CHUNK, "only {} bytes", text.len());
    let (_, rows) = parse(&text);
    assert_eq!(rows.len() as i64, audit_count(&picd.db()));
    let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "oldest first, none lost"
    );

    let text = export(&admin, "format=csv&action=unknown_route").await;
    let (_, rows) = parse(&text);
    assert_eq!(rows.len(), BULK_ENTRIES);
    assert!(rows.iter().all(|r| r[3] == "unknown_route"));
    let text = export(&admin, "action=setup.complete").await;
    let (_, rows) = parse(&text);
    assert_eq!(rows.len(), 1, "format defaults to csv");

    for (query, field) in [
        ("format=xml", "format"),
        ("format=csv&since=yesterday", "since"),
        ("format=csv&result=maybe", "result"),
    ] {
        let resp = admin.get(&format!("/api/audit/export?{query}")).await;
        let body = expect_error(resp, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(body["fields"][field].is_string(), "{query}: {body}");
    }
    let resp = admin.get("/api/audit/export?format=csv&colour=blue").await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_query").await;
}
