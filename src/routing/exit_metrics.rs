//! Per-peer traffic through each exit, kept as metrics: each pass adds the growth of a peer's
//! counting lines (see `connectivity::traffic`) to the current minute's row for that peer and
//! exit, kept as long as the other metrics.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};

use time::OffsetDateTime;

use super::metrics::{bucket_start, minute, RETENTION_DAYS};
use super::render::Counter;
use crate::connectivity::{traffic, ExitTable};
use crate::error::ApiError;

/// (peer, connection) -> growth.
pub type ExitGrowth = BTreeMap<(String, String), Counter>;

/// The growth of each counted peer's lines from `before` to `now` (a line that went down was
/// made anew, so all of it is growth).
pub fn growth(
    table: &ExitTable,
    before: &HashMap<String, Counter>,
    now: &HashMap<String, Counter>,
) -> ExitGrowth {
    let mut out = ExitGrowth::new();
    for p in &table.counted {
        let mut delta = Counter::default();
        for key in traffic::comments(&p.peer, &p.connection) {
            let Some(current) = now.get(&key) else {
                continue;
            };
            let previous = before.get(&key).copied().unwrap_or_default();
            let grew = current.packets >= previous.packets && current.bytes >= previous.bytes;
            let (packets, bytes) = match grew {
                true => (
                    current.packets - previous.packets,
                    current.bytes - previous.bytes,
                ),
                false => (current.packets, current.bytes),
            };
            delta.packets += packets;
            delta.bytes += bytes;
        }
        if delta != Counter::default() {
            out.insert((p.peer.clone(), p.connection.clone()), delta);
        }
    }
    out
}

/// Adds one pass's growth to the current minute's rows and drops rows past the retention.
pub fn record(conn: &Connection, growth: &ExitGrowth, at: OffsetDateTime) -> rusqlite::Result<()> {
    let bucket = minute(at);
    let mut stmt = conn.prepare_cached(
        "INSERT INTO routing_exit_metrics (bucket, peer_name, connection_id, packets, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (bucket, peer_name, connection_id) DO UPDATE SET
             packets = packets + excluded.packets, bytes = bytes + excluded.bytes",
    )?;
    for ((peer, connection), c) in growth {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        stmt.execute(params![
            bucket,
            peer,
            connection,
            clamp(c.packets),
            clamp(c.bytes)
        ])?;
    }
    let oldest = minute(at - time::Duration::days(RETENTION_DAYS));
    conn.execute(
        "DELETE FROM routing_exit_metrics WHERE bucket < ?1",
        [oldest],
    )?;
    Ok(())
}

/// Each peer's traffic through each exit since `since`, busiest first.
pub fn summary(
    conn: &Connection,
    since: OffsetDateTime,
) -> Result<Vec<(String, String, Counter)>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT peer_name, connection_id, SUM(packets), SUM(bytes) FROM routing_exit_metrics
         WHERE bucket >= ?1 GROUP BY peer_name, connection_id
         ORDER BY SUM(bytes) DESC, peer_name, connection_id",
    )?;
    let rows = stmt.query_map([minute(since)], |r| {
        let (packets, bytes): (i64, i64) = (r.get(2)?, r.get(3)?);
        Ok((
            r.get(0)?,
            r.get(1)?,
            Counter {
                packets: packets.max(0) as u64,
                bytes: bytes.max(0) as u64,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One peer's traffic through any exit in buckets of `interval` seconds from `from` to `to`
/// (a peer moved between exits within a bucket has both summed); only buckets with traffic
/// are listed.
pub fn history(
    conn: &Connection,
    peer: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
    interval: i64,
) -> Result<Vec<(OffsetDateTime, Counter)>, ApiError> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, packets, bytes FROM routing_exit_metrics
         WHERE peer_name = ?1 AND bucket >= ?2 AND bucket < ?3 ORDER BY bucket",
    )?;
    // Up to and with the minute `to` falls in.
    let until = minute(to + time::Duration::minutes(1));
    let rows = stmt.query_map(params![peer, minute(from), until], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut buckets: BTreeMap<i64, Counter> = BTreeMap::new();
    for row in rows {
        let (bucket, packets, bytes) = row?;
        let Some(start) = bucket_start(&bucket, interval) else {
            continue;
        };
        let c = buckets.entry(start).or_default();
        c.packets += packets.max(0) as u64;
        c.bytes += bytes.max(0) as u64;
    }
    Ok(buckets
        .into_iter()
        .filter_map(|(start, c)| Some((OffsetDateTime::from_unix_timestamp(start).ok()?, c)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectivity::traffic::CountedPeer;

    #[test]
    fn a_peers_growth_sums_its_lines_and_is_kept_per_peer_and_exit() {
        let table = ExitTable {
            counted: vec![CountedPeer {
                peer: "alice".into(),
                connection: "c1".into(),
                interface: "picd0e1".into(),
                v4: Some("10.8.0.2".parse().unwrap()),
                v6: None,
            }],
            ..ExitTable::default()
        };
        let c = |packets, bytes| Counter { packets, bytes };
        let [out4, in4, ..] = <[String; 4]>::try_from(traffic::comments("alice", "c1")).unwrap();
        let before = HashMap::from([(out4.clone(), c(2, 200))]);
        let now = HashMap::from([(out4, c(5, 500)), (in4, c(4, 4000))]);
        let g = growth(&table, &before, &now);
        let key = ("alice".to_string(), "c1".to_string());
        assert_eq!(g, ExitGrowth::from([(key, c(7, 4300))]));

        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!(
            "../../migrations/0021_routing_exit_metrics.sql"
        ))
        .unwrap();
        let at = crate::time::now();
        record(&conn, &g, at).unwrap();
        record(&conn, &g, at).unwrap();
        let since = at - time::Duration::minutes(10);
        let rows = summary(&conn, since).unwrap();
        assert_eq!(rows, [("alice".into(), "c1".into(), c(14, 8600))]);
        let hour = history(&conn, "alice", since, at, 3600).unwrap();
        assert_eq!(hour.len(), 1);
        assert_eq!(hour[0].1, c(14, 8600));
        assert!(history(&conn, "bob", since, at, 60).unwrap().is_empty());
    }
}
