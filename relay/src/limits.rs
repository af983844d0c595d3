//! Per-address rate limits on claims, registrations and rejoins (token buckets from `governor`).
//! A flood from one address is cut to the configured rate while other addresses are unaffected.
//!
//! Every per-address limit of the relay (these, [`crate::conns`], [`crate::budget`]) keys on
//! [`client_key`]: an IPv4 address, or the /64 of an IPv6 address — one subscriber usually holds a whole
//! /64, so keying on the full address would give an attacker 2^64 fresh budgets.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RelayConfig;

/// The key one client's limits are counted under: IPv4 as is (also when mapped into IPv6), IPv6 cut to
/// its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

pub struct Limits {
    claims: DefaultKeyedRateLimiter<IpAddr>,
    registers: DefaultKeyedRateLimiter<IpAddr>,
    rejoins: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl Limits {
    pub fn new(cfg: &RelayConfig) -> Self {
        Self {
            claims: RateLimiter::keyed(quota(cfg.claims_per_minute, cfg.claim_burst)),
            registers: RateLimiter::keyed(quota(cfg.registers_per_minute, cfg.register_burst)),
            rejoins: RateLimiter::keyed(quota(cfg.rejoins_per_minute, cfg.rejoin_burst)),
        }
    }

    /// Whether one more claim from `ip` is allowed now.
    pub fn allow_claim(&self, ip: IpAddr) -> bool {
        self.claims.check_key(&client_key(ip)).is_ok()
    }

    pub fn allow_register(&self, ip: IpAddr) -> bool {
        self.registers.check_key(&client_key(ip)).is_ok()
    }

    pub fn allow_rejoin(&self, ip: IpAddr) -> bool {
        self.rejoins.check_key(&client_key(ip)).is_ok()
    }

    /// Forget addresses whose buckets are full again (bounds memory under a spray of addresses).
    pub fn prune(&self) {
        self.claims.retain_recent();
        self.registers.retain_recent();
        self.rejoins.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_share_a_key_and_ipv4_is_per_address() {
        assert_eq!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:2:ffff:eeee:dddd:cccc")));
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(client_key(ip("192.0.2.7")), client_key(ip("192.0.2.8")));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"), "mapped IPv4 is IPv4");
    }

    #[test]
    fn claims_from_two_addresses_of_one_slash_64_share_a_budget() {
        let mut cfg = RelayConfig::new("127.0.0.1:0".parse().expect("addr"), "d".into());
        cfg.claims_per_minute = 1;
        cfg.claim_burst = 2;
        let limits = Limits::new(&cfg);
        assert!(limits.allow_claim(ip("2001:db8::1")));
        assert!(limits.allow_claim(ip("2001:db8::2")));
        assert!(!limits.allow_claim(ip("2001:db8::3")), "the /64's burst is spent");
        assert!(limits.allow_claim(ip("2001:db8:0:1::1")), "another /64 has its own");
    }
}
