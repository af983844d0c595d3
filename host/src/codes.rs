//! When the host offers its next one-time code: the limit on wrong codes in a row, and back-off.
//!
//! Each code admits one guess at its 7-digit secret, but a host that made a fresh code at once after every
//! wrong one would let anyone able to claim nameplates (any client of an open relay, or the relay itself)
//! guess thousands of times a second. So:
//! - after a failed guess ([`Restart::is_failed_guess`]) the next code comes only after a back-off that
//!   doubles with each failure in a row;
//! - after [`CodePolicy::max_wrong`] failures in a row the host stops offering codes and tells the user,
//!   who decides whether to go on (the window's *New code*) — headless mode ends instead;
//! - a relay that refuses a registration (rate limit, full) is asked again after a back-off that doubles up
//!   to a ceiling, rather than ending the host;
//! - after the relay connection broke while a code waited ([`Restart::RelayLost`]) the next code comes
//!   after one back-off step: a relay that keeps dropping the host gets at most one code a step.
//!
//! [`CodeGate`] is the pure decision (no clock, no I/O); `run_host` sleeps and waits as it says.

use std::time::Duration;

use tether_shared::net::pairing::Restart;

/// How many wrong codes a host takes, and how it backs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePolicy {
    /// Failed guesses in a row after which no new code is offered until the user asks for one.
    pub max_wrong: u32,
    /// Wait before the code after the first failed guess (or the first refused registration); doubles each
    /// time in a row.
    pub backoff: Duration,
    /// Longest wait between two registrations the relay refused.
    pub max_backoff: Duration,
    /// What happens after `max_wrong` failed guesses in a row.
    pub after_too_many: AfterTooMany,
}

impl Default for CodePolicy {
    fn default() -> Self {
        Self {
            max_wrong: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            after_too_many: AfterTooMany::WaitForUser,
        }
    }
}

/// After too many wrong codes in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterTooMany {
    /// Offer no code until the user asks for a new one (the window).
    WaitForUser,
    /// End the host with [`crate::HostError::TooManyWrongCodes`] (headless: nobody to ask).
    Stop,
}

/// What to do after a code was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Register the next code after this long (zero: at once).
    After(Duration),
    /// Too many wrong codes in a row: offer none until the user says so.
    Stop,
}

/// Counts failed guesses in a row and refused registrations, and says when the next code may come.
#[derive(Debug, Clone)]
pub struct CodeGate {
    policy: CodePolicy,
    wrong_in_a_row: u32,
    refused_in_a_row: u32,
}

impl CodeGate {
    pub fn new(policy: CodePolicy) -> Self {
        Self { policy, wrong_in_a_row: 0, refused_in_a_row: 0 }
    }

    /// A code was retired for `why`.
    pub fn on_restart(&mut self, why: Restart) -> Next {
        if why == Restart::Requested {
            // The user asked for a new code: they are here and looking, so the count starts over.
            self.wrong_in_a_row = 0;
            return Next::After(Duration::ZERO);
        }
        if why == Restart::RelayLost {
            return Next::After(self.policy.backoff);
        }
        if !why.is_failed_guess() {
            return Next::After(Duration::ZERO);
        }
        self.wrong_in_a_row += 1;
        if self.wrong_in_a_row >= self.policy.max_wrong {
            return Next::Stop;
        }
        Next::After(self.doubled(self.wrong_in_a_row))
    }

    /// The relay accepted a registration.
    pub fn on_registered(&mut self) {
        self.refused_in_a_row = 0;
    }

    /// The relay refused a registration (rate limit, full): ask again after this long.
    pub fn on_refused(&mut self) -> Duration {
        self.refused_in_a_row += 1;
        self.doubled(self.refused_in_a_row)
    }

    /// Failed guesses in a row so far.
    pub fn wrong_in_a_row(&self) -> u32 {
        self.wrong_in_a_row
    }

    /// `backoff × 2^(n-1)`, at most `max_backoff`.
    fn doubled(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.policy.backoff.saturating_mul(factor).min(self.policy.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> CodeGate {
        CodeGate::new(CodePolicy::default())
    }

    #[test]
    fn three_failed_guesses_in_a_row_stop_with_doubling_waits_between() {
        let mut g = gate();
        assert_eq!(g.on_restart(Restart::WrongCode), Next::After(Duration::from_secs(1)));
        assert_eq!(g.on_restart(Restart::Abandoned), Next::After(Duration::from_secs(2)));
        assert_eq!(g.on_restart(Restart::WrongCode), Next::Stop);
        assert_eq!(g.wrong_in_a_row(), 3);
    }

    #[test]
    fn expiry_and_a_visitor_who_left_before_guessing_neither_count_nor_wait() {
        let mut g = gate();
        assert_eq!(g.on_restart(Restart::WrongCode), Next::After(Duration::from_secs(1)));
        assert_eq!(g.on_restart(Restart::Expired), Next::After(Duration::ZERO));
        assert_eq!(g.on_restart(Restart::PeerLeft), Next::After(Duration::ZERO));
        // Still in a row: an expiry in between does not wipe the count.
        assert_eq!(g.on_restart(Restart::WrongCode), Next::After(Duration::from_secs(2)));
        assert_eq!(g.on_restart(Restart::WrongCode), Next::Stop);
    }

    #[test]
    fn a_lost_relay_waits_one_step_and_counts_no_guess() {
        let mut g = gate();
        assert_eq!(g.on_restart(Restart::RelayLost), Next::After(Duration::from_secs(1)));
        assert_eq!(g.on_restart(Restart::RelayLost), Next::After(Duration::from_secs(1)));
        assert_eq!(g.wrong_in_a_row(), 0);
    }

    #[test]
    fn the_user_asking_for_a_new_code_starts_the_count_over() {
        let mut g = gate();
        g.on_restart(Restart::WrongCode);
        g.on_restart(Restart::WrongCode);
        assert_eq!(g.on_restart(Restart::Requested), Next::After(Duration::ZERO));
        assert_eq!(g.on_restart(Restart::WrongCode), Next::After(Duration::from_secs(1)));
    }

    #[test]
    fn refused_registrations_back_off_doubling_up_to_the_ceiling_and_reset_on_success() {
        let mut g = gate();
        let waits: Vec<u64> = (0..9).map(|_| g.on_refused().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        g.on_registered();
        assert_eq!(g.on_refused(), Duration::from_secs(1));
        // Far past any shift width: still the ceiling, no overflow.
        for _ in 0..100 {
            g.on_refused();
        }
        assert_eq!(g.on_refused(), Duration::from_secs(60));
    }
}
