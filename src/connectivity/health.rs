//! Each exit's health, decided with hysteresis: a probe through the exit (a ping to the
//! provider's DNS address, bound to the exit's interface so it can never test the uplink)
//! every few seconds; `DOWN_AFTER` failures in a row mark it down, `UP_AFTER` successes in a
//! row mark it up again. One lost ping moves nothing, so a flaky link does not flap the
//! routes and the fail-open peers.

/// Consecutive failed probes before an exit counts as down.
pub const DOWN_AFTER: u32 = 3;
/// Consecutive good probes before a down (or new) exit counts as up.
pub const UP_AFTER: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Up,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Up => "up",
            State::Down => "down",
        }
    }

    pub fn parse(text: &str) -> State {
        match text {
            "up" => State::Up,
            "down" => State::Down,
            _ => State::Connecting,
        }
    }
}

/// One exit's run of probe results.
#[derive(Debug, Clone, Copy)]
pub struct Tracker {
    pub state: State,
    failures: u32,
    successes: u32,
}

impl Tracker {
    pub fn new(state: State) -> Self {
        Tracker {
            state,
            failures: 0,
            successes: 0,
        }
    }

    /// Notes one probe; Some(new state) when it changes the state.
    pub fn note(&mut self, ok: bool) -> Option<State> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
        }
        let next = match self.state {
            State::Up | State::Connecting if self.failures >= DOWN_AFTER => State::Down,
            State::Down | State::Connecting if self.successes >= UP_AFTER => State::Up,
            current => current,
        };
        (next != self.state).then(|| {
            self.state = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lost_probe_changes_nothing_and_a_run_of_them_does() {
        let mut t = Tracker::new(State::Up);
        assert_eq!(t.note(false), None);
        assert_eq!(t.note(true), None, "a success resets the run");
        assert_eq!(t.note(false), None);
        assert_eq!(t.note(false), None);
        assert_eq!(t.note(false), Some(State::Down));
        assert_eq!(t.note(false), None, "down stays down");
        assert_eq!(t.note(true), None);
        assert_eq!(t.note(true), Some(State::Up));
        let mut new = Tracker::new(State::Connecting);
        assert_eq!((new.note(true), new.note(true)), (None, Some(State::Up)));
    }
}
