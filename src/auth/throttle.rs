//! Login throttling: after too many failed logins within a minute for one username (or, with
//! a higher bound, from one client address), further attempts are refused with 429 until the
//! oldest failure leaves the window. Refused attempts do not check the password at all, so a
//! guesser learns nothing while throttled.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Keys tracked at most; beyond this the oldest-idle entries are dropped first.
const MAX_KEYS: usize = 100_000;

#[derive(Hash, PartialEq, Eq, Clone, Debug)]
enum Key {
    User(String),
    Addr(IpAddr),
}

pub struct LoginThrottle {
    per_user: usize,
    per_addr: usize,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(per_user: usize, per_addr: usize) -> Self {
        LoginThrottle {
            per_user,
            per_addr,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds)` to wait when this attempt must be refused.
    pub fn check(&self, username: &str, addr: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for (key, limit) in [
            (Key::User(username.to_lowercase()), self.per_user),
            (Key::Addr(addr), self.per_addr),
        ] {
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times[times.len() - limit];
                    let left = WINDOW.saturating_sub(now.duration_since(oldest));
                    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    wait = Some(wait.unwrap_or(0).max(secs.max(1)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, username: &str, addr: IpAddr) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        for key in [Key::User(username.to_lowercase()), Key::Addr(addr)] {
            let times = map.entry(key).or_default();
            times.push_back(now);
            // Only the newest `limit` failures matter; keep the deque bounded.
            while times.len() > self.per_addr.max(self.per_user) {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Key::User(username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_failure_throttles_the_username_but_not_others() {
        let t = LoginThrottle::new(5, 20);
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..4 {
            t.record_failure("admin", addr);
            assert_eq!(t.check("admin", addr), None);
        }
        t.record_failure("admin", addr);
        let wait = t.check("admin", addr).expect("throttled");
        assert!((59..=60).contains(&wait), "{wait}");
        assert_eq!(t.check("someone", addr), None);
    }

    #[test]
    fn the_address_bound_applies_across_usernames() {
        let t = LoginThrottle::new(5, 20);
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..20 {
            t.record_failure(&format!("user{i}"), addr);
        }
        assert!(t.check("fresh", addr).is_some());
        assert!(t.check("fresh", "192.0.2.2".parse().unwrap()).is_none());
    }
}
