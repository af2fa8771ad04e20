//! Throttling of setup claims per client address. The code has 140 random bits, so guessing it
//! is hopeless anyway; the throttle is there so a flood of guesses costs picd (and its audit
//! log) little: a few refusals per window are checked and recorded one by one, the rest are
//! answered 429 without looking at the code, and only the first of those is recorded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong codes accepted from one address per window before it is refused outright.
pub const CLAIM_FAILURES_PER_WINDOW: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; past this, finished windows are dropped, then everything (the
/// throttle forgets, which the code's length makes harmless, rather than grow without bound).
const MAX_KEYS: usize = 10_000;

/// IPv4 addresses one by one; IPv6 by /64, the block one client usually holds whole.
#[derive(Hash, PartialEq, Eq, Clone, Copy, Debug)]
enum Key {
    V4(u32),
    V6Prefix(u64),
}

fn key_of(addr: IpAddr) -> Key {
    match addr {
        IpAddr::V4(v4) => Key::V4(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Key::V4(u32::from(v4)),
            None => Key::V6Prefix((u128::from(v6) >> 64) as u64),
        },
    }
}

struct Window {
    started: Instant,
    failures: u32,
    refusal_recorded: bool,
}

#[derive(Default)]
pub struct ClaimThrottle {
    windows: Mutex<HashMap<Key, Window>>,
}

/// An attempt counted as a failure before the code is checked, so that a burst of requests in
/// flight at once cannot all slip under the limit; `succeeded` takes it back.
#[must_use]
pub struct Reservation<'a> {
    throttle: &'a ClaimThrottle,
    key: Key,
}

impl Reservation<'_> {
    pub fn succeeded(self) {
        let mut windows = self.throttle.lock();
        if let Some(window) = windows.get_mut(&self.key) {
            window.failures = window.failures.saturating_sub(1);
        }
    }
}

/// A refused attempt: when to retry, and whether this refusal is the one of its window that
/// goes into the audit log.
#[derive(Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: u64,
    pub record: bool,
}

impl ClaimThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reserve(&self, addr: IpAddr) -> Result<Reservation<'_>, Throttled> {
        let now = Instant::now();
        let key = key_of(addr);
        let mut windows = self.lock();
        if windows.len() >= MAX_KEYS && !windows.contains_key(&key) {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
            if windows.len() >= MAX_KEYS {
                windows.clear();
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            failures: 0,
            refusal_recorded: false,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                failures: 0,
                refusal_recorded: false,
            };
        }
        if window.failures >= CLAIM_FAILURES_PER_WINDOW {
            let left = WINDOW.saturating_sub(now.duration_since(window.started));
            let retry_after = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
            let record = !window.refusal_recorded;
            window.refusal_recorded = true;
            return Err(Throttled {
                retry_after,
                record,
            });
        }
        window.failures += 1;
        Ok(Reservation {
            throttle: self,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_wrong_code_is_refused_and_only_the_first_refusal_is_recorded() {
        let throttle = ClaimThrottle::default();
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        // Five reservations dropped without success: five wrong codes.
        for _ in 0..CLAIM_FAILURES_PER_WINDOW {
            drop(throttle.reserve(addr).expect("under the limit"));
        }
        let first = throttle.reserve(addr).err().expect("throttled");
        assert!(
            first.record && (59..=60).contains(&first.retry_after),
            "{first:?}"
        );
        let second = throttle.reserve(addr).err().expect("throttled");
        assert!(!second.record, "{second:?}");
        assert!(throttle.reserve("192.0.2.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_right_code_does_not_count_and_ipv6_counts_per_64() {
        let throttle = ClaimThrottle::default();
        let addr: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        for _ in 0..10 {
            throttle.reserve(addr).expect("not counted").succeeded();
        }
        for i in 0..CLAIM_FAILURES_PER_WINDOW {
            let neighbour: IpAddr = format!("2001:db8:1:2::{:x}", i + 2).parse().unwrap();
            drop(throttle.reserve(neighbour).unwrap());
        }
        assert!(throttle.reserve(addr).is_err(), "the /64 shares one window");
        assert!(throttle.reserve("2001:db8:1:3::1".parse().unwrap()).is_ok());
    }
}
