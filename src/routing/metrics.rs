//! Traffic metrics from the counters of picd's table: what reached the cell (a counter at the
//! top of prerouting, and one per port that a rule names) and what picd's rules dropped
//! (firewall drops, rejects and limits in input and forward, rate-limit lines, the
//! blocklists). Each reconcile reads the counters back; the growth since the previous pass is
//! added to the current minute's rows in SQLite, kept for `RETENTION_DAYS`. Passed is seen
//! minus dropped.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use rusqlite::{params, Connection};
use serde::Serialize;
use time::OffsetDateTime;

use super::render::{Counter, Desired};
use crate::error::ApiError;

/// Minute rows are kept this long.
pub const RETENTION_DAYS: i64 = 7;
/// Most points one history request may ask for.
pub const POINTS_MAX: i64 = 1440;
/// Ports listed in a summary.
const TOP_PORTS: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Seen,
    Dropped,
}

/// The comment of a "seen" line: all traffic (port 0), or a rule's port range.
fn seen_key(range: Option<(u16, u16)>) -> String {
    match range {
        None => "metric:seen:all".into(),
        Some((start, end)) => format!("metric:seen:{start}-{end}"),
    }
}

/// The port ranges the rules name (input and forward firewall rules, rate-limit rules).
fn port_ranges(desired: &Desired) -> Vec<(u16, u16)> {
    let firewall = desired
        .rules
        .iter()
        .filter(|r| r.chain != "output" && r.port_start != 0)
        .map(|r| (r.port_start, r.port_end));
    let limits = desired
        .rate_limits
        .iter()
        .filter(|r| r.port_start != 0)
        .map(|r| (r.port_start, r.port_end));
    let mut ranges: Vec<(u16, u16)> = firewall.chain(limits).collect();
    ranges.sort_unstable();
    ranges.dedup();
    ranges
}

/// The counting lines, first in the prerouting chain (before anything can drop).
pub fn render_seen(out: &mut String, desired: &Desired) {
    let line = |out: &mut String, matches: String, key: String| {
        let c = desired.counters.get(&key).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "    {matches}counter packets {} bytes {} comment \"{key}\"",
            c.packets, c.bytes
        );
    };
    line(out, String::new(), seen_key(None));
    for (start, end) in port_ranges(desired) {
        let ports = match end > start {
            true => format!("{start}-{end}"),
            false => start.to_string(),
        };
        let matches = format!("meta l4proto {{ tcp, udp }} th dport {ports} ");
        line(out, matches, seen_key(Some((start, end))));
    }
}

/// What each counter of the table measures, by its key: the port it is reported under (0 for
/// none) and whether it counts arrivals or drops.
pub fn classify(desired: &Desired) -> HashMap<String, (u16, Kind)> {
    let mut map = HashMap::new();
    map.insert(seen_key(None), (0, Kind::Seen));
    for range in port_ranges(desired) {
        map.insert(seen_key(Some(range)), (range.0, Kind::Seen));
    }
    for key in ["blocklist4", "blocklist6"] {
        map.insert(key.to_string(), (0, Kind::Dropped));
    }
    for key in super::peer_policy::COMMENTS {
        map.insert(key.to_string(), (0, Kind::Dropped));
    }
    for rule in &desired.rules {
        if rule.chain != "output" && rule.action != "accept" {
            map.insert(rule.id.clone(), (rule.port_start, Kind::Dropped));
        }
    }
    for rule in &desired.rate_limits {
        for part in ["block", "source4", "source6", "port"] {
            let key = super::rate_limits::comment(&rule.id, part);
            map.insert(key, (rule.port_start, Kind::Dropped));
        }
    }
    map
}

/// One minute's growth for one port.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Growth {
    pub seen: Counter,
    pub dropped: Counter,
}

fn add(a: &mut Counter, b: Counter) {
    a.packets += b.packets;
    a.bytes += b.bytes;
}

/// The growth of each port's counters from `before` to `now` (a counter that went down was
/// made anew, so all of it is growth). Drops also count toward port 0, the total.
pub fn growth(
    kinds: &HashMap<String, (u16, Kind)>,
    before: &HashMap<String, Counter>,
    now: &HashMap<String, Counter>,
) -> BTreeMap<u16, Growth> {
    let mut out: BTreeMap<u16, Growth> = BTreeMap::new();
    for (key, current) in now {
        let Some(&(port, kind)) = kinds.get(key) else {
            continue;
        };
        let previous = before.get(key).copied().unwrap_or_default();
        let delta = match current.packets >= previous.packets && current.bytes >= previous.bytes {
            true => Counter {
                packets: current.packets - previous.packets,
                bytes: current.bytes - previous.bytes,
            },
            false => *current,
        };
        if delta == Counter::default() {
            continue;
        }
        match kind {
            Kind::Seen => add(&mut out.entry(port).or_default().seen, delta),
            Kind::Dropped => {
                add(&mut out.entry(port).or_default().dropped, delta);
                if port != 0 {
                    add(&mut out.entry(0).or_default().dropped, delta);
                }
            }
        }
    }
    out
}

/// The minute a time falls in, as the rows' bucket text.
pub(super) fn minute(at: OffsetDateTime) -> String {
    let at = at
        .replace_second(0)
        .unwrap_or(at)
        .replace_nanosecond(0)
        .unwrap_or(at);
    crate::time::format_rfc3339(at)
}

/// The start (Unix seconds) of the `interval`-second bucket a minute row's bucket text falls in.
pub(super) fn bucket_start(bucket: &str, interval: i64) -> Option<i64> {
    let at = crate::time::parse_rfc3339(bucket)?;
    Some(at.unix_timestamp().div_euclid(interval) * interval)
}

