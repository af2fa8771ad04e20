//! `GET /api/routing/metrics/summary?window=10m|1h|24h` and
//! `GET /api/routing/metrics?from&to&interval=1m|5m|1h&port=`: the traffic the cell received
//! and what picd's rules dropped, from the minute rows the routing driver records;
//! `&peer=<name>` in place of `port` gives one peer's traffic through its exits.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::exit_metrics;
use super::metrics::{self, Totals};
use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Query};
use crate::routing::RoutingApp;

fn seconds_of(field: &str, text: &str, allowed: &[(&str, i64)]) -> Result<i64, ApiError> {
    allowed
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, seconds)| *seconds)
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            ApiError::invalid(field, format!("must be one of {}", names.join(", ")))
        })
}

fn with_port(port: u16, totals: Totals) -> Value {
    let mut value = serde_json::to_value(totals).unwrap_or_else(|_| json!({}));
    value["port"] = json!(port);
    value
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    #[serde(default)]
    window: Option<String>,
}

pub async fn summary(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    Query(query): Query<SummaryQuery>,
) -> ApiResult<Json<Value>> {
    let window = query.window.unwrap_or_else(|| "1h".into());
    let seconds = seconds_of(
        "window",
        &window,
        &[("10m", 600), ("1h", 3600), ("24h", 86_400)],
    )?;
    let since = crate::time::now() - time::Duration::seconds(seconds);
    let (total, ports, exits) = app
        .db
        .call(move |conn| {
            let (total, ports) = metrics::summary(conn, since)?;
            Ok((total, ports, exit_metrics::summary(conn, since)?))
        })
        .await?;
    let top: Vec<Value> = ports.into_iter().map(|(p, t)| with_port(p, t)).collect();
    let exits: Vec<Value> = exits
        .into_iter()
        .map(|(peer, connection, c)| {
            json!({ "peer": peer, "connection": connection, "packets": c.packets, "bytes": c.bytes })
        })
        .collect();
    Ok(Json(json!({
        "window": window,
        "total_passed": total.packets_passed,
        "total_dropped": total.packets_dropped,
        "total_bytes_passed": total.bytes_passed,
        "total_bytes_dropped": total.bytes_dropped,
        "top_ports": top,
        "peer_exits": exits,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    /// One peer's traffic through its exits instead of the cell's.
    #[serde(default)]
    peer: Option<String>,
}

fn time_of(field: &str, text: Option<&str>, default: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    match text {
        None => Ok(default),
        Some(t) => (t.len() <= 40)
            .then(|| crate::time::parse_rfc3339(t))
            .flatten()
            .ok_or_else(|| ApiError::invalid(field, "must be an RFC 3339 time")),
    }
}

/// A history request's range and bucket size: (from, to, interval seconds).
fn range_of(query: &HistoryQuery) -> ApiResult<(OffsetDateTime, OffsetDateTime, i64)> {
    let now = crate::time::now();
    let to = time_of("to", query.to.as_deref(), now)?;
    let from = time_of(
        "from",
        query.from.as_deref(),
        to - time::Duration::hours(24),
    )?;
    let interval = seconds_of(
        "interval",
        query.interval.as_deref().unwrap_or("1m"),
        &[("1m", 60), ("5m", 300), ("1h", 3600)],
    )?;
    if from >= to {
        return Err(ApiError::invalid("from", "must be before to"));
    }
    let points = (to - from).whole_seconds() / interval;
    if points > metrics::POINTS_MAX {
        return Err(ApiError::invalid(
            "interval",
            format!(
                "the range holds {points} intervals; at most {} may be asked at once",
                metrics::POINTS_MAX
            ),
        ));
    }
    Ok((from, to, interval))
}

pub async fn history(
    _admin: AdminUser,
    State(app): State<RoutingApp>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let (from, to, interval) = range_of(&query)?;
    if let Some(peer) = query.peer {
        if query.port.is_some() {
            return Err(ApiError::invalid("peer", "name a peer or a port, not both"));
        }
        return peer_history(&app, peer, from, to, interval).await;
    }
    let port = query.port.unwrap_or(0);
    let buckets = app
        .db
        .call(move |conn| metrics::history(conn, from, to, interval, port))
        .await?;
    let buckets: Vec<Value> = buckets
        .into_iter()
        .map(|(at, totals)| {
            let mut value = with_port(port, totals);
            value["bucket"] = json!(crate::time::format_rfc3339(at));
            value
        })
        .collect();
    Ok(Json(json!({ "buckets": buckets })))
}

/// `?peer=<name>`: that peer's traffic through its exits (out and back), a 404 for a peer
/// that does not exist. A peer that went direct all along has no buckets.
async fn peer_history(
    app: &RoutingApp,
    peer: String,
    from: OffsetDateTime,
    to: OffsetDateTime,
    interval: i64,
) -> ApiResult<Json<Value>> {
    crate::cell::dns_label(&peer).map_err(|m| ApiError::invalid("peer", m))?;
    let name = peer.clone();
    let buckets = app
        .db
        .call(move |conn| {
            if crate::peers::store::get(conn, &name)?.is_none() {
                return Err(ApiError::not_found(format!("peer '{name}'")));
            }
            exit_metrics::history(conn, &name, from, to, interval)
        })
        .await?;
    let buckets: Vec<Value> = buckets
        .into_iter()
        .map(|(at, c)| {
            json!({
                "bucket": crate::time::format_rfc3339(at),
                "peer": peer,
                "packets": c.packets,
                "bytes": c.bytes,
            })
        })
        .collect();
    Ok(Json(json!({ "buckets": buckets })))
}
