//! Throttling of token guessing: bad API keys (Bearer / X-API-Key) and bad invitation tokens,
//! counted per client address in fixed one-minute windows. Each attempt is counted before its
//! token is looked up (and taken back when the token was good), so simultaneous guesses cannot
//! slip past the bound. Past it the address gets 429 until its window ends, without its token
//! even being looked up. A guesser's attempts are
//! audited once per address and window (the first failure, with the previous window's count),
//! not once per request: a flood must not be able to grow the audit log at its own rate.
//!
//! The table is capped; when full, the address whose window started first is forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Bad tokens an address may present per window (per kind) before it is refused.
pub const BAD_TOKENS_PER_ADDRESS: u32 = 10;
/// Addresses tracked at most.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    ApiKey,
    Invitation,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::ApiKey => "api_key",
            TokenKind::Invitation => "invitation",
        }
    }
}

struct Window {
    start: Instant,
    /// Attempts counted in this window (bad tokens, and attempts still being looked up), and
    /// requests refused unread (429).
    failures: u32,
    refused: u32,
    audited: bool,
    /// Both counts of the window just before, when there was one.
    previous: Option<(u32, u32)>,
}

/// What a failure means for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditNote {
    /// The first failure of the address's window: audit it (with the previous window's counts).
    First {
        previous_failures: u32,
        previous_refused: u32,
    },
    /// Already audited in this window.
    Covered,
}

/// An attempt counted in advance (as a failure, until `good` takes it back): simultaneous
/// guesses cannot all pass the check before the first of them is found bad.
#[derive(Debug)]
#[must_use = "hand the attempt to `good` or `bad`"]
pub struct Attempt {
    kind: TokenKind,
    addr: IpAddr,
    window: Instant,
}

pub struct TokenThrottle {
    limit: u32,
    windows: Mutex<HashMap<(TokenKind, IpAddr), Window>>,
}

impl Default for TokenThrottle {
    fn default() -> Self {
        Self::new(BAD_TOKENS_PER_ADDRESS)
    }
}

impl TokenThrottle {
    pub fn new(limit: u32) -> Self {
        TokenThrottle {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TokenKind, IpAddr), Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an attempt from `addr`, or `Err(seconds)` to wait when the address is past the
    /// bound (the refusal is counted, not audited).
    pub fn begin(&self, kind: TokenKind, addr: IpAddr) -> Result<Attempt, u64> {
        let now = Instant::now();
        let mut windows = self.lock();
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&(kind, addr)) {
            make_room(&mut windows, now);
        }
        let window = windows.entry((kind, addr)).or_insert(Window {
            start: now,
            failures: 0,
            refused: 0,
            audited: false,
            previous: None,
        });
        roll(window, now);
        if window.failures >= self.limit {
            window.refused = window.refused.saturating_add(1);
            let left = WINDOW.saturating_sub(now.duration_since(window.start));
            return Err((left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1));
        }
        window.failures += 1;
        Ok(Attempt {
            kind,
            addr,
            window: window.start,
        })
    }

    /// The token was good: the attempt was no failure.
    pub fn good(&self, attempt: Attempt) {
        let mut windows = self.lock();
        if let Some(window) = windows.get_mut(&(attempt.kind, attempt.addr)) {
            if window.start == attempt.window {
                window.failures = window.failures.saturating_sub(1);
            }
        }
    }

    /// The token was bad: whether this is the window's entry in the audit log.
    pub fn bad(&self, attempt: Attempt) -> AuditNote {
        let mut windows = self.lock();
        let Some(window) = windows.get_mut(&(attempt.kind, attempt.addr)) else {
            // Forgotten meanwhile (the table was full): better one entry too many.
            return AuditNote::First {
                previous_failures: 0,
                previous_refused: 0,
            };
        };
        if window.audited {
            return AuditNote::Covered;
        }
        window.audited = true;
        let (previous_failures, previous_refused) = window.previous.unwrap_or((0, 0));
        AuditNote::First {
            previous_failures,
            previous_refused,
        }
    }
}

/// Starts a new window when the current one has ended, remembering the old one's counts when
/// it ended just now (so the first entry of a new window tells how the last one went).
fn roll(window: &mut Window, now: Instant) {
    let age = now.duration_since(window.start);
    if age < WINDOW {
        return;
    }
    window.previous =
        (age < 2 * WINDOW && window.failures > 0).then_some((window.failures, window.refused));
    window.start = now;
    window.failures = 0;
    window.refused = 0;
    window.audited = false;
}

fn make_room(windows: &mut HashMap<(TokenKind, IpAddr), Window>, now: Instant) {
    windows.retain(|_, w| now.duration_since(w.start) < WINDOW);
    if windows.len() < MAX_ADDRESSES {
        return;
    }
    if let Some(oldest) = windows
        .iter()
        .min_by_key(|(_, w)| w.start)
        .map(|(key, _)| *key)
    {
        windows.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_past_the_bound_and_audited_once() {
        let t = TokenThrottle::new(3);
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let kind = TokenKind::ApiKey;
        // Three in flight at once: a fourth is refused before any is found bad.
        let held: Vec<Attempt> = (0..3).map(|_| t.begin(kind, addr).unwrap()).collect();
        assert!(t.begin(kind, addr).is_err());
        let mut held = held.into_iter();
        t.good(held.next().unwrap());
        assert!(matches!(
            t.bad(held.next().unwrap()),
            AuditNote::First { .. }
        ));
        assert_eq!(t.bad(held.next().unwrap()), AuditNote::Covered);
        let last = t
            .begin(kind, addr)
            .expect("the good one gave its place back");
        assert_eq!(t.bad(last), AuditNote::Covered);
        let wait = t.begin(kind, addr).expect_err("throttled");
        assert!((59..=60).contains(&wait), "{wait}");
        // Other kinds and addresses are their own.
        assert!(t.begin(TokenKind::Invitation, addr).is_ok());
        assert!(t.begin(kind, "192.0.2.2".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_new_window_reports_the_last_one() {
        let mut w = Window {
            start: Instant::now(),
            failures: 10,
            refused: 30,
            audited: true,
            previous: None,
        };
        let later = w.start + WINDOW + Duration::from_secs(1);
        roll(&mut w, later);
        assert_eq!(
            (w.failures, w.audited, w.previous),
            (0, false, Some((10, 30)))
        );
    }

    #[test]
    fn the_table_is_capped() {
        let t = TokenThrottle::new(3);
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            let attempt = t.begin(TokenKind::ApiKey, IpAddr::from(i.to_be_bytes()));
            let _ = t.bad(attempt.unwrap());
        }
        assert!(t.lock().len() <= MAX_ADDRESSES);
    }
}
