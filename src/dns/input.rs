//! Validation of DNS API input: zone names, record names relative to their zone, types the
//! API manages, and record data read by picd's own zone-text reader (one line, no
//! directives).

use hickory_proto::rr::{Name, Record};
use serde::Deserialize;

use super::store::ZoneRow;
use super::zonefile;
use crate::error::ApiError;

/// Types that can be written through the API (SOA and apex NS are the cell's own).
pub const WRITABLE: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR"];
pub const MAX_TTL: u32 = 604_800;

/// A zone name from a path or body: lowercase, absolute.
pub fn zone_name(text: &str) -> Result<String, ApiError> {
    let trimmed = text.trim().trim_end_matches('.').to_ascii_lowercase();
    crate::cell::domain_name(&trimmed).map_err(|m| ApiError::invalid("zone", m))?;
    Ok(format!("{trimmed}."))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: Option<u32>,
    pub data: String,
    pub view: Option<String>,
}

/// The record an input describes, checked against its zone.
pub fn record(zone: &ZoneRow, input: &RecordInput) -> Result<(Record, String), ApiError> {
    let origin = zone.origin()?;
    let mut fields = Vec::new();
    let rtype = input.rtype.trim().to_ascii_uppercase();
    if !WRITABLE.contains(&rtype.as_str()) {
        fields.push((
            "type".to_string(),
            format!("must be one of {}", WRITABLE.join(", ")),
        ));
    }
    let owner = owner_name(&input.name, &origin);
    if let Err(m) = &owner {
        fields.push(("name".into(), m.clone()));
    }
    let ttl = input.ttl.unwrap_or(zone.default_ttl);
    if !(1..=MAX_TTL).contains(&ttl) {
        fields.push(("ttl".into(), format!("must be from 1 to {MAX_TTL} seconds")));
    }
    let data = input.data.trim();
    if data.is_empty()
        || data.len() > 4000
        || data.chars().any(|c| c.is_control())
        || data.contains(['(', ')', ';']) && !data.starts_with('"')
    {
        fields.push((
            "data".into(),
            "must be the record's data on one line".into(),
        ));
    }
    let view = input.view.clone().unwrap_or_else(|| "public".into());
    if view != "public" && view != "internal" {
        fields.push((
            "view".into(),
            "must be public (everyone) or internal (peers only)".into(),
        ));
    }
    if !fields.is_empty() {
        return Err(ApiError::Invalid { fields });
    }
    let owner = owner.unwrap_or_else(|_| origin.clone());
    if rtype == "NS" && owner == origin {
        return Err(ApiError::invalid(
            "name",
            "the zone's own NS records are managed by the cell",
        ));
    }
    let record = zonefile::parse_one(&origin, ttl, &format!("{owner} {ttl} IN {rtype} {data}"))
        .map_err(|m| ApiError::invalid("data", format!("not valid {rtype} data: {m}")))?;
    Ok((record, view))
}

/// What a single write also demands of an imported record: a type picd stores and a TTL in
/// range.
pub fn check_storable(record: &Record) -> Result<(), String> {
    let rtype = record.record_type().to_string();
    if !WRITABLE.contains(&rtype.as_str()) {
        return Err(format!(
            "{rtype} records are not stored; types: {}",
            WRITABLE.join(", ")
        ));
    }
    if !(1..=MAX_TTL).contains(&record.ttl) {
        return Err(format!("the TTL must be from 1 to {MAX_TTL} seconds"));
    }
    Ok(())
}

/// `@`, a relative name, or an absolute name inside the zone.
pub fn owner_name(text: &str, origin: &Name) -> Result<Name, String> {
    let text = text.trim();
    if text == "@" || text.is_empty() {
        return Ok(origin.clone());
    }
    let valid = text.len() <= 253
        && text.split('.').filter(|l| !l.is_empty()).all(|l| {
            l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
        });
    if !valid {
        return Err("must be @, a name relative to the zone, or an absolute name in it".into());
    }
    let name = Name::parse(text, Some(origin))
        .map_err(|e| e.to_string())?
        .to_lowercase();
    if !origin.zone_of(&name) {
        return Err(format!("{name} is not inside the zone {origin}"));
    }
    Ok(name)
}
