//! Time in picd: UTC, RFC 3339 in JSON and in the store. Stored times always carry six
//! fractional digits and `Z`, so they sort and compare as plain strings in SQL.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The current time, e.g. `2026-11-24T07:16:00.123456Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(now())
}

pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fixed =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.format(&fixed)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses any RFC 3339 time (any offset, any precision).
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}
