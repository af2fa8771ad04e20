//! Per-peer traffic through the exit: the live count in `GET /api/connectivity/peers`, the
//! summary's `peer_exits` and the time series of `GET /api/routing/metrics?peer=`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use super::common::netns::*;
use super::{ExitLab, APPLY_TIMEOUT, FETCHES};

impl ExitLab {
    /// A peer's `traffic` as `GET /api/connectivity/peers` lists it.
    pub(super) async fn traffic(&self, peer: &str) -> Value {
        let (status, body) = self.admin.get_json("/api/connectivity/peers").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let listed = body["peers"].as_array().cloned().unwrap_or_default();
        let entry = listed.iter().find(|p| p["peer"] == peer);
        entry.expect("the peer is listed")["traffic"].clone()
    }

    /// After alice fetched `FETCHES` pages through the exit, her counted traffic (out and back,
    /// headers included) exceeds what she fetched; bob, direct, has none.
    pub(super) async fn assert_traffic_counted(&self) {
        let bytes = |t: &Value| t["bytes"].as_u64().unwrap_or(0);
        let before = bytes(&self.traffic("alice").await);
        for _ in 0..FETCHES {
            assert_eq!(fetch(&self.alice).0.as_deref(), Some(PROVIDER_ADDR));
        }
        let fetched = (FETCHES * PROVIDER_ADDR.len()) as u64;
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let grown = bytes(&self.traffic("alice").await).saturating_sub(before);
            if grown > fetched {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alice's traffic grew by {grown} bytes for {fetched} fetched; {}",
                self.kernel_state()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(self.traffic("bob").await, Value::Null, "bob goes direct");
        self.assert_traffic_history(fetched).await;
        let summary = "/api/routing/metrics/summary?window=10m";
        let (status, body) = self.admin.get_json(summary).await;
        let rows = body["peer_exits"].as_array().cloned().unwrap_or_default();
        assert!(
            status == StatusCode::OK
                && rows.iter().any(|r| r["peer"] == "alice"
                    && r["connection"] == self.exit_id.as_str()
                    && bytes(r) > 0)
                && !rows.iter().any(|r| r["peer"] == "bob"),
            "{body}"
        );
    }

    /// Bytes in a peer's exit traffic buckets over the last ten minutes.
    async fn history_bytes(&self, peer: &str) -> (u64, usize) {
        let to = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
        let from = to - time::Duration::minutes(10);
        let rfc = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap();
        let path = format!(
            "/api/routing/metrics?peer={peer}&interval=1m&from={}&to={}",
            rfc(from),
            rfc(to)
        );
        let (status, body) = self.admin.get_json(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let buckets = body["buckets"].as_array().cloned().unwrap_or_default();
        let bytes = buckets
            .iter()
            .map(|b| b["bytes"].as_u64().unwrap_or(0))
            .sum();
        (bytes, buckets.len())
    }

    /// The metrics' time series of alice's exit traffic holds at least what she fetched once a
    /// pass has recorded it; bob, direct, has no bucket.
    async fn assert_traffic_history(&self, fetched: u64) {
        let deadline = Instant::now() + APPLY_TIMEOUT;
        loop {
            let (bytes, _) = self.history_bytes("alice").await;
            if bytes >= fetched {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alice's exit buckets hold {bytes} bytes for {fetched} fetched"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            self.history_bytes("bob").await,
            (0, 0),
            "bob has exit buckets"
        );
    }
}
