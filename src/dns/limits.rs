//! The DNS server's bounds, from the settings: response-rate limiting for the world, the cap
//! on forwarded questions, and the TCP connection limits and timeouts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::Settings;

/// TCP timeouts, after Knot's: an idle connection goes after 10 s (`tcp-idle-timeout`) and a
/// client that does not take its answer within 5 s is cut off (`tcp-rmt-io-timeout`). No
/// connection lives longer than `dns_tcp_lifetime_seconds` (two minutes by default) whatever
/// it does.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
pub const TCP_WRITE: Duration = Duration::from_secs(5);
/// After a failed accept (out of file descriptors), wait before the next: spinning on the
/// error would take a core and free nothing.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct DnsLimits {
    pub rrl_rate: u32,
    pub rrl_window: u32,
    pub rrl_slip: u32,
    pub forward_max_in_flight: usize,
    pub tcp_max_clients: usize,
    pub tcp_max_per_address: usize,
    pub tcp_lifetime: Duration,
}

impl Default for DnsLimits {
    fn default() -> Self {
        DnsLimits::from_settings(&Settings::default())
    }
}

impl DnsLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        DnsLimits {
            rrl_rate: settings.dns_rrl_responses_per_second,
            rrl_window: settings.dns_rrl_window_seconds.max(1),
            rrl_slip: settings.dns_rrl_slip,
            forward_max_in_flight: settings.dns_forward_max_in_flight.max(1) as usize,
            tcp_max_clients: settings.dns_tcp_max_clients.max(1) as usize,
            tcp_max_per_address: settings.dns_tcp_max_clients_per_address.max(1) as usize,
            tcp_lifetime: Duration::from_secs(u64::from(settings.dns_tcp_lifetime_seconds.max(1))),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rrl_responses_per_second": self.rrl_rate,
            "rrl_window_seconds": self.rrl_window,
            "rrl_slip": self.rrl_slip,
            "forward_max_in_flight": self.forward_max_in_flight,
            "tcp_max_clients": self.tcp_max_clients,
            "tcp_max_clients_per_address": self.tcp_max_per_address,
            "tcp_idle_seconds": TCP_IDLE.as_secs(),
            "tcp_write_timeout_seconds": TCP_WRITE.as_secs(),
            "tcp_lifetime_seconds": self.tcp_lifetime.as_secs(),
        })
    }
}
