//! Per-address rate limits on claims and registrations (token buckets from `governor`).
//! A flood from one address is cut to the configured rate while other addresses are unaffected.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RelayConfig;

pub struct Limits {
    claims: DefaultKeyedRateLimiter<IpAddr>,
    registers: DefaultKeyedRateLimiter<IpAddr>,
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
        }
    }

    /// Whether one more claim from `ip` is allowed now.
    pub fn allow_claim(&self, ip: IpAddr) -> bool {
        self.claims.check_key(&ip).is_ok()
    }

    pub fn allow_register(&self, ip: IpAddr) -> bool {
        self.registers.check_key(&ip).is_ok()
    }

    /// Forget addresses whose buckets are full again (bounds memory under a spray of addresses).
    pub fn prune(&self) {
        self.claims.retain_recent();
        self.registers.retain_recent();
    }
}
