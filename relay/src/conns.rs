//! Caps on live control connections, per client address key ([`crate::limits::client_key`]) and in all,
//! checked at the QUIC accept before the relay does any handshake work: one socket can no longer hold
//! hundreds of connections (each ~150 KiB of QUIC state and buffers).
//!
//! The global cap counts every connection from its first packet. The per-address cap counts only
//! connections whose handshake completed, i.e. whose address is proven: otherwise anyone could spoof a
//! victim's source address in a few Initial packets and fill the victim's places. Handshakes in progress
//! are bounded separately (`max_incoming`, QUIC retry above `retry_above`, `handshake_timeout`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::limits::client_key;

#[derive(Debug, Default)]
pub struct ConnLimits {
    per_key: usize,
    total: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: usize,
    /// Established connections per address key.
    by_key: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Address,
    Total,
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    key: IpAddr,
    established: bool,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut inner = self.limits.lock();
        inner.live = inner.live.saturating_sub(1);
        if self.established {
            if let Some(n) = inner.by_key.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    inner.by_key.remove(&self.key);
                }
            }
        }
    }
}

impl ConnSlot {
    /// The handshake completed (the address is proven): take a place under its address key, or say why
    /// not.
    pub fn establish(&mut self) -> Result<(), Over> {
        if self.established {
            return Ok(());
        }
        let mut inner = self.limits.lock();
        let n = inner.by_key.entry(self.key).or_default();
        if *n >= self.limits.per_key {
            return Err(Over::Address);
        }
        *n += 1;
        self.established = true;
        Ok(())
    }
}

impl ConnLimits {
    pub fn new(per_key: usize, total: usize) -> Arc<Self> {
        Arc::new(Self { per_key: per_key.max(1), total: total.max(1), inner: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// At the accept: a place for one more connection from `ip`, or why not. Cheap: one map lookup.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, Over> {
        let key = client_key(ip);
        let mut inner = self.lock();
        if inner.live >= self.total {
            return Err(Over::Total);
        }
        if inner.by_key.get(&key).is_some_and(|n| *n >= self.per_key) {
            return Err(Over::Address);
        }
        inner.live += 1;
        Ok(ConnSlot { limits: self.clone(), key, established: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_key_and_in_all_and_places_come_back() {
        let limits = ConnLimits::new(2, 3);
        let a: IpAddr = "2001:db8::1".parse().expect("addr");
        let a2: IpAddr = "2001:db8::2".parse().expect("addr");
        let b: IpAddr = "192.0.2.1".parse().expect("addr");
        let mut first = limits.admit(a).expect("room");
        first.establish().expect("room");
        let mut second = limits.admit(a2).expect("room");
        second.establish().expect("room");
        assert_eq!(limits.admit(a).map(|_| ()), Err(Over::Address), "same /64");
        let _third = limits.admit(b).expect("room");
        assert_eq!(limits.admit("192.0.2.2".parse().expect("addr")).map(|_| ()), Err(Over::Total));
        drop(first);
        limits.admit(a).expect("a place came back");
    }

    #[test]
    fn handshakes_from_a_spoofed_address_take_no_place_of_its_owner() {
        let limits = ConnLimits::new(2, 100);
        let victim: IpAddr = "192.0.2.1".parse().expect("addr");
        // Initial packets with the victim's source address never complete their handshake.
        let spoofed: Vec<_> = (0..10).map(|_| limits.admit(victim).expect("counted in all only")).collect();
        let mut real = limits.admit(victim).expect("the victim still gets in");
        real.establish().expect("and keeps its place");
        drop(spoofed);
        let mut racing = [limits.admit(victim).expect("room"), limits.admit(victim).expect("room")];
        racing[0].establish().expect("the second place");
        assert_eq!(racing[1].establish(), Err(Over::Address), "the cap holds for established ones");
    }
}
