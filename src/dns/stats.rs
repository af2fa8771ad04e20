//! Counters of the DNS server's defences, shared by its sockets and read by
//! `GET /api/dns/stats`: what response-rate limiting dropped and slipped, forwards refused by
//! the cap, coalesced or caught looping, TCP connections refused or cut off.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use serde_json::{json, Value};

use crate::auth::AdminUser;
use crate::dns::DnsApp;
use crate::error::{ApiResult, Json};

#[derive(Default)]
pub struct DnsStats {
    pub rrl_passed: AtomicU64,
    pub rrl_dropped: AtomicU64,
    pub rrl_slipped: AtomicU64,
    pub forwards: AtomicU64,
    pub forwards_over_cap: AtomicU64,
    pub forwards_coalesced: AtomicU64,
    pub forwards_in_flight: AtomicU64,
    pub tcp_accepted: AtomicU64,
    pub tcp_refused: AtomicU64,
    pub tcp_timed_out: AtomicU64,
    pub tcp_accept_errors: AtomicU64,
}

/// Adds one to a counter.
pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl DnsStats {
    pub fn to_json(&self) -> Value {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "rrl": {
                "passed": read(&self.rrl_passed),
                "dropped": read(&self.rrl_dropped),
                "slipped": read(&self.rrl_slipped),
            },
            "forward": {
                "total": read(&self.forwards),
                "in_flight": read(&self.forwards_in_flight),
                "over_cap": read(&self.forwards_over_cap),
                "coalesced": read(&self.forwards_coalesced),
                "loops": super::marker::loops_caught(),
            },
            "tcp": {
                "accepted": read(&self.tcp_accepted),
                "refused": read(&self.tcp_refused),
                "timed_out": read(&self.tcp_timed_out),
                "accept_errors": read(&self.tcp_accept_errors),
            },
        })
    }
}

/// `GET /api/dns/stats`: the counters and the limits in force.
pub async fn stats(_admin: AdminUser, State(app): State<DnsApp>) -> ApiResult<Json<Value>> {
    let mut body = app.dns.stats().to_json();
    body["limits"] = app.dns.limits().to_json();
    Ok(Json(body))
}
