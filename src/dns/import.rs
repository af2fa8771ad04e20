//! POST /api/dns/zones/{zone}/import: a BIND zone file (text/plain, or JSON
//! `{"content": "..."}`) read by picd's own zone reader, checked against the zone on a reader
//! connection, and written in short writer jobs.
//!
//! The writer is one thread every request shares: a 100,000-record import in one transaction
//! held it for seconds, and every login and API write waited behind it. So the file is parsed
//! and checked (types, TTLs, duplicates, CNAME rules, caps) against the zone's index loaded
//! once, off the writer; then the records are inserted by writer jobs that each stop after
//! `JOB_BUDGET` of work, with other writes interleaved between them. A record that a concurrent write made
//! a duplicate in between is reported on its line. The serial bump and the audit entry
//! (counts and errors) come last, in one transaction; refresh after that.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::Record;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use super::index::{check_cname_rules_in, ZoneIndex};
use super::input;
use super::store;
use super::zonefile::{self, ImportError};
use crate::audit::AuditCtx;
use crate::auth::AdminUser;
use crate::dns::DnsApp;
use crate::error::{ApiError, ApiResult, Json, Path};

/// How long one writer job of an import may insert before it hands the writer back: a write
/// that arrives meanwhile waits at most this (plus the job's commit). A fixed count of records
/// per job took tens of milliseconds on a loaded machine.
const JOB_BUDGET: Duration = Duration::from_millis(4);

/// What the file asks for once it has been checked against the zone.
struct Plan {
    /// New records, each with its line.
    records: Vec<(usize, Record)>,
    skipped: usize,
    errors: Vec<ImportError>,
    ignored: Vec<(usize, String)>,
}

#[derive(Clone, Copy)]
struct Limits {
    per_import: usize,
    per_zone: usize,
    /// How long one writer job may insert (`JOB_BUDGET`).
    job_budget: Duration,
}

pub async fn import(
    _admin: AdminUser,
    State(app): State<DnsApp>,
    audit: AuditCtx,
    Path(zone): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let zone = input::zone_name(&zone)?;
    let text = match read_text(&headers, body, app.settings.dns_max_import_bytes).await {
        Ok(text) => text,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "dns_zone", &zone, json!({}), err)
                .await)
        }
    };
    let limits = Limits {
        per_import: app.settings.dns_max_import_records,
        per_zone: app.settings.dns_max_records_per_zone,
        job_budget: JOB_BUDGET,
    };
    let name = zone.clone();
    let plan = app
        .db
        .call(move |conn| plan(conn, &name, &text, limits))
        .await;
    let mut plan = match plan {
        Ok(plan) => plan,
        Err(err) => {
            return Err(audit
                .refuse(&app.db, "dns_zone", &zone, json!({}), err)
                .await)
        }
    };
    // Reversed, so each job takes its records from the end without moving the rest.
    let mut pending = std::mem::take(&mut plan.records);
    pending.reverse();
    let mut imported = 0usize;
    while !pending.is_empty() {
        let name = zone.clone();
        let (count, errors, rest) = app
            .db
            .write_background(move |tx| insert_for_a_while(tx, &name, pending, limits))
            .await?;
        imported += count;
        plan.errors.extend(errors);
        pending = rest;
    }
    let (skipped, mut errors) = (plan.skipped, plan.errors);
    // Errors come from parsing, planning and the writer jobs: report them in file order.
    errors.sort_by_key(|e| e.line);
    let error_count = errors.len();
    audit
        .transact(&app.db, move |tx, entry| {
            entry.target_type = "dns_zone".into();
            entry.target_id = zone.clone();
            let serial = store::bump_serial(tx, &zone)?;
            entry.detail = json!({ "imported": imported, "skipped_existing": skipped,
                                   "errors": error_count, "serial": serial });
            Ok(())
        })
        .await?;
    app.dns.refresh(&app.db);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    let ignored: Vec<Value> = plan
        .ignored
        .into_iter()
        .map(|(line, what)| json!({ "line": line, "record": what }))
        .collect();
    let body = json!({ "imported": imported, "skipped_existing": skipped, "errors": errors, "ignored": ignored });
    Ok((status, Json(body)).into_response())
}

