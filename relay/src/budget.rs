//! The relay-wide failed-claim budget: claims whose PAKE failed (a wrong code) are counted per viewer
//! address key ([`crate::limits::client_key`]) and across the relay, in fixed windows. Over a budget,
//! claims from that key (or, for the global budget, from anyone) are refused until its window ends. This
//! bounds code guessing however the attacker spreads it over hosts, codes and connections.
//!
//! Pure state: time is a parameter (`now`), so tests need no sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::RelayConfig;
use crate::limits::client_key;

/// A count of failures in the window that started at `since`.
#[derive(Debug, Clone, Copy)]
struct Window {
    since: Instant,
    failures: u32,
}

impl Window {
    fn current(&mut self, now: Instant, length: Duration) -> &mut Self {
        if now.saturating_duration_since(self.since) >= length {
            *self = Window { since: now, failures: 0 };
        }
        self
    }
}

/// Which budget a failure used up, if it was the one that tripped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tripped {
    Address,
    Global,
}

#[derive(Debug)]
pub struct FailedClaims {
    per_key: u32,
    key_window: Duration,
    global: u32,
    global_window: Duration,
    by_key: HashMap<IpAddr, Window>,
    all: Option<Window>,
}

impl FailedClaims {
    pub fn new(cfg: &RelayConfig) -> Self {
        Self {
            per_key: cfg.failed_claims_per_address.max(1),
            key_window: cfg.failed_claims_address_window,
            global: cfg.failed_claims_global.max(1),
            global_window: cfg.failed_claims_global_window,
            by_key: HashMap::new(),
            all: None,
        }
    }

    /// Whether a claim from `ip` may go ahead now: `Err` names the budget that is spent.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Result<(), Tripped> {
        if let Some(all) = self.all.as_mut() {
            if all.current(now, self.global_window).failures >= self.global {
                return Err(Tripped::Global);
            }
        }
        if let Some(w) = self.by_key.get_mut(&client_key(ip)) {
            if w.current(now, self.key_window).failures >= self.per_key {
                return Err(Tripped::Address);
            }
        }
        Ok(())
    }

    /// Count a wrong code from `ip`; returns the budgets this failure exhausted (each once per window).
    pub fn fail(&mut self, now: Instant, ip: IpAddr) -> Vec<Tripped> {
        let mut tripped = Vec::new();
        let fresh = Window { since: now, failures: 0 };
        let w = self.by_key.entry(client_key(ip)).or_insert(fresh).current(now, self.key_window);
        w.failures = w.failures.saturating_add(1);
        if w.failures == self.per_key {
            tripped.push(Tripped::Address);
        }
        let all = self.all.get_or_insert(fresh).current(now, self.global_window);
        all.failures = all.failures.saturating_add(1);
        if all.failures == self.global {
            tripped.push(Tripped::Global);
        }
        tripped
    }

    /// Forget keys whose window has ended (bounds memory; new keys need a failed pairing each, and those
    /// are bounded by the global budget).
    pub fn prune(&mut self, now: Instant) {
        let length = self.key_window;
        self.by_key.retain(|_, w| now.saturating_duration_since(w.since) < length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_key: u32, global: u32) -> FailedClaims {
        let mut cfg = RelayConfig::new("127.0.0.1:0".parse().expect("addr"), "d".into());
        cfg.failed_claims_per_address = per_key;
        cfg.failed_claims_address_window = Duration::from_secs(600);
        cfg.failed_claims_global = global;
        cfg.failed_claims_global_window = Duration::from_secs(60);
        FailedClaims::new(&cfg)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn an_address_over_its_budget_is_refused_until_the_window_ends() {
        let (mut b, t0) = (budget(3, 100), Instant::now());
        assert!(b.fail(t0, ip("2001:db8::1")).is_empty());
        assert!(b.fail(t0, ip("2001:db8::2")).is_empty());
        assert_eq!(b.check(t0, ip("2001:db8::3")), Ok(()));
        assert_eq!(b.fail(t0, ip("2001:db8::3")), vec![Tripped::Address], "one /64, one budget");
        assert_eq!(b.check(t0, ip("2001:db8::99")), Err(Tripped::Address));
        assert_eq!(b.check(t0, ip("192.0.2.1")), Ok(()), "others are unaffected");
        assert_eq!(b.check(t0 + Duration::from_secs(600), ip("2001:db8::1")), Ok(()), "a new window");
        b.prune(t0 + Duration::from_secs(1201));
        assert!(b.by_key.is_empty());
    }

    #[test]
    fn the_global_budget_stops_everyone() {
        let (mut b, t0) = (budget(10, 3), Instant::now());
        b.fail(t0, ip("192.0.2.1"));
        b.fail(t0, ip("192.0.2.2"));
        assert_eq!(b.fail(t0, ip("192.0.2.3")), vec![Tripped::Global]);
        assert_eq!(b.check(t0, ip("198.51.100.1")), Err(Tripped::Global));
        assert_eq!(b.check(t0 + Duration::from_secs(60), ip("198.51.100.1")), Ok(()));
    }
}