/// Adds one pass's growth to the current minute's rows and drops rows past the retention.
pub fn record(
    conn: &Connection,
    growth: &BTreeMap<u16, Growth>,
    at: OffsetDateTime,
) -> rusqlite::Result<()> {
    let bucket = minute(at);
    let mut stmt = conn.prepare_cached(
        "INSERT INTO routing_metrics (bucket, port, packets_seen, packets_dropped, bytes_seen,
             bytes_dropped) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (bucket, port) DO UPDATE SET
             packets_seen = packets_seen + excluded.packets_seen,
             packets_dropped = packets_dropped + excluded.packets_dropped,
             bytes_seen = bytes_seen + excluded.bytes_seen,
             bytes_dropped = bytes_dropped + excluded.bytes_dropped",
    )?;
    for (port, g) in growth {
        stmt.execute(params![
            bucket,
            port,
            clamp(g.seen.packets),
            clamp(g.dropped.packets),
            clamp(g.seen.bytes),
            clamp(g.dropped.bytes)
        ])?;
    }
    let oldest = minute(at - time::Duration::days(RETENTION_DAYS));
    conn.execute("DELETE FROM routing_metrics WHERE bucket < ?1", [oldest])?;
    Ok(())
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Packets and bytes that passed and were dropped.
#[derive(Serialize, Default, Clone, Copy, Debug)]
pub struct Totals {
    pub packets_passed: u64,
    pub packets_dropped: u64,
    pub bytes_passed: u64,
    pub bytes_dropped: u64,
}

impl Totals {
    fn add_row(&mut self, seen: (i64, i64), dropped: (i64, i64)) {
        let (seen_p, seen_b) = (seen.0.max(0) as u64, seen.1.max(0) as u64);
        let (drop_p, drop_b) = (dropped.0.max(0) as u64, dropped.1.max(0) as u64);
        self.packets_passed += seen_p.saturating_sub(drop_p);
        self.bytes_passed += seen_b.saturating_sub(drop_b);
        self.packets_dropped += drop_p;
        self.bytes_dropped += drop_b;
    }
}

/// Sums per port since `since`: (totals of port 0, the busiest other ports).
pub fn summary(
    conn: &Connection,
    since: OffsetDateTime,
) -> Result<(Totals, Vec<(u16, Totals)>), ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT port, SUM(packets_seen), SUM(bytes_seen), SUM(packets_dropped), SUM(bytes_dropped)
         FROM routing_metrics WHERE bucket >= ?1 GROUP BY port",
    )?;
    let rows = stmt.query_map([minute(since)], |r| {
        Ok((
            r.get::<_, u16>(0)?,
            (r.get(1)?, r.get(2)?),
            (r.get(3)?, r.get(4)?),
        ))
    })?;
    let (mut total, mut ports) = (Totals::default(), Vec::new());
    for row in rows {
        let (port, seen, dropped) = row?;
        let mut t = Totals::default();
        t.add_row(seen, dropped);
        match port {
            0 => total = t,
            _ => ports.push((port, t)),
        }
    }
    ports.sort_by_key(|(port, t)| {
        (
            std::cmp::Reverse(t.packets_passed + t.packets_dropped),
            *port,
        )
    });
    ports.truncate(TOP_PORTS);
    Ok((total, ports))
}

/// Buckets of `interval` seconds from `from` to `to` for one port (0: all traffic); only
/// buckets with traffic are listed.
pub fn history(
    conn: &Connection,
    from: OffsetDateTime,
    to: OffsetDateTime,
    interval: i64,
    port: u16,
) -> Result<Vec<(OffsetDateTime, Totals)>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, packets_seen, bytes_seen, packets_dropped, bytes_dropped
         FROM routing_metrics WHERE port = ?1 AND bucket >= ?2 AND bucket < ?3 ORDER BY bucket",
    )?;
    // Up to and with the minute `to` falls in.
    let until = minute(to + time::Duration::minutes(1));
    let rows = stmt.query_map(params![port, minute(from), until], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get(1)?, r.get(2)?),
            (r.get(3)?, r.get(4)?),
        ))
    })?;
    let mut buckets: BTreeMap<i64, Totals> = BTreeMap::new();
    for row in rows {
        let (bucket, seen, dropped) = row?;
        let Some(start) = bucket_start(&bucket, interval) else {
            continue;
        };
        buckets.entry(start).or_default().add_row(seen, dropped);
    }
    Ok(buckets
        .into_iter()
        .filter_map(|(start, t)| Some((OffsetDateTime::from_unix_timestamp(start).ok()?, t)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_counts_drops_toward_their_port_and_the_total() {
        let kinds = HashMap::from([
            (seen_key(None), (0, Kind::Seen)),
            (seen_key(Some((53, 53))), (53, Kind::Seen)),
            ("r1".to_string(), (53, Kind::Dropped)),
        ]);
        let c = |packets, bytes| Counter { packets, bytes };
        let before = HashMap::from([(seen_key(None), c(10, 1000)), ("r1".into(), c(5, 500))]);
        let now = HashMap::from([
            (seen_key(None), c(30, 3000)),
            (seen_key(Some((53, 53))), c(12, 1200)),
            ("r1".into(), c(2, 200)),
            ("unknown".into(), c(99, 99)),
        ]);
        let g = growth(&kinds, &before, &now);
        assert_eq!(g[&0].seen, c(20, 2000));
        // r1 went down (made anew): all of it is growth.
        assert_eq!(g[&0].dropped, c(2, 200));
        assert_eq!(g[&53].seen, c(12, 1200));
        assert_eq!(g[&53].dropped, c(2, 200));
        assert_eq!(g.len(), 2);
    }
}