/// The body as text, read up to the import cap (413 naming it past that).
async fn read_text(headers: &HeaderMap, body: Body, max_bytes: usize) -> ApiResult<String> {
    let too_large = || ApiError::LimitExceeded {
        limit: "dns_max_import_bytes",
        max: max_bytes,
        too_large: true,
    };
    let bytes = axum::body::to_bytes(body, max_bytes)
        .await
        .map_err(|_| too_large())?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ImportBody {
            content: String,
        }
        serde_json::from_slice::<ImportBody>(&bytes)
            .map(|b| b.content)
            .map_err(|_| {
                ApiError::bad_request("malformed_json", "expected {\"content\": \"<zone file>\"}")
            })
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("not_text", "the zone file must be UTF-8 text"))
    }
}

/// Parses the file and checks every record against the zone's index (loaded once), on a
/// reader connection.
fn plan(conn: &rusqlite::Connection, zone: &str, text: &str, limits: Limits) -> ApiResult<Plan> {
    let zone_row = store::require_zone(conn, zone)?;
    let parsed = zonefile::import(text, &zone_row.origin()?, zone_row.default_ttl)
        .map_err(|e| ApiError::invalid("content", format!("line {}: {}", e.line, e.error)))?;
    if parsed.records.len() > limits.per_import {
        return Err(ApiError::LimitExceeded {
            limit: "dns_max_import_records",
            max: limits.per_import,
            too_large: true,
        });
    }
    let mut index = ZoneIndex::load(conn, zone)?;
    let mut plan = Plan {
        records: Vec::new(),
        skipped: 0,
        errors: parsed.errors,
        ignored: parsed.ignored,
    };
    for (line, record) in parsed.records {
        let name = record.name.to_lowercase().to_string();
        let rtype = record.record_type().to_string();
        let fail = |error: String| ImportError {
            line,
            text: format!("{name} {rtype}"),
            error,
        };
        if let Err(error) = input::check_storable(&record) {
            plan.errors.push(fail(error));
            continue;
        }
        let data = zonefile::rdata_text(&record.data);
        if index.contains(&name, &rtype, &data, "public") {
            plan.skipped += 1;
            continue;
        }
        if let Err(e) = index.check_cname_rules(&record, "public") {
            plan.errors.push(fail(e.to_string()));
            continue;
        }
        index.insert(&store::RecordRow {
            id: String::new(),
            zone: zone.into(),
            name: name.clone(),
            rtype: rtype.clone(),
            ttl: record.ttl,
            data,
            view: "public".into(),
            wire: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
        });
        plan.records.push((line, record));
    }
    if index.len() > limits.per_zone {
        return Err(ApiError::LimitExceeded {
            limit: "dns_max_records_per_zone",
            max: limits.per_zone,
            too_large: false,
        });
    }
    Ok(plan)
}

/// What one writer job inserted, the lines it refused, and the records left for the next job.
type JobOutcome = (usize, Vec<ImportError>, Vec<(usize, Record)>);

