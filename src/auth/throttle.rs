//! Login throttling: after too many failed logins within a minute for one subject (a username,
//! or a device that signed in before: see `device`) or, with a higher bound, from one client
//! address, further attempts are refused with 429 until the oldest failure leaves the window.
//! Refused attempts do not check the password at all, so a guesser learns nothing while
//! throttled.
//!
//! An attempt is counted *before* its password is verified: `reserve` checks the bounds and
//! records the attempt as a failure under one lock, so simultaneous attempts cannot all pass
//! the check before any of them is recorded. A verified password then takes its reservation
//! back (`succeeded`); so does an attempt that was never verified (`release`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Keys tracked at most; beyond this the keys whose last failure is oldest are dropped first.
const MAX_KEYS: usize = 100_000;

/// Whom an attempt is counted against besides its address. OWASP's device cookies: a browser
/// holding a valid device cookie for the username is counted on its own, so guesses from
/// elsewhere (which count against the username) cannot lock the owner's own devices out.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    User(&'a str),
    /// The device cookie's nonce.
    Device(&'a str),
}

#[derive(Hash, PartialEq, Eq, Clone, Debug)]
enum Key {
    User(String),
    Device(String),
    Addr(IpAddr),
}

impl Subject<'_> {
    fn key(self) -> Key {
        match self {
            Subject::User(name) => Key::User(name.to_lowercase()),
            Subject::Device(nonce) => Key::Device(nonce.to_string()),
        }
    }
}

/// An attempt counted in advance; hand it back to `succeeded` or `release`, or drop it to
/// leave it counted as a failure.
#[derive(Debug)]
#[must_use = "a reservation left alone counts as a failure"]
pub struct Reservation {
    subject: Key,
    addr: Key,
    at: Instant,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts this attempt as a failure unless a bound is reached: `Err(seconds)` to wait then
    /// (and nothing is counted).
    pub fn reserve(&self, subject: Subject<'_>, addr: IpAddr) -> Result<Reservation, u64> {
        let now = Instant::now();
        let subject = subject.key();
        let addr = Key::Addr(addr);
        let mut map = self.lock();
        let mut wait = None;
        for (key, limit) in [(&subject, self.per_user), (&addr, self.per_addr)] {
            let Some(times) = map.get_mut(key) else {
                continue;
            };
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
        if let Some(wait) = wait {
            return Err(wait);
        }
        if map.len() + 2 > MAX_KEYS {
            make_room(&mut map, now);
        }
        // Never past the limit: a full deque refuses above, so each stays bounded.
        map.entry(subject.clone()).or_default().push_back(now);
        map.entry(addr.clone()).or_default().push_back(now);
        Ok(Reservation {
            subject,
            addr,
            at: now,
        })
    }

    /// The password was right: the attempt was no failure, and the subject's earlier failures
    /// are forgiven (the address's are not: it may be shared with a guesser).
    pub fn succeeded(&self, reservation: Reservation) {
        let mut map = self.lock();
        map.remove(&reservation.subject);
        take_back(&mut map, &reservation.addr, reservation.at);
    }

    /// The attempt was never judged (picd was busy, or failed itself): not a failure.
    pub fn release(&self, reservation: Reservation) {
        let mut map = self.lock();
        take_back(&mut map, &reservation.subject, reservation.at);
        take_back(&mut map, &reservation.addr, reservation.at);
    }
}

fn take_back(map: &mut HashMap<Key, VecDeque<Instant>>, key: &Key, at: Instant) {
    if let Some(times) = map.get_mut(key) {
        if let Some(i) = times.iter().rposition(|t| *t == at) {
            times.remove(i);
        }
        if times.is_empty() {
            map.remove(key);
        }
    }
}

/// Drops keys with no failure in the window; if that is not enough (a flood of distinct
/// names or addresses), the tenth of the keys whose newest failure is oldest.
fn make_room(map: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
    map.retain(|_, times| {
        times
            .back()
            .is_some_and(|t| now.duration_since(*t) < WINDOW)
    });
    if map.len() + 2 <= MAX_KEYS {
        return;
    }
    let mut newest: Vec<Instant> = map.values().filter_map(|t| t.back().copied()).collect();
    let cut = newest.len() / 10;
    let (_, threshold, _) = newest.select_nth_unstable(cut);
    let threshold = *threshold;
    map.retain(|_, times| times.back().is_some_and(|t| *t > threshold));
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: &str = "127.0.0.1";

    fn fail(t: &LoginThrottle, subject: Subject<'_>, addr: &str) -> Result<(), u64> {
        // Dropped: counted as a failure.
        t.reserve(subject, addr.parse().unwrap()).map(drop)
    }

    #[test]
    fn fifth_failure_throttles_the_username_but_not_others() {
        let t = LoginThrottle::new(5, 20);
        for _ in 0..5 {
            fail(&t, Subject::User("admin"), ADDR).expect("not yet throttled");
        }
        let wait = fail(&t, Subject::User("Admin"), ADDR).expect_err("throttled");
        assert!((59..=60).contains(&wait), "{wait}");
        assert!(fail(&t, Subject::User("someone"), ADDR).is_ok());
    }

    #[test]
    fn the_address_bound_applies_across_usernames() {
        let t = LoginThrottle::new(5, 20);
        for i in 0..20 {
            fail(&t, Subject::User(&format!("user{i}")), "192.0.2.1").unwrap();
        }
        assert!(fail(&t, Subject::User("fresh"), "192.0.2.1").is_err());
        assert!(fail(&t, Subject::User("fresh"), "192.0.2.2").is_ok());
    }

    #[test]
    fn reservations_bound_simultaneous_attempts_and_successes_give_theirs_back() {
        let t = LoginThrottle::new(5, 20);
        let addr: IpAddr = ADDR.parse().unwrap();
        // Five in flight at once: a sixth is refused before any of them is judged.
        let held: Vec<_> = (0..5)
            .map(|_| t.reserve(Subject::User("admin"), addr).unwrap())
            .collect();
        assert!(t.reserve(Subject::User("admin"), addr).is_err());
        let mut held = held.into_iter();
        t.release(held.next().unwrap());
        let again = t.reserve(Subject::User("admin"), addr).expect("one freed");
        t.succeeded(again);
        // A success forgives the username's failures, not the address's.
        assert!(t.lock().get(&Key::User("admin".into())).is_none());
        assert_eq!(t.lock()[&Key::Addr(addr)].len(), 4);
    }

    #[test]
    fn a_known_device_is_counted_apart_from_its_username() {
        let t = LoginThrottle::new(5, 20);
        for i in 0..5 {
            fail(&t, Subject::User("admin"), &format!("192.0.2.{i}")).unwrap();
        }
        assert!(fail(&t, Subject::User("admin"), "192.0.2.9").is_err());
        let known = t
            .reserve(Subject::Device("nonce"), "198.51.100.1".parse().unwrap())
            .expect("the device is not locked");
        t.succeeded(known);
        for _ in 0..5 {
            fail(&t, Subject::Device("nonce"), "198.51.100.1").unwrap();
        }
        assert!(fail(&t, Subject::Device("nonce"), "198.51.100.1").is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut map = HashMap::new();
        let now = Instant::now();
        for i in 0..MAX_KEYS {
            map.insert(
                Key::User(format!("u{i}")),
                VecDeque::from([now + Duration::from_nanos(i as u64)]),
            );
        }
        make_room(&mut map, now);
        assert!(map.len() <= MAX_KEYS * 9 / 10 + 1, "{}", map.len());
        assert!(map.contains_key(&Key::User(format!("u{}", MAX_KEYS - 1))));
    }
}
