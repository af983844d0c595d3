//! Nameplates, as pure state: which hosts wait under which nameplate, until when, and what became of
//! nameplates that no longer wait (so a late claim hears "expired" or "already used", not "unknown").
//!
//! Time is a parameter (`now`), so expiry is tested without sleeping. `T` is whatever reaches the waiting
//! host (its task's mailbox in the relay).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;
use tether_shared::code::Nameplate;
use tether_shared::relay_proto::RelayErrorKind;

#[derive(Debug)]
struct Waiting<T> {
    expires: Instant,
    host: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retired {
    Expired,
    Used,
}

#[derive(Debug)]
pub struct Nameplates<T> {
    ttl: Duration,
    max_waiting: usize,
    waiting: HashMap<Nameplate, Waiting<T>>,
    /// Nameplates recently expired or used, kept for `ttl` so they are not handed out again at once.
    retired: HashMap<Nameplate, (Instant, Retired)>,
}

impl<T> Nameplates<T> {
    pub fn new(ttl: Duration, max_waiting: usize) -> Self {
        Self { ttl, max_waiting, waiting: HashMap::new(), retired: HashMap::new() }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// A host waits under a fresh nameplate until the returned deadline.
    pub fn register(
        &mut self,
        now: Instant,
        host: T,
        rng: &mut impl Rng,
    ) -> Result<(Nameplate, Instant), RelayErrorKind> {
        self.register_longer(now, host, rng, 0)
    }

    /// [`Self::register`] with a nameplate `extra` digits longer than this relay alone would need: when
    /// other relays sharing the directory hold the short ones.
    pub fn register_longer(
        &mut self,
        now: Instant,
        host: T,
        rng: &mut impl Rng,
        extra: u32,
    ) -> Result<(Nameplate, Instant), RelayErrorKind> {
        self.prune(now);
        if self.waiting.len() >= self.max_waiting {
            return Err(RelayErrorKind::Busy);
        }
        let nameplate = self.fresh(rng, extra);
        let expires = now + self.ttl;
        self.waiting.insert(nameplate.clone(), Waiting { expires, host });
        Ok((nameplate, expires))
    }

    /// A viewer claims a nameplate: at most once, and only before it expires.
    pub fn claim(&mut self, now: Instant, nameplate: &Nameplate) -> Result<T, RelayErrorKind> {
        self.prune(now);
        match self.waiting.remove(nameplate) {
            Some(w) if now < w.expires => {
                self.retired.insert(nameplate.clone(), (now, Retired::Used));
                Ok(w.host)
            }
            Some(_) => {
                self.retired.insert(nameplate.clone(), (now, Retired::Expired));
                Err(RelayErrorKind::Expired)
            }
            None => Err(match self.retired.get(nameplate) {
                Some((_, Retired::Expired)) => RelayErrorKind::Expired,
                Some((_, Retired::Used)) => RelayErrorKind::AlreadyUsed,
                None => RelayErrorKind::UnknownCode,
            }),
        }
    }

    /// The host's deadline passed: retire its nameplate. False if it was no longer waiting.
    pub fn expire(&mut self, now: Instant, nameplate: &Nameplate) -> bool {
        let found = self.waiting.remove(nameplate).is_some();
        if found {
            self.retired.insert(nameplate.clone(), (now, Retired::Expired));
        }
        found
    }

    /// The host left while waiting.
    pub fn cancel(&mut self, nameplate: &Nameplate) {
        self.waiting.remove(nameplate);
    }

    fn prune(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.retired.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
    }

    /// A random nameplate not in use: 3 digits while fewer than half of them are taken, then longer;
    /// `extra` digits more on top.
    fn fresh(&self, rng: &mut impl Rng, extra: u32) -> Nameplate {
        let taken = self.waiting.len() + self.retired.len();
        let mut digits = 3u32;
        while taken * 2 >= 9 * 10usize.pow(digits - 1) {
            digits += 1;
        }
        let digits = (digits + extra).min(tether_shared::code::MAX_NAMEPLATE_DIGITS as u32);
        loop {
            let n: u64 = rng.random_range(10u64.pow(digits - 1)..10u64.pow(digits));
            let candidate = Nameplate::new(&n.to_string()).unwrap_or_else(|| unreachable!("digits only"));
            if !self.waiting.contains_key(&candidate) && !self.retired.contains_key(&candidate) {
                return candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Nameplates<u32>, Instant, rand::rngs::ThreadRng) {
        (Nameplates::new(Duration::from_secs(600), 100), Instant::now(), rand::rng())
    }

    #[test]
    fn a_nameplate_is_claimed_at_most_once() {
        let (mut n, t0, mut rng) = setup();
        let (np, _) = n.register(t0, 7, &mut rng).expect("room");
        assert_eq!(np.as_str().len(), 3);
        assert_eq!(n.claim(t0, &np), Ok(7));
        assert_eq!(n.claim(t0, &np), Err(RelayErrorKind::AlreadyUsed));
        assert_eq!(n.waiting(), 0);
    }

    #[test]
    fn an_expired_nameplate_is_refused() {
        let (mut n, t0, mut rng) = setup();
        let (np, expires) = n.register(t0, 1, &mut rng).expect("room");
        assert_eq!(n.claim(expires, &np), Err(RelayErrorKind::Expired));
        let (np2, _) = n.register(t0, 2, &mut rng).expect("room");
        assert!(n.expire(t0 + Duration::from_secs(601), &np2));
        assert_eq!(n.claim(t0 + Duration::from_secs(602), &np2), Err(RelayErrorKind::Expired));
        assert_eq!(n.claim(t0 + Duration::from_secs(1300), &np2), Err(RelayErrorKind::UnknownCode), "pruned");
    }

    #[test]
    fn unknown_nameplates_and_capacity() {
        let mut n = Nameplates::new(Duration::from_secs(1), 2);
        let (t0, mut rng) = (Instant::now(), rand::rng());
        assert_eq!(n.claim(t0, &Nameplate::new("999").expect("digits")), Err(RelayErrorKind::UnknownCode));
        n.register(t0, 1, &mut rng).expect("room");
        n.register(t0, 2, &mut rng).expect("room");
        assert_eq!(n.register(t0, 3, &mut rng).map(|_| ()), Err(RelayErrorKind::Busy));
    }

    #[test]
    fn nameplates_grow_longer_when_three_digits_get_crowded() {
        let mut n = Nameplates::new(Duration::from_secs(600), 10_000);
        let (t0, mut rng) = (Instant::now(), rand::rng());
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let (np, _) = n.register(t0, i, &mut rng).expect("room");
            assert!(seen.insert(np.clone()), "nameplates are unique");
        }
        assert!(seen.iter().any(|np| np.as_str().len() == 4));
        assert!(seen.iter().all(|np| np.as_str().len() <= 4));
        let (longer, _) = n.register_longer(t0, 0, &mut rng, 2).expect("room");
        assert_eq!(longer.as_str().len(), 6);
    }
}