/// One writer job (a background one: writes queued meanwhile go first, and never share its
/// commit): inserts records taken from the end of `pending` until `JOB_BUDGET` has passed (at
/// least one per job, so an import always advances), and gives back the rest. The plan was
/// made on a reader, so what a concurrent write stored since is checked again here: a
/// duplicate or a CNAME conflict is an error on its line, and a zone that reached its cap
/// refuses the records left, each on its line.
fn insert_for_a_while(
    tx: &rusqlite::Transaction<'_>,
    zone: &str,
    mut pending: Vec<(usize, Record)>,
    limits: Limits,
) -> ApiResult<JobOutcome> {
    store::require_zone(tx, zone)?;
    let started = Instant::now();
    let mut stored = store::record_count(tx, zone)?;
    let (mut count, mut errors) = (0, Vec::new());
    while let Some((line, record)) = pending.pop() {
        if stored >= limits.per_zone {
            let full = format!(
                "the zone holds dns_max_records_per_zone ({}) records",
                limits.per_zone
            );
            errors.push(refused(line, &record, full.clone()));
            errors.extend(
                pending
                    .drain(..)
                    .map(|(line, record)| refused(line, &record, full.clone())),
            );
            break;
        }
        let inserted = check_cname_rules_in(tx, zone, &record, "public")
            .and_then(|()| store::insert_record(tx, zone, &record, "public"));
        match inserted {
            Ok(_) => (count, stored) = (count + 1, stored + 1),
            Err(e @ ApiError::Conflict { .. }) => {
                errors.push(refused(line, &record, e.to_string()))
            }
            Err(other) => return Err(other),
        }
        if started.elapsed() >= limits.job_budget {
            break;
        }
    }
    Ok((count, errors, pending))
}

fn refused(line: usize, record: &Record, error: String) -> ImportError {
    ImportError {
        line,
        text: format!("{} {}", record.name.to_lowercase(), record.record_type()),
        error,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, RData};

    use super::*;

    const ZONE: &str = "home.example";

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/0004_dns.sql"))
            .unwrap();
        store::create_zone(&conn, ZONE, 300).unwrap();
        conn
    }

    fn a(name: &str, last: u8) -> Record {
        let name = Name::from_str(&format!("{name}.{ZONE}.")).unwrap();
        Record::from_rdata(name, 300, RData::A(A::new(10, 0, 0, last)))
    }

    fn cname(name: &str, target: &str) -> Record {
        let name = Name::from_str(&format!("{name}.{ZONE}.")).unwrap();
        let target = Name::from_str(target).unwrap();
        Record::from_rdata(name, 300, RData::CNAME(CNAME(target)))
    }

    /// The job's time budget is out of these tests' way: a loaded machine may take longer
    /// than `JOB_BUDGET` for one insert, and the tests are about the lines, not the time.
    fn limits(per_zone: usize) -> Limits {
        Limits {
            per_import: 100,
            per_zone,
            job_budget: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_cname_stored_after_the_plan_refuses_the_line_it_conflicts_with() {
        let mut conn = db();
        let tx = conn.transaction().unwrap();
        // A concurrent write, after the plan was made on a reader.
        store::insert_record(&tx, ZONE, &cname("www", "elsewhere.example."), "public").unwrap();
        let pending = vec![(2, a("mail", 2)), (1, a("www", 1))];
        let (count, errors, rest) = insert_for_a_while(&tx, ZONE, pending, limits(10)).unwrap();
        assert_eq!(count, 1, "the other line is imported");
        assert!(rest.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].error.contains("CNAME"), "{}", errors[0].error);
    }

    #[test]
    fn a_zone_filled_after_the_plan_refuses_every_line_left() {
        let mut conn = db();
        let tx = conn.transaction().unwrap();
        store::insert_record(&tx, ZONE, &a("one", 1), "public").unwrap();
        store::insert_record(&tx, ZONE, &a("two", 2), "public").unwrap();
        let pending = vec![(3, a("c", 3)), (2, a("b", 2)), (1, a("a", 1))];
        let (count, errors, rest) = insert_for_a_while(&tx, ZONE, pending, limits(3)).unwrap();
        assert_eq!(count, 1, "one record fits under the cap");
        assert!(
            rest.is_empty(),
            "the records left are refused, not carried on"
        );
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3]);
        assert!(errors[0].error.contains("dns_max_records_per_zone (3)"));
        assert_eq!(store::record_count(&tx, ZONE).unwrap(), 3);
    }
}
