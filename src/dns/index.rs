//! A zone's records as one write needs them: which (name, type, data, view) exist, and which
//! names hold a CNAME. Loaded once per transaction or import, then kept up to date in memory,
//! so a bulk or an import costs one read of the zone instead of one per record.

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

    pub fn remove(&mut self, row: &RecordRow) {
        let key = (
            row.name.clone(),
            row.rtype.clone(),
            row.data.clone(),
            row.view.clone(),
        );
        if self.records.remove(&key) {
            if let Some(counts) = self.names.get_mut(&(row.name.clone(), row.view.clone())) {
                if row.rtype == "CNAME" {
                    counts.0 = counts.0.saturating_sub(1);
                } else {
                    counts.1 = counts.1.saturating_sub(1);
                }
            }
        }
    }

    /// RFC 1034: a name with a CNAME has no other data, and a CNAME cannot join other data.
    pub fn check_cname_rules(&self, record: &Record, view: &str) -> Result<(), ApiError> {
        let name = record.name.to_lowercase().to_string();
        let (cnames, others) = self
            .names
            .get(&(name.clone(), view.to_string()))
            .copied()
            .unwrap_or_default();
        let is_cname = record.record_type() == RecordType::CNAME;
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
}
