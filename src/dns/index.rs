//! A zone's records as an import's plan needs them: which (name, type, data, view) exist, and
//! which names hold a CNAME. Loaded once per import on a reader, then kept up to date in
//! memory as the plan takes records, so planning costs one read of the zone. Writes on the
//! writer ask the same CNAME rules of the database, for the names they touch only
//! (`check_cname_rules_in`).

use std::collections::{HashMap, HashSet};

use hickory_proto::rr::{Record, RecordType};
use rusqlite::Connection;

use super::store::{self, RecordRow};
use crate::error::ApiError;

#[derive(Debug, Default)]
pub struct ZoneIndex {
    /// (name, type, data, view) of every record.
    records: HashSet<(String, String, String, String)>,
    /// Per (name, view): how many CNAME records and how many others.
    names: HashMap<(String, String), (usize, usize)>,
}

impl ZoneIndex {
    pub fn load(conn: &Connection, zone: &str) -> rusqlite::Result<ZoneIndex> {
        let mut index = ZoneIndex::default();
        for row in store::records(conn, zone)? {
            index.insert(&row);
        }
        Ok(index)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn contains(&self, name: &str, rtype: &str, data: &str, view: &str) -> bool {
        // The set is keyed by owned strings; a lookup builds one key.
        self.records
            .contains(&(name.into(), rtype.into(), data.into(), view.into()))
    }

    pub fn insert(&mut self, row: &RecordRow) {
        let key = (
            row.name.clone(),
            row.rtype.clone(),
            row.data.clone(),
            row.view.clone(),
        );
        if self.records.insert(key) {
            let counts = self
                .names
                .entry((row.name.clone(), row.view.clone()))
                .or_default();
            if row.rtype == "CNAME" {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }

    /// RFC 1034: a name with a CNAME has no other data, and a CNAME cannot join other data.
    pub fn check_cname_rules(&self, record: &Record, view: &str) -> Result<(), ApiError> {
        let name = record.name.to_lowercase().to_string();
        let counts = self
            .names
            .get(&(name.clone(), view.to_string()))
            .copied()
            .unwrap_or_default();
        cname_rule(&name, counts, record.record_type() == RecordType::CNAME)
    }
}

/// The same rules as `ZoneIndex::check_cname_rules`, asked of the database for the one name
/// a write touches (the `dns_records_name` index): a write costs a lookup, not a read of the
/// whole zone, and sees what a concurrent import already stored.
pub fn check_cname_rules_in(
    conn: &Connection,
    zone: &str,
    record: &Record,
    view: &str,
) -> Result<(), ApiError> {
    let name = record.name.to_lowercase().to_string();
    let counts = store::name_counts(conn, zone, &name, view)?;
    cname_rule(&name, counts, record.record_type() == RecordType::CNAME)
}

/// `counts` are the CNAME records and the other records `name` holds.
fn cname_rule(
    name: &str,
    (cnames, others): (usize, usize),
    is_cname: bool,
) -> Result<(), ApiError> {
    if is_cname && cnames > 0 {
        return Err(ApiError::conflict(
            "cname_conflict",
            format!("{name} already has a CNAME"),
        ));
    }
    if (is_cname && others > 0) || (!is_cname && cnames > 0) {
        return Err(ApiError::conflict(
            "cname_conflict",
            format!("{name} has a CNAME: it cannot have other records"),
        ));
    }
    Ok(())
}
